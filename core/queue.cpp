#include "queue.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <vector>

namespace ql {

Queue::Queue() { efd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

Queue::~Queue() {
    // WebSocket events nobody polled own their data: give it back.
    for (ql_event &e : events_) ql_event_release(&e);
    if (efd_ >= 0) ::close(efd_);
}

void Queue::push(const ql_event &ev) { push_many(&ev, 1); }

void Queue::push_many(const ql_event *ev, size_t n) {
    bool signal_fd, wake;
    {
        std::lock_guard lk(mu_);
        signal_fd = events_.empty();
        events_.insert(events_.end(), ev, ev + n);
        wake = waiters_ > 0;
    }
    // The fd flips to readable only when the queue turns non-empty: one
    // wake-up per burst for an event loop waiting on it.
    if (signal_fd) {
        uint64_t one = 1;
        ssize_t n = ::write(efd_, &one, sizeof one);
        (void)n;
    }
    if (wake) cv_.notify_one();
}

bool Queue::poll(ql_event *out, size_t max, int32_t timeout_ms, size_t *count) {
    *count = 0;
    std::unique_lock lk(mu_);
    if (events_.empty() && !closed_ && timeout_ms != 0) {
        ++waiters_;
        auto ready = [&] { return !events_.empty() || closed_; };
        if (timeout_ms < 0)
            cv_.wait(lk, ready);
        else
            cv_.wait_for(lk, std::chrono::milliseconds(timeout_ms), ready);
        --waiters_;
    }
    size_t n = 0;
    while (n < max && !events_.empty()) {
        out[n++] = events_.front();
        events_.pop_front();
    }
    *count = n;
    if (events_.empty()) {
        uint64_t v;
        ssize_t r = ::read(efd_, &v, sizeof v);  // reset "pending" (EAGAIN when already clear)
        (void)r;
    } else if (waiters_ > 0) {
        cv_.notify_one();  // more left: let another poller take them
    }
    return !(closed_ && n == 0 && events_.empty());
}

void Queue::close() {
    {
        std::lock_guard lk(mu_);
        closed_ = true;
    }
    uint64_t one = 1;
    ssize_t n = ::write(efd_, &one, sizeof one);  // wake an event loop so it sees the close
    (void)n;
    cv_.notify_all();
}

namespace {
struct Batch {
    bool active = false;
    std::vector<std::pair<Queue *, ql_event>> held;
};
thread_local Batch tl_batch;

void publish(Queue *q, const ql_event &ev) {
    if (tl_batch.active)
        tl_batch.held.emplace_back(q, ev);
    else
        q->push(ev);
}
}  // namespace

void queue_batch_begin() { tl_batch.active = true; }

void queue_batch_end() {
    Batch &b = tl_batch;
    b.active = false;
    if (b.held.empty()) return;
    // Group by queue, keeping order within each queue.
    static thread_local std::vector<ql_event> run;
    for (size_t i = 0; i < b.held.size(); ++i) {
        Queue *q = b.held[i].first;
        if (!q) continue;
        run.clear();
        for (size_t k = i; k < b.held.size(); ++k) {
            if (b.held[k].first == q) {
                run.push_back(b.held[k].second);
                b.held[k].first = nullptr;
            }
        }
        q->push_many(run.data(), run.size());
    }
    b.held.clear();
}

void queue_on_request(void *user_data, ql_request *req) {
    auto *qr = static_cast<QueueRoute *>(user_data);
    ql_event ev{};
    ev.kind = QL_EVENT_REQUEST;
    ev.id = ql_request_id(req);
    ev.request = req;
    ev.route_data = qr->route_data;
    ev.server = ql_request_server(req);
    publish(qr->queue.get(), ev);
}

namespace {
// An abort, BODY or DRAIN notice: the id and the route's data only.
void queue_notice(void *user_data, ql_req_id id, uint32_t kind) {
    auto *qr = static_cast<QueueRoute *>(user_data);
    ql_event ev{};
    ev.kind = kind;
    ev.id = id;
    ev.route_data = qr->route_data;
    publish(qr->queue.get(), ev);
}
}  // namespace

void queue_on_abort(void *user_data, ql_req_id id, void *) { queue_notice(user_data, id, QL_EVENT_ABORT); }
void queue_on_body(void *user_data, ql_req_id id, void *) { queue_notice(user_data, id, QL_EVENT_BODY); }
void queue_on_drain(void *user_data, ql_req_id id, void *) { queue_notice(user_data, id, QL_EVENT_DRAIN); }

void queue_route_destroy(void *user_data) { delete static_cast<QueueRoute *>(user_data); }

}  // namespace ql
