#include "transport/transport.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "server.hpp"
#include "worker.hpp"

namespace ql {

Transport::Transport(Worker &worker) : w(worker) { tcp_.data = this; }

bool Transport::accept(uv_stream_t *listener, Protocol *p) {
    proto_ = p;
    uv_tcp_init(w.loop, &tcp_);
    if (uv_accept(listener, reinterpret_cast<uv_stream_t *>(&tcp_)) != 0) {
        close();
        return false;
    }
    return accepted();
}

bool Transport::adopt(int fd, Protocol *p) {
    proto_ = p;
    uv_tcp_init(w.loop, &tcp_);
    if (uv_tcp_open(&tcp_, fd) != 0) {
        ::close(fd);
        close();
        return false;
    }
    return accepted();
}

bool Transport::accepted() {
    uv_tcp_nodelay(&tcp_, 1);
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(&tcp_, reinterpret_cast<struct sockaddr *>(&ss), &len) == 0) {
        if (ss.ss_family == AF_INET) {
            auto *a = reinterpret_cast<struct sockaddr_in *>(&ss);
            inet_ntop(AF_INET, &a->sin_addr, peer_ip_, sizeof peer_ip_);
            peer_port_ = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            auto *a = reinterpret_cast<struct sockaddr_in6 *>(&ss);
            inet_ntop(AF_INET6, &a->sin6_addr, peer_ip_, sizeof peer_ip_);
            peer_port_ = ntohs(a->sin6_port);
        }
        peer_ip_len_ = static_cast<uint8_t>(std::strlen(peer_ip_));
    }
    touch();
    Server &s = w.server;
    counted_ = true;
    uint64_t open = s.conns_open.fetch_add(1) + 1;
    s.conns_total.fetch_add(1, std::memory_order_relaxed);
    if (open > s.limits().max_connections) {
        close();
        return false;
    }
    proto_->start();
    return true;
}

void Transport::touch() { last_activity_ = w.now_ms(); }

// ---- reading -----------------------------------------------------------

void Transport::read(bool want) {
    if (closing_) return;
    if (want && !reading_) {
        if (uv_read_start(reinterpret_cast<uv_stream_t *>(&tcp_), on_alloc, on_read) == 0) reading_ = true;
    } else if (!want && reading_) {
        uv_read_stop(reinterpret_cast<uv_stream_t *>(&tcp_));
        reading_ = false;
    }
}

void Transport::on_alloc(uv_handle_t *h, size_t, uv_buf_t *buf) {
    // One buffer per loop: the protocol consumes a read fully (copies what
    // it keeps) before the next allocation.
    auto *t = static_cast<Transport *>(h->data);
    buf->base = t->w.read_buffer();
    buf->len = Worker::kReadBufSize;
}

void Transport::on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    auto *t = static_cast<Transport *>(s->data);
    if (nread < 0) {
        // EOF or error: the client is gone (as Go's net/http, a half-close
        // is a disconnect; the protocol aborts what is unanswered).
        t->close();
        return;
    }
    if (nread == 0) return;
    if (t->w.server.metrics) t->w.server.metrics->bytes_in.fetch_add(static_cast<uint64_t>(nread), std::memory_order_relaxed);
    t->proto_->on_data(buf->base, static_cast<size_t>(nread));
}

// ---- writing -----------------------------------------------------------

Transport::Sent Transport::send(uv_buf_t *bufs, unsigned n) {
    size_t total = 0;
    for (unsigned i = 0; i < n; ++i) total += bufs[i].len;
    if (w.server.metrics) w.server.metrics->bytes_out.fetch_add(total, std::memory_order_relaxed);
    int written = uv_try_write(reinterpret_cast<uv_stream_t *>(&tcp_), bufs, n);
    if (written == UV_EAGAIN || written == UV_ENOSYS) written = 0;
    if (written < 0) {
        close();
        return Sent::Failed;
    }
    if (static_cast<size_t>(written) == total) return Sent::All;
    // Partial: queue the rest; the buffers stay alive with their owner until on_written.
    unsigned i = 0;
    size_t skip = static_cast<size_t>(written);
    while (skip >= bufs[i].len) skip -= bufs[i++].len;
    bufs[i].base += skip;
    bufs[i].len -= static_cast<unsigned>(skip);
    if (!queue(bufs + i, n - i)) return Sent::Failed;
    return Sent::Queued;
}

bool Transport::queue(const uv_buf_t *bufs, unsigned n) {
    if (!wreq_) {
        wreq_ = std::make_unique<uv_write_t>();
        wreq_->data = this;
    }
    writing_ = true;
    if (uv_write(wreq_.get(), reinterpret_cast<uv_stream_t *>(&tcp_), bufs, n, on_write) != 0) {
        writing_ = false;
        close();
        return false;
    }
    return true;
}

void Transport::on_write(uv_write_t *req, int status) {
    auto *t = static_cast<Transport *>(req->data);
    t->writing_ = false;
    if (t->closing_) return;  // on_close releases what is left
    if (status < 0) {
        t->close();
        return;
    }
    t->touch();
    t->proto_->on_written(status);
}

int Transport::try_writev(const uv_buf_t *bufs, unsigned n) {
    int k = uv_try_write(reinterpret_cast<uv_stream_t *>(&tcp_), bufs, n);
    if (k == UV_EAGAIN || k == UV_ENOSYS) return 0;
    return k;
}

void Transport::switch_to(Protocol *p) {
    if (retired_)
        delete retired_;  // switched twice within one iteration: that one's call has returned
    else
        w.retire_later(this);
    retired_ = proto_;
    proto_ = p;
}

void Transport::drop_retired() {
    delete retired_;
    retired_ = nullptr;
}

int Transport::try_write(const char *data, size_t len) {
    uv_buf_t b = uv_buf_init(const_cast<char *>(data), static_cast<unsigned>(len));
    return uv_try_write(reinterpret_cast<uv_stream_t *>(&tcp_), &b, 1);
}

bool Transport::shutdown() {
    if (!shutdown_req_) {
        shutdown_req_ = std::make_unique<uv_shutdown_t>();
        shutdown_req_->data = this;
    }
    int rc = uv_shutdown(shutdown_req_.get(), reinterpret_cast<uv_stream_t *>(&tcp_), [](uv_shutdown_t *req, int status) {
        auto *t = static_cast<Transport *>(req->data);
        if (status < 0 && status != UV_ECANCELED) t->close();
    });
    if (rc != 0) {
        close();
        return false;
    }
    return true;
}

void Transport::count_out(uint64_t n) {
    if (w.server.metrics) w.server.metrics->bytes_out.fetch_add(n, std::memory_order_relaxed);
}

int Transport::fd() const {
    uv_os_fd_t fd;
    if (closing_ || uv_fileno(reinterpret_cast<const uv_handle_t *>(&tcp_), &fd) != 0) return -1;
    return fd;
}

// Bytes the client sent that were not read yet (a request sent just before
// the stop): such a connection is served once more, not dropped.
bool Transport::bytes_pending() const {
    int s = fd();
    if (s < 0) return false;
    char b;
    return ::recv(s, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

// A socket that is not read does not see its client leave by a read; the
// kernel's view tells instead: a reset, or a FIN (a half-close is a
// disconnect here, as a read of the EOF treats it). A FIN is seen only once
// it arrived: a client whose unsent bytes queue behind a full window sends
// it after them, as TCP does.
bool Transport::peer_left() const {
#ifdef TCP_INFO
    int s = fd();
    if (s < 0) return false;
    struct tcp_info ti {};
    socklen_t len = sizeof ti;
    if (::getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) return false;
    return ti.tcpi_state == TCP_CLOSE || ti.tcpi_state == TCP_CLOSE_WAIT;
#else
    return false;
#endif
}

// ---- closing -----------------------------------------------------------

void Transport::close() {
    if (closing_) return;
    closing_ = true;
    reading_ = false;
    uv_close(reinterpret_cast<uv_handle_t *>(&tcp_), on_close);
}

void Transport::on_close(uv_handle_t *h) {
    auto *t = static_cast<Transport *>(h->data);
    if (t->retired_) {
        t->w.forget_retiring(t);
        t->drop_retired();
    }
    if (t->proto_) {
        t->proto_->on_closed();
        delete t->proto_;
    }
    if (t->counted_) t->w.server.conns_open.fetch_sub(1);
    t->w.remove_conn(t);
    delete t;
}

}  // namespace ql
