// WsConn: the WebSocket protocol on a transport, after a 101. It reads
// client frames (FrameReader), hands whole messages to the route's
// callbacks, answers pings, runs the close handshake, and writes frames:
// what the socket does not take at once waits in an ordered queue of shared
// buffers (a published message is framed once and queued for every
// subscriber as the same buffer). Per-worker bookkeeping (ids, topics, sends
// from other threads): ws_hub.hpp.
#pragma once

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "quicklane.h"
#include "queue.hpp"
#include "transport/transport.hpp"
#include "ws/ws_codec.hpp"
#include "ws/ws_deflate.hpp"

namespace ql {

struct Request;
struct WsSlot;

// A WebSocket route's behaviour, shared by the router snapshots that hold it.
struct WsRoute {
    ql_ws_behavior b{};
    std::unique_ptr<QueueRoute> queued;  // a queue-bound route (ql_app_ws_queue), or null
    uint64_t max_message = 16u << 20;
    uint64_t max_backpressure = 1u << 20;
    uint32_t idle_timeout_ms = 120000;
    uint8_t window_bits = 15;  // permessage-deflate, dedicated contexts
    bool raw = false;          // ql_request_hijack: bytes both ways, no frames
    ~WsRoute() {
        if (b.destroy) b.destroy(b.user_data);
    }
};

using Frame = std::shared_ptr<const std::string>;

// Queued sockets (ql_app_ws_queue): the bytes of messages handed to the host
// and not yet released, shared by the socket and those events. Over the
// socket's window the loop stops reading it; a release that brings it to
// half the window wakes the loop (WsOp::Resume).
struct WsInbound {
    std::atomic<uint64_t> bytes{0};
    std::atomic<bool> paused{false};
    Worker *w = nullptr;
    uint32_t slot = 0, gen = 0;
    uint64_t low = 0;
    void release(uint64_t n);  // any thread
};

// What ql_event.request points at for a WS event.
struct WsEvent {
    static constexpr uint32_t kMagic = 0x57534556;  // "WSEV"
    uint32_t magic = kMagic;
    void *tag = nullptr;
    std::string data;
    bool binary = false;
    uint16_t code = 0;
    std::shared_ptr<WsInbound> inbound;  // MESSAGE: credited back on release
};

class WsConn final : public Protocol {
public:
    // deflate: the negotiated permessage-deflate, or null.
    WsConn(Transport &t, std::shared_ptr<const WsRoute> route, WsSlot *slot, std::string subprotocol, void *tag,
           const DeflateParams *deflate);
    ~WsConn() override;

    // The 101 went out (or, hijacked, the answers before): on_open with the
    // upgrade request, then the bytes that came behind it.
    void open(Request *upgrade, std::string_view early);

    // Protocol
    void start() override;
    void on_data(const char *data, size_t len) override;
    void on_written(int status) override;
    void on_closed() override;
    void check_timeouts(uint64_t now) override;
    void drain() override;  // server stopping: close with 1001

    // Sending (loop thread). Results as ql_ws_send's.
    ql_status send(uint8_t opcode, std::string_view payload);
    // A whole frame (published, or from another thread: `counted` when its
    // bytes are in the slot's buffered count already, `told_queued` when
    // that thread was told QL_WS_QUEUED: a drain is owed).
    ql_status send_frame(const Frame &f, bool counted, bool told_queued = false);
    // A published message: `plain` framed as it is, `shared` its compressed
    // frame made once per loop (shared contexts; made on first need).
    ql_status send_published(const Frame &plain, Frame &shared);
    // A send from another thread was queued or dropped: on_drain is owed.
    void arm_drain();
    // Writes what was sent since the last flush (the loop's check phase).
    void flush();
    // Queued sockets: the host released enough of its messages.
    void resume_reading();
    // Starts the close handshake (code 0: cut now). False: already closing.
    bool close(uint16_t code, std::string_view reason);
    // Ends the connection now, open or closing (the close notice keeps the
    // code of a close under way, else 1006). False: already closed.
    bool cut();

    ql_ws_id id() const { return id_; }
    WsSlot *slot() const { return slot_; }
    // Subscribed topics (the hub keeps the index).
    std::vector<std::string> &topics() { return rare().topics; }
    bool has_topics() const { return rare_ && !rare_->topics.empty(); }
    std::string_view subprotocol() const { return rare_ ? std::string_view(rare_->subprotocol) : std::string_view(); }
    void *tag = nullptr;

private:
    enum class State { Open, Closing, Closed };
    void on_frame_event(FrameReader::Event ev);
    void send_control(uint8_t opcode, std::string_view payload);
    bool over_backpressure(size_t more);
    void queue_owned(Frame f, size_t off);
    void seal_tail();      // tail_ becomes a frame of the queue
    void mark_dirty();     // flush at the end of this loop iteration
    ql_status accepted();  // SENT or QUEUED, from the buffered count
    void write_queued();
    void wrote(size_t n);
    void fail(uint16_t code, const char *why);
    // The route's host, by callback or by queue (ql_app_ws_queue).
    void emit_open(Request *upgrade);
    void emit_message(std::string &msg, bool binary);
    void emit_drain();
    void emit_close();
    void push_event(uint32_t kind, std::unique_ptr<WsEvent> e);
    bool compressing(size_t) const { return deflate_; }
    Frame compressed_frame(uint8_t opcode, std::string_view payload);  // null: zlib failed
    bool inflate_message();  // the reader's message, inflated in place; false: failed (closing)

    std::shared_ptr<const WsRoute> route_;
    WsSlot *slot_;
    ql_ws_id id_;
    FrameReader reader_;
    State state_ = State::Open;
    bool opened_ = false;
    bool drain_armed_ = false;
    bool close_after_write_ = false;  // the close frame is queued: close TCP once it is out
    uint16_t close_code_ = 1006;
    // What most sockets never use, made on first need: an idle socket stays
    // small (the budget is 1 KB per idle WebSocket, all included).
    struct Rare {
        std::vector<std::string> topics;
        std::string subprotocol;
        std::string close_reason;
        std::unique_ptr<Deflater> deflater;  // dedicated contexts
        std::unique_ptr<Inflater> inflater;
    };
    Rare &rare() {
        if (!rare_) rare_ = std::make_unique<Rare>();
        return *rare_;
    }
    std::unique_ptr<Rare> rare_;
    uint64_t close_started_ = 0;
    uint64_t last_recv_ = 0;
    uint64_t last_ping_ = 0;
    // Frames waiting for the socket, in order; `inflight_` is the write under way.
    struct Out {
        Frame buf;
        size_t off;
    };
    std::shared_ptr<WsInbound> inbound_;  // queued routes
    // permessage-deflate: on when negotiated; own contexts when dedicated.
    bool deflate_ = false;
    DeflateParams dp_;
    bool dirty_ = false;
    std::string tail_;  // frames sent since the last flush, not yet in queue_
    std::vector<Out> queue_;
    std::vector<Out> inflight_;
    size_t inflight_bytes_ = 0;
};

ql_websocket *as_handle(WsConn *c);

// An accepted upgrade or a hijack (request `id`) whose connection ended
// before it switched: a queued route's host still gets its one
// QL_EVENT_WS_CLOSE (id 0, 1006), a callback route's its on_upgrade_gone.
void ws_never_opened(Worker &w, const WsRoute &route, ql_req_id id, void *tag);

}  // namespace ql
