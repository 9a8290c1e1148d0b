// Queued delivery: routes bound to a queue hand their requests (and abort
// notices) to host threads in batches, for hosts that run their own threads
// (Python, Go). Loop threads only take the queue's mutex for a push; they
// never wait for a host lock. An eventfd mirrors "events pending" so an event
// loop (asyncio) can wait on it.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>

#include "quicklane.h"

namespace ql {

class Queue {
public:
    Queue();
    ~Queue();
    bool ok() const { return efd_ >= 0; }
    void push(const ql_event &ev);
    void push_many(const ql_event *ev, size_t n);
    // Moves up to max events; waits up to timeout_ms (<0: forever) for the first.
    // Returns false once the queue is closed and empty.
    bool poll(ql_event *out, size_t max, int32_t timeout_ms, size_t *count);
    void close();
    int fd() const { return efd_; }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<ql_event> events_;
    size_t waiters_ = 0;
    bool closed_ = false;
    int efd_ = -1;
};

// What a queue-bound route keeps: the queue and the host's per-route value.
struct QueueRoute {
    std::shared_ptr<Queue> queue;
    void *route_data = nullptr;
    ql_destroy_fn destroy = nullptr;
    ~QueueRoute() {
        if (destroy) destroy(route_data);
    }
};

// While a loop thread parses one read's worth of bytes, queued requests are
// held back and published together at the end: pipelined requests reach the
// host as one batch, with one wake-up.
void queue_batch_begin();
void queue_batch_end();

// ql_handler callbacks that push into the route's queue.
void queue_on_request(void *user_data, ql_request *req);
void queue_on_abort(void *user_data, ql_req_id id, void *tag);
void queue_on_body(void *user_data, ql_req_id id, void *tag);
void queue_on_drain(void *user_data, ql_req_id id, void *tag);
void queue_route_destroy(void *user_data);

}  // namespace ql
