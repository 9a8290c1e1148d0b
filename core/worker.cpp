#include "worker.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>

#include "http1/http1.hpp"
#include "transport/transport.hpp"
#include "response_writer.hpp"
#include "server.hpp"
#include "ws/ws_conn.hpp"
#include "ws/ws_handshake.hpp"

namespace ql {

Worker::Worker(Server &s, uint32_t idx) : server(s), index(idx) {
    slots_ = static_cast<Request **>(std::calloc(kMaxSlots, sizeof(Request *)));
    std::random_device rd;
    gen_seed_ = rd();
    format_http_date(date);
    const Limits &l = s.limits();
    uint64_t smallest = std::min<uint64_t>({l.header_timeout_ms, l.idle_timeout_ms, l.handler_timeout_ms});
    tick_ms_ = std::clamp<uint64_t>(smallest / 4, 10, 1000);
}

Worker::~Worker() {
    join();
    uint32_t n = slot_count_.load();
    for (uint32_t i = 0; i < n; ++i) delete slots_[i];
    std::free(slots_);
    if (fd_ >= 0) ::close(fd_);
}

bool Worker::on_loop_thread() const {
    uv_thread_t self = uv_thread_self();
    return handles_open_ > 0 && uv_thread_equal(&owner_, &self);
}

// ---- thread and loop ---------------------------------------------------

bool Worker::start(int fd, std::string *err) {
    fd_ = fd;
    read_buf_.reset(new char[kReadBufSize]);
    if (uv_thread_create(&thread_, thread_main, this) != 0) {
        *err = "could not start worker thread";
        return false;
    }
    thread_started_ = true;
    std::unique_lock lk(start_mu_);
    start_cv_.wait(lk, [&] { return start_done_; });
    if (!start_ok_) *err = start_err_;
    return start_ok_;
}

void Worker::thread_main(void *arg) {
    // A write to a client that has gone raises SIGPIPE, whose default action
    // ends the whole process (a C or C++ host rarely ignores it; Python, Node
    // and Go do). Blocked on the loop threads, the write fails with EPIPE
    // instead and only that connection closes.
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    static_cast<Worker *>(arg)->run();
}

bool Worker::setup(std::string *err) {
    owner_ = uv_thread_self();
    uv_tcp_init(loop, &listener_);
    listener_.data = this;
    int rc = uv_tcp_open(&listener_, fd_);
    if (rc == 0) {
        fd_ = -1;  // owned by libuv now
        rc = uv_listen(reinterpret_cast<uv_stream_t *>(&listener_), static_cast<int>(server.limits().backlog),
                       [](uv_stream_t *l, int status) {
                           auto *w = static_cast<Worker *>(l->data);
                           if (status < 0 || w->stopping_) return;
                           auto *t = new Transport(*w);
                           w->add_conn(t);
                           t->accept(l, new Http1(*t));
                       });
    }
    ++handles_open_;
    if (rc != 0) {
        *err = std::string("listen failed: ") + uv_strerror(rc);
        uv_close(reinterpret_cast<uv_handle_t *>(&listener_), on_handle_closed);
        return false;
    }
    uv_async_init(loop, &async_, [](uv_async_t *a) {
        auto *w = static_cast<Worker *>(a->data);
        w->drain_queue();
        if (w->stop_requested_.load() && !w->stopping_) w->begin_stop();
    });
    async_.data = this;
    uv_timer_init(loop, &tick_timer_);
    tick_timer_.data = this;
    uv_timer_start(&tick_timer_, [](uv_timer_t *t) { static_cast<Worker *>(t->data)->tick(); }, tick_ms_, tick_ms_);
    uv_timer_init(loop, &drain_timer_);
    drain_timer_.data = this;
    // The timers must not keep a host's loop (Node) alive on their own.
    uv_unref(reinterpret_cast<uv_handle_t *>(&tick_timer_));
    uv_unref(reinterpret_cast<uv_handle_t *>(&drain_timer_));
    // WebSocket sends made during an iteration (echoes of one read, a
    // publish to many sockets, sends handed over by other threads) are
    // written once per socket after the poll phase: one writev for all.
    uv_check_init(loop, &ws_flush_);
    ws_flush_.data = this;
    uv_check_start(&ws_flush_, [](uv_check_t *h) {
        auto *w = static_cast<Worker *>(h->data);
        w->ws_hub_.flush();
        for (Transport *t : w->retiring_) t->drop_retired();
        w->retiring_.clear();
    });
    uv_unref(reinterpret_cast<uv_handle_t *>(&ws_flush_));
    handles_open_ += 4;
    std::lock_guard lk(q_mu_);
    loop_alive_ = true;
    return true;
}

void Worker::on_handle_closed(uv_handle_t *h) {
    auto *w = static_cast<Worker *>(h->data);
    if (--w->handles_open_ != 0 || w->own_thread_) return;
    // A host's loop: nothing of ours is left on it.
    Server &srv = w->server;
    if (srv.delete_when_closed) {
        w->closed_ = true;       // nobody waits: the free happens right here
        srv.on_worker_closed();  // frees the server and this worker: touch nothing after
        return;
    }
    srv.on_worker_closed();
    // A thread blocked in join() may free us as soon as it wakes: the
    // notification is the last thing done here, under the lock.
    std::lock_guard lk(w->start_mu_);
    w->closed_ = true;
    w->start_cv_.notify_all();
}

void Worker::run() {
    auto report = [&](bool ok, std::string msg) {
        std::lock_guard lk(start_mu_);
        start_done_ = true;
        start_ok_ = ok;
        start_err_ = std::move(msg);
        start_cv_.notify_all();
    };
    if (uv_loop_init(&own_loop_) != 0) {
        report(false, "uv_loop_init failed");
        return;
    }
    loop = &own_loop_;
    std::string err;
    bool ok = setup(&err);
    if (ok) report(true, {});
    uv_run(loop, UV_RUN_DEFAULT);
    // finish() closed every handle; run once more in case of stragglers.
    uv_run(loop, UV_RUN_NOWAIT);
    uv_loop_close(loop);
    if (!ok) report(false, err);
}

bool Worker::start_on(uv_loop_t *host_loop, int fd, std::string *err) {
    fd_ = fd;
    own_thread_ = false;
    loop = host_loop;
    read_buf_.reset(new char[kReadBufSize]);
    return setup(err);
}

void Worker::request_stop(uint32_t timeout_ms) {
    drain_timeout_ms_.store(timeout_ms);
    stop_requested_.store(true);
    if (!own_thread_ && on_loop_thread()) {
        if (!stopping_ && loop_alive_) begin_stop();
        return;
    }
    std::lock_guard lk(q_mu_);
    if (loop_alive_) uv_async_send(&async_);
}

void Worker::join() {
    if (thread_started_) {
        uv_thread_join(&thread_);
        thread_started_ = false;
    } else if (!own_thread_ && !on_loop_thread()) {
        // A host's loop runs on another thread: wait for our handles to close.
        std::unique_lock lk(start_mu_);
        start_cv_.wait(lk, [&] { return closed_; });
    }
}

void Worker::begin_stop() {
    stopping_ = true;
    // Connections the kernel completed before the stop are served, not
    // reset with the listener: take the backlog first.
    uv_os_fd_t lfd;
    if (uv_fileno(reinterpret_cast<uv_handle_t *>(&listener_), &lfd) == 0) {
        for (uint32_t i = 0; i < server.limits().backlog; ++i) {
            int fd = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) break;
            auto *t = new Transport(*this);
            add_conn(t);
            t->adopt(fd, new Http1(*t));
        }
    }
    uv_close(reinterpret_cast<uv_handle_t *>(&listener_), on_handle_closed);
    ws_hub_.end_event_streams();  // streams that never end by themselves
    for (Transport *t = conns_, *next; t; t = next) {
        next = t->next;
        t->protocol()->drain();
    }
    uv_timer_start(
        &drain_timer_,
        [](uv_timer_t *t) {
            auto *w = static_cast<Worker *>(t->data);
            for (Transport *t = w->conns_; t; t = t->next) t->close();
        },
        drain_timeout_ms_.load(), 0);
    maybe_finish();
}

void Worker::maybe_finish() {
    if (stopping_ && !finished_ && conn_count_ == 0) finish();
}

void Worker::finish() {
    finished_ = true;
    {
        // Under the lock: once loop_alive_ is false, post_answer releases
        // requests itself (also under this lock), so the pool never sees two
        // threads at once.
        std::lock_guard lk(q_mu_);
        loop_alive_ = false;
        for (const Posted &p : queue_)
            if (p.kind == kAnswer && p.r->in_use && p.r->generation() == p.gen) release(p.r);
        queue_.clear();
        ws_queue_.clear();
    }
    uv_close(reinterpret_cast<uv_handle_t *>(&async_), on_handle_closed);
    uv_close(reinterpret_cast<uv_handle_t *>(&tick_timer_), on_handle_closed);
    uv_close(reinterpret_cast<uv_handle_t *>(&drain_timer_), on_handle_closed);
    uv_close(reinterpret_cast<uv_handle_t *>(&ws_flush_), on_handle_closed);
}

void Worker::tick() {
    format_http_date(date);
    uint64_t now = uv_now(loop);
    for (Transport *t = conns_, *next; t; t = next) {
        next = t->next;
        t->protocol()->check_timeouts(now);
    }
    ws_hub_.tick(now);
}

void Worker::add_conn(Transport *c) {
    c->next = conns_;
    c->prev = nullptr;
    if (conns_) conns_->prev = c;
    conns_ = c;
    ++conn_count_;
}

void Worker::forget_retiring(Transport *c) {
    auto it = std::find(retiring_.begin(), retiring_.end(), c);
    if (it != retiring_.end()) retiring_.erase(it);
}

void Worker::remove_conn(Transport *c) {
    if (c->prev)
        c->prev->next = c->next;
    else
        conns_ = c->next;
    if (c->next) c->next->prev = c->prev;
    --conn_count_;
    maybe_finish();
}

// ---- request pool ------------------------------------------------------

Request *Worker::acquire() {
    Request *r = free_;
    if (r) {
        free_ = r->next;
    } else {
        uint32_t n = slot_count_.load(std::memory_order_relaxed);
        if (n >= kMaxSlots) std::abort();  // 1M live requests on one loop: out of memory anyway
        r = new Request();
        r->worker = this;
        r->slot = n;
        // Generations start at a random value, so an id from another server
        // (or a stale one) is very unlikely to name a live request here.
        r->state.store(static_cast<uint64_t>(gen_seed_ + n * 2654435761u) << 8, std::memory_order_relaxed);
        std::atomic_ref<Request *>(slots_[n]).store(r, std::memory_order_release);
        slot_count_.store(n + 1, std::memory_order_release);
    }
    r->next = nullptr;
    r->in_use = true;
    return r;
}

void Worker::release(Request *r) {
    if (r->ws_accept) {  // accepted or hijacked, and the connection never switched
        if (const WsRoute *route = r->hijack ? r->hijack.get() : r->route && r->route->ws ? r->route->ws.get() : nullptr)
            ws_never_opened(*this, *route, r->id(), r->ws_tag);
    }
    if (r->dispatched) server.requests_in_flight.fetch_sub(1, std::memory_order_relaxed);
    bool readers = r->body_stream;
    {
        // Hosts check the generation under this lock before appending stream
        // bytes or reading a streamed body.
        std::lock_guard lk(r->stream_mu);
        uint64_t gen = (r->state.load(std::memory_order_relaxed) >> 8) + 1;
        r->reset_for_reuse();
        r->state.store(gen << 8, std::memory_order_release);
    }
    if (readers) r->body_cv.notify_all();  // a blocked reader sees the new generation: QL_E_GONE
    r->in_use = false;
    r->next = free_;
    free_ = r;
}

Request *Worker::lookup(uint32_t slot) const {
    if (slot >= slot_count_.load(std::memory_order_acquire)) return nullptr;
    return std::atomic_ref<Request *>(slots_[slot]).load(std::memory_order_acquire);
}

// ---- answers -----------------------------------------------------------

bool Worker::post(Request *r, uint64_t gen, uint8_t kind) {
    std::lock_guard lk(q_mu_);
    if (!loop_alive_) {
        // The loop has ended: nobody else touches the pool now. A plain
        // answer is freed here; stream requests were freed with their
        // connection.
        if (kind == kAnswer && r->in_use && r->generation() == gen && !r->stream_mode) release(r);
        return false;
    }
    bool wake = queue_.empty() && ws_queue_.empty();
    queue_.push_back({r, gen, kind});
    // One wake-up per burst: only the first post into an empty queue signals.
    if (wake) uv_async_send(&async_);
    return true;
}

void Worker::drain_queue() {
    {
        std::lock_guard lk(q_mu_);
        queue_swap_.swap(queue_);
        ws_queue_swap_.swap(ws_queue_);
    }
    for (const Posted &p : queue_swap_) on_posted(p.r, p.gen, p.kind);
    queue_swap_.clear();
    for (WsOp &op : ws_queue_swap_) ws_hub_.on_op(op);
    ws_queue_swap_.clear();
}

bool Worker::post_ws(WsOp &&op) {
    std::lock_guard lk(q_mu_);
    if (!loop_alive_) return false;
    bool wake = queue_.empty() && ws_queue_.empty();
    ws_queue_.push_back(std::move(op));
    if (wake) uv_async_send(&async_);
    return true;
}

bool Worker::hand(Request *r, uint64_t gen, uint8_t kind) {
    if (!on_loop_thread()) return post(r, gen, kind);
    on_posted(r, gen, kind);
    return true;
}

void Worker::on_posted(Request *r, uint64_t gen, uint8_t kind) {
    if (!r->in_use || r->generation() != gen) return;  // stale: the request was recycled
    if (kind == kBodyRead) {
        if (r->conn) r->conn->body_consumed(r);
        return;
    }
    // stream_mode is written once, by the claimer, before the post that
    // brings us here (the queue's mutex orders it): no lock needed to read it.
    if (r->stream_mode)
        on_stream(r);
    else
        on_answer(r);
}

void Worker::on_stream(Request *r) {
    Http1 *c = r->conn;
    if (!c) {
        // The client left before the head went out: free it; the host's
        // next write or end returns QL_E_GONE.
        release(r);
        return;
    }
    static thread_local std::string chunk;
    bool end, abort, bare, sized, short_end;
    {
        std::lock_guard lk(r->stream_mu);
        chunk.swap(r->stream_in);
        r->stream_in.clear();
        end = r->stream_end;
        abort = r->stream_abort;
        bare = r->stream_bare;
        sized = r->stream_sized;
        short_end = sized && r->stream_total < r->stream_length;
        r->stream_posted = false;
    }
    if (abort && bare) {
        // ql_respond_abort of an unanswered request: the connection closes, no answer.
        chunk.clear();
        r->ready = true;  // freed by the close
        c->close();
        return;
    }
    if (!r->streaming) {
        if (c->answer_closes(r)) r->keep_alive = false;
        HeadParams hp{r->pending_status, r->pending_type, r->pending_headers, sized ? r->stream_length : 0,
                      r->keep_alive && !stopping_ && (sized || r->http_minor != 0), r->http_minor == 0, date, !sized};
        if (!hp.keep_alive) r->keep_alive = false;
        if (!status_has_body(hp.status)) r->head_only = true;
        hp.rule_headers = r->rule_headers;
        format_head(r->out_head, hp);
        r->resp_status = hp.status;
        r->host_answered = true;
        r->streaming = true;
        r->ready = true;
    }
    if (!r->head_only && !chunk.empty()) {
        if (r->http_minor == 0 || sized) {
            r->stream_out.append(chunk);
        } else {
            char hex[20];
            int n = snprintf(hex, sizeof hex, "%zx\r\n", chunk.size());
            r->stream_out.append(hex, static_cast<size_t>(n));
            r->stream_out.append(chunk);
            r->stream_out.append("\r\n");
        }
        r->stream_out_data += chunk.size();
    } else if (!chunk.empty()) {
        r->stream_buffered.fetch_sub(chunk.size(), std::memory_order_relaxed);  // never written
    }
    chunk.clear();
    if (end && !r->stream_done) {
        // Aborted (ql_respond_abort): what was given goes out, then the
        // connection closes without the last chunk: the client sees it broken.
        if (!abort && !r->head_only && r->http_minor != 0 && !sized) r->stream_out.append("0\r\n\r\n");
        // Short of its declared length: the client must see it broken too.
        if (abort || (short_end && !r->head_only)) r->keep_alive = false;
        r->stream_done = true;
    }
    if (!c->in_read) {
        c->flush();
        c->update_reading();
    }
}

void Worker::on_answer(Request *r) {
    Http1 *c = r->conn;
    if (!c) {
        release(r);
        return;
    }
    if (r->ws_accept) {
        // The 101, or nothing for a hijacked request: the host takes the bytes.
        if (r->hijack)
            r->out_head.clear();
        else
            ws_switching_head(r->out_head, *r, r->pending_headers);
        r->out_body.clear();
        r->head_only = true;
        r->resp_status = 101;
        r->host_answered = true;
        r->ready = true;
        if (!c->in_read) c->flush();
        return;
    }
    if (c->answer_closes(r)) r->keep_alive = false;
    HeadParams hp{r->pending_status, r->pending_type, r->pending_headers, r->out_body.size(),
                  r->keep_alive && !stopping_, r->http_minor == 0, date};
    if (!hp.keep_alive) r->keep_alive = false;
    if (!status_has_body(hp.status)) r->head_only = true;
    hp.rule_headers = r->rule_headers;
    format_head(r->out_head, hp);
    r->resp_status = hp.status;
    r->host_answered = !r->cache_wait;
    r->ready = true;
    if (!c->in_read) {
        c->flush();
        c->update_reading();
    }
}

}  // namespace ql
