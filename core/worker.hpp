// Worker: one libuv loop on its own thread with its own SO_REUSEPORT
// listener, a request pool, a Date cache, a timeout sweep, and the queue
// through which other threads hand answers to this loop.
#pragma once

#include <uv.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "request.hpp"
#include "ws/ws_hub.hpp"

namespace ql {

class Server;
class Transport;

class Worker {
public:
    Worker(Server &server, uint32_t index);
    ~Worker();

    // Takes ownership of a bound (not yet listening) socket; runs the loop
    // on a new thread and returns once it listens (or failed).
    bool start(int fd, std::string *err);
    // Runs on a loop the host owns (Node's), on the calling thread, which
    // must be that loop's thread. Handles are unref'd timers plus the
    // listener; the host's loop keeps running the server.
    bool start_on(uv_loop_t *host_loop, int fd, std::string *err);
    void request_stop(uint32_t timeout_ms);
    void join();

    Server &server;
    const uint32_t index;
    uv_loop_t *loop = nullptr;
    char date[30] = {0};
    uint64_t now_ms() const { return uv_now(loop); }

    // request pool (loop thread)
    Request *acquire();
    void release(Request *r);
    Request *lookup(uint32_t slot) const;  // any thread

    // Answers and stream bytes from other threads, tagged with the request's
    // generation so a stale post never touches a recycled request. False
    // when the loop is gone.
    // kind: kAnswer (an answer or stream bytes) or kBodyRead (a host read a
    // streamed body: resume reading, send 100 Continue).
    enum : uint8_t { kAnswer = 0, kBodyRead = 1 };
    bool post(Request *r, uint64_t gen, uint8_t kind = kAnswer);
    // From any thread: processed at once on the loop thread, else posted.
    bool hand(Request *r, uint64_t gen, uint8_t kind = kAnswer);
    void on_posted(Request *r, uint64_t gen, uint8_t kind);  // loop thread
    void on_answer(Request *r);                // loop thread
    void on_stream(Request *r);                // loop thread
    bool on_loop_thread() const;

    // WebSockets of this loop; work for them from other threads. post_ws is
    // false when the loop is gone.
    WsHub &ws_hub() { return ws_hub_; }
    bool post_ws(WsOp &&op);

    // connections (loop thread)
    void add_conn(Transport *c);
    void remove_conn(Transport *c);
    // A connection switched protocols: the old one (whose call is on the
    // stack) is deleted in this iteration's check phase, not at the next read,
    // which an idle WebSocket may never have.
    void retire_later(Transport *c) { retiring_.push_back(c); }
    void forget_retiring(Transport *c);
    bool stopping() const { return stopping_; }
    char *read_buffer() { return read_buf_.get(); }
    static constexpr size_t kReadBufSize = 256 * 1024;

private:
    static void thread_main(void *arg);
    static void on_handle_closed(uv_handle_t *h);
    bool setup(std::string *err);
    void run();
    void begin_stop();
    void maybe_finish();
    void finish();
    void tick();
    void drain_queue();

    uv_loop_t own_loop_;
    bool own_thread_ = true;
    uv_thread_t owner_{};
    std::atomic<int> handles_open_{0};
    bool closed_ = false;
    uv_thread_t thread_{};
    bool thread_started_ = false;
    int fd_ = -1;
    uv_tcp_t listener_;
    uv_async_t async_;
    uv_timer_t tick_timer_;
    uv_timer_t drain_timer_;
    uv_check_t ws_flush_;  // after each poll: the WebSockets written to go out, one write each
    std::vector<Transport *> retiring_;  // connections holding a switched-from protocol
    uint64_t tick_ms_ = 1000;
    std::unique_ptr<char[]> read_buf_;

    // start handshake
    std::mutex start_mu_;
    bool start_done_ = false;
    bool start_ok_ = false;
    std::string start_err_;
    std::condition_variable start_cv_;

    // cross-thread queue
    std::mutex q_mu_;
    struct Posted {
        Request *r;
        uint64_t gen;
        uint8_t kind;
    };
    std::vector<Posted> queue_;
    std::vector<Posted> queue_swap_;
    std::vector<WsOp> ws_queue_;
    std::vector<WsOp> ws_queue_swap_;
    WsHub ws_hub_{*this};
    bool loop_alive_ = false;
    std::atomic<bool> stop_requested_{false};
    std::atomic<uint32_t> drain_timeout_ms_{0};
    bool stopping_ = false;
    bool finished_ = false;

    // request slots: a fixed table of pointers so other threads can look a
    // slot up while the loop adds more; requests are freed only in ~Worker.
    static constexpr uint32_t kMaxSlots = 1u << 20;
    Request **slots_ = nullptr;  // calloc'd: untouched pages cost no memory
    std::atomic<uint32_t> slot_count_{0};
    Request *free_ = nullptr;
    uint32_t gen_seed_ = 0;

    Transport *conns_ = nullptr;
    size_t conn_count_ = 0;

    friend class Transport;
};

}  // namespace ql
