// WsHub: a worker loop's WebSockets — their slots (ids with a generation, as
// requests have, so a late send from any thread finds QL_E_GONE instead of
// freed memory), the topics its sockets subscribe to, and what other
// threads hand this loop (sends, closes, subscriptions, publishes).
// PubSub: the server's view of every topic across its loops, so a publish
// from anywhere reaches exactly the loops with subscribers.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "quicklane.h"
#include "ws/event_stream.hpp"
#include "ws/ws_conn.hpp"

namespace ql {

class Worker;

struct WsSlot {
    uint32_t index = 0;
    std::atomic<uint32_t> gen{0};        // changes when the socket starts closing
    std::atomic<uint64_t> buffered{0};   // bytes sent and not yet taken by the kernel
    uint64_t max_backpressure = 0;       // fixed while the slot is in use
    bool close_on_backpressure = false;
    bool raw = false;                    // a hijacked connection: sends are bytes, not frames
    WsConn *conn = nullptr;              // loop thread
    WsSlot *next_free = nullptr;
};

// Work another thread hands a loop.
struct WsOp {
    enum Kind : uint8_t { Send, Close, Subscribe, Unsubscribe, Publish, ArmDrain, Resume, Cut };
    Kind kind = Send;
    uint32_t slot = 0;
    uint32_t gen = 0;
    Frame frame;        // Send (counted in buffered already; code 1: its sender was told QUEUED), Publish
    std::string text;   // the topic, or a close reason
    uint16_t code = 0;
    ql_ws_id exclude = 0;
};

inline ql_ws_id make_ws_id(uint32_t worker, uint32_t slot, uint32_t gen) {
    return (static_cast<uint64_t>(worker) << 56) | (static_cast<uint64_t>(slot) << 32) | gen;
}

class WsHub {
public:
    explicit WsHub(Worker &w);
    ~WsHub();
    WsHub(const WsHub &) = delete;
    WsHub &operator=(const WsHub &) = delete;

    WsSlot *acquire();                          // loop thread
    void retire(WsSlot *s);                     // loop thread: its id goes stale
    void release(WsSlot *s);                    // loop thread: reusable
    WsSlot *lookup(uint32_t slot) const;        // any thread
    void on_op(WsOp &op);                       // loop thread

    // This loop's topics (loop thread). subscribe/unsubscribe: false when
    // nothing changed.
    bool subscribe(WsConn *c, std::string_view topic);
    bool unsubscribe(WsConn *c, std::string_view topic);
    void leave_all(WsConn *c);
    void publish(std::string_view topic, const Frame &f, ql_ws_id exclude);
    // Sockets with bytes to write this iteration (WsConn::mark_dirty), and
    // their writes (the worker's check handle).
    void dirty(WsConn *c) { dirty_.push_back(c); }
    void undirty(WsConn *c);
    void flush();
    // Event-stream clients (loop thread): subscribed to their topics until
    // they leave; keep-alive comments from tick; ended at server stop.
    void add_event_stream(std::unique_ptr<SseSub> sub);
    void remove_event_stream(SseSub *sub);
    void tick(uint64_t now);
    void end_event_streams();
    // permessage-deflate without context takeover: one pair per loop.
    Deflater shared_deflater;
    Inflater shared_inflater;

private:
    Worker &w_;
    static constexpr uint32_t kMaxSlots = 1u << 24;
    WsSlot **slots_ = nullptr;  // calloc'd: untouched pages cost no memory
    std::atomic<uint32_t> count_{0};
    WsSlot *free_ = nullptr;
    uint32_t gen_seed_ = 0;
    std::unordered_map<std::string, std::vector<WsConn *>> topics_;
    std::vector<WsConn *> dirty_, flushing_;
    std::vector<std::unique_ptr<SseSub>> sse_;
    std::unordered_map<std::string, std::vector<SseSub *>> sse_topics_;
};

class PubSub {
public:
    // sse: id is an event stream's request id (its own member set).
    void add(std::string_view topic, ql_ws_id id, uint32_t worker, uint32_t workers, bool sse = false);
    void remove(std::string_view topic, ql_ws_id id, uint32_t worker, bool sse = false);
    // The loops with subscribers to `topic` into `loops`; the subscribers, less `exclude`.
    size_t targets(std::string_view topic, ql_ws_id exclude, std::vector<uint32_t> &loops);

private:
    struct Topic {
        std::unordered_set<ql_ws_id> members;
        std::unordered_set<ql_req_id> sse_members;
        std::vector<uint32_t> per_loop;
    };
    std::mutex mu_;
    std::unordered_map<std::string, Topic> topics_;
};

}  // namespace ql
