#include "ws/ws_conn.hpp"

#include <cstring>

#include "request.hpp"
#include "server.hpp"
#include "utf8.hpp"
#include "worker.hpp"
#include "ws/ws_hub.hpp"

namespace ql {

namespace {
constexpr unsigned kMaxIov = 64;
constexpr uint64_t kCloseWaitMs = 2000;  // for the client's close frame
constexpr uint64_t kRawFlushWaitMs = 30000;  // a closing hijacked connection: for its last bytes to go
}  // namespace

WsConn::WsConn(Transport &transport, std::shared_ptr<const WsRoute> route, WsSlot *slot, std::string sub, void *t,
               const DeflateParams *deflate)
    : Protocol(transport),
      tag(t),
      route_(std::move(route)),
      slot_(slot),
      id_(make_ws_id(transport.w.index, slot->index, slot->gen.load(std::memory_order_relaxed))),
      reader_(route_->max_message) {
    if (!sub.empty()) rare().subprotocol = std::move(sub);
    slot_->conn = this;
    slot_->max_backpressure = route_->max_backpressure;
    slot_->close_on_backpressure = route_->b.close_on_backpressure != 0;
    slot_->raw = route_->raw;
    if (route_->queued) {
        inbound_ = std::make_shared<WsInbound>();
        inbound_->w = &transport.w;
        inbound_->slot = slot->index;
        inbound_->gen = static_cast<uint32_t>(id_);
        inbound_->low = route_->max_backpressure / 2;
    }
    if (deflate) {
        deflate_ = true;
        dp_ = *deflate;
        reader_.allow_rsv1(true);
        if (route_->b.compression == QL_WS_COMPRESS_DEDICATED) {
            rare().deflater = std::make_unique<Deflater>();
            rare_->inflater = std::make_unique<Inflater>();
        }
    }
}

WsConn::~WsConn() = default;

ql_websocket *as_handle(WsConn *c) { return reinterpret_cast<ql_websocket *>(c); }

void WsConn::start() {
    last_recv_ = last_ping_ = t.w.now_ms();
    t.read(true);
}

void WsConn::open(Request *upgrade, std::string_view early) {
    start();
    opened_ = true;
    emit_open(upgrade);
    if (!early.empty() && !t.closing()) on_data(early.data(), early.size());
}

// ---- reading -----------------------------------------------------------

void WsConn::on_data(const char *data, size_t len) {
    last_recv_ = t.w.now_ms();
    if (route_->raw) {  // hijacked: the bytes as they came
        if (state_ == State::Open) {
            std::string chunk(data, len);
            emit_message(chunk, true);
        }
        return;
    }
    while (len && !t.closing() && !reader_.failed()) {
        FrameReader::Event ev = FrameReader::Event::None;
        size_t n = reader_.feed(data, len, ev);
        data += n;
        len -= n;
        if (ev == FrameReader::Event::None) break;
        on_frame_event(ev);
    }
}

void WsConn::on_frame_event(FrameReader::Event ev) {
    const ql_ws_behavior &b = route_->b;
    switch (ev) {
    case FrameReader::Event::Message: {
        if (reader_.compressed() && !inflate_message()) break;
        if (state_ == State::Open) emit_message(reader_.message(), reader_.binary());
        break;
    }
    case FrameReader::Event::Ping:
        if (state_ == State::Open) {
            // A client that pings and never reads gets no more pongs once
            // its socket is over the limit (a pong may answer only the
            // latest ping, RFC 6455 5.5.3): memory stays bounded.
            if (!over_backpressure(reader_.control().size() + 2)) send_control(kWsPong, reader_.control());
            if (b.on_ping) b.on_ping(b.user_data, as_handle(this), reader_.control().data(), reader_.control().size(), 0);
        }
        break;
    case FrameReader::Event::Pong:
        if (state_ == State::Open && b.on_pong)
            b.on_pong(b.user_data, as_handle(this), reader_.control().data(), reader_.control().size(), 0);
        break;
    case FrameReader::Event::Close:
        if (state_ == State::Open) {
            // The client closes: answer with its code (none when it gave none),
            // then close the connection once the answer is out (the server
            // closes TCP first, RFC 6455 7.1.1).
            close_code_ = reader_.close_code();
            rare().close_reason.assign(reader_.close_reason());
            t.w.ws_hub().retire(slot_);
            state_ = State::Closing;
            close_started_ = t.w.now_ms();
            send_control(kWsClose, close_code_ == 1005 ? std::string() : ws_close_payload(close_code_, {}));
            close_after_write_ = true;
            t.read(false);
            if (queue_.empty() && inflight_.empty()) t.close();
        } else {
            t.close();  // the answer to our close: done
        }
        break;
    case FrameReader::Event::Error: fail(reader_.error_code(), reader_.error_reason()); break;
    case FrameReader::Event::None: break;
    }
}

// The connection fails (RFC 6455 7.1.7): a close frame with the code, then
// the TCP close, without waiting for the client's answer.
void WsConn::fail(uint16_t code, const char *why) {
    if (state_ != State::Open) {
        t.close();
        return;
    }
    close_code_ = code;
    rare().close_reason = why;
    t.w.ws_hub().retire(slot_);
    state_ = State::Closing;
    close_started_ = t.w.now_ms();
    send_control(kWsClose, ws_close_payload(code, why));
    close_after_write_ = true;
    t.read(false);
    if (queue_.empty() && inflight_.empty()) t.close();
}

bool WsConn::close(uint16_t code, std::string_view reason) {
    if (state_ != State::Open) return false;
    t.w.ws_hub().retire(slot_);
    if (code == 0) {
        state_ = State::Closed;
        close_code_ = 1006;
        t.close();
        return true;
    }
    if (route_->raw) {
        // Hijacked: no close frame; the connection ends once what was sent
        // before went out.
        close_code_ = code;
        rare().close_reason.assign(reason);
        state_ = State::Closing;
        close_started_ = t.w.now_ms();
        close_after_write_ = true;
        t.read(false);
        flush();
        if (queue_.empty() && inflight_.empty()) t.close();
        return true;
    }
    close_code_ = code;
    rare().close_reason.assign(reason);
    state_ = State::Closing;
    close_started_ = t.w.now_ms();
    send_control(kWsClose, ws_close_payload(code, reason));
    return true;
}

bool WsConn::cut() {
    if (state_ == State::Closed || t.closing()) return false;
    if (state_ == State::Open) {
        t.w.ws_hub().retire(slot_);
        close_code_ = 1006;
    }
    state_ = State::Closed;
    t.close();
    return true;
}

void WsConn::drain() {
    // Closing already: the client's answer is awaited (within the worker's
    // drain deadline, and kCloseWaitMs).
    if (state_ == State::Open) close(1001, "server stopping");
}

void WsConn::check_timeouts(uint64_t now) {
    if (t.closing()) return;
    if (state_ == State::Closing) {
        // The client's answer (or, to a client that stopped reading, our
        // close frame) has had its time.
        if (now - close_started_ >= (route_->raw ? kRawFlushWaitMs : kCloseWaitMs)) t.close();
        return;
    }
    // Not read because its host is slow: not idle.
    if (inbound_ && inbound_->paused.load()) last_recv_ = now;
    if (now - last_recv_ >= route_->idle_timeout_ms) {
        close(1001, "idle timeout");
        close_started_ = now;
        return;
    }
    uint32_t every = route_->b.ping_interval_ms;
    if (every && !route_->raw && now - last_recv_ >= every && now - last_ping_ >= every) {
        last_ping_ = now;
        send_control(kWsPing, {});
    }
}

void WsConn::on_closed() {
    state_ = State::Closed;
    if (dirty_) t.w.ws_hub().undirty(this);
    dirty_ = false;
    if (inbound_) inbound_->paused.store(false);  // late releases post nothing
    WsHub &hub = t.w.ws_hub();
    hub.leave_all(this);
    if (slot_->conn == this) {
        if (slot_->gen.load(std::memory_order_relaxed) == static_cast<uint32_t>(id_)) hub.retire(slot_);
        if (opened_) emit_close();
        queue_.clear();
        inflight_.clear();
        tail_.clear();
        hub.release(slot_);
    }
}

// ---- the host: callbacks or a queue ------------------------------------------

void WsConn::push_event(uint32_t kind, std::unique_ptr<WsEvent> e) {
    ql_event ev{};
    ev.kind = kind;
    ev.id = id_;
    ev.server = ql_websocket_server(as_handle(this));
    ev.route_data = route_->queued->route_data;
    e->tag = tag;
    ev.request = reinterpret_cast<ql_request *>(e.release());
    route_->queued->queue->push(ev);
}

void WsConn::emit_open(Request *upgrade) {
    const ql_ws_behavior &b = route_->b;
    if (route_->queued)
        push_event(QL_EVENT_WS_OPEN, std::make_unique<WsEvent>());
    else if (b.on_open)
        b.on_open(b.user_data, as_handle(this), reinterpret_cast<const ql_request *>(upgrade));
}

void WsConn::emit_message(std::string &msg, bool binary) {
    const ql_ws_behavior &b = route_->b;
    if (!route_->queued) {
        if (b.on_message) b.on_message(b.user_data, as_handle(this), msg.data(), msg.size(), binary);
        return;
    }
    auto e = std::make_unique<WsEvent>();
    e->data.swap(msg);  // the reader starts its next message in a new buffer
    e->binary = binary;
    e->inbound = inbound_;
    uint64_t held = inbound_->bytes.fetch_add(e->data.size()) + e->data.size();
    push_event(QL_EVENT_WS_MESSAGE, std::move(e));
    if (held > route_->max_backpressure && !inbound_->paused.load()) {
        // The host holds a window's worth: stop reading until it releases
        // half. A release that came between the add and the flag is seen by
        // the re-check.
        inbound_->paused.store(true);
        if (inbound_->bytes.load() <= inbound_->low && inbound_->paused.exchange(false)) return;
        t.read(false);
    }
}

void WsConn::resume_reading() {
    if (state_ != State::Closed && !t.closing() && !close_after_write_) {
        last_recv_ = t.w.now_ms();
        t.read(true);
    }
}

void ws_never_opened(Worker &w, const WsRoute &route, ql_req_id id, void *tag) {
    if (!route.queued) {
        if (route.b.on_upgrade_gone) route.b.on_upgrade_gone(route.b.user_data, id, tag);
        return;
    }
    ql_event ev{};
    ev.kind = QL_EVENT_WS_CLOSE;
    ev.server = reinterpret_cast<ql_server *>(&w.server);  // the C ABI's ql_server is the Server
    ev.route_data = route.queued->route_data;
    auto e = std::make_unique<WsEvent>();
    e->tag = tag;
    e->code = 1006;
    e->data = "the connection ended before it switched";
    ev.request = reinterpret_cast<ql_request *>(e.release());
    route.queued->queue->push(ev);
}

void WsInbound::release(uint64_t n) {
    uint64_t left = bytes.fetch_sub(n) - n;
    if (left <= low && paused.load() && paused.exchange(false)) {
        WsOp op;
        op.kind = WsOp::Resume;
        op.slot = slot;
        op.gen = gen;
        w->post_ws(std::move(op));
    }
}

void WsConn::emit_drain() {
    const ql_ws_behavior &b = route_->b;
    if (route_->queued)
        push_event(QL_EVENT_WS_DRAIN, std::make_unique<WsEvent>());
    else if (b.on_drain)
        b.on_drain(b.user_data, as_handle(this));
}

void WsConn::emit_close() {
    const ql_ws_behavior &b = route_->b;
    if (route_->queued) {
        auto e = std::make_unique<WsEvent>();
        e->code = close_code_;
        if (rare_) e->data = rare_->close_reason;
        push_event(QL_EVENT_WS_CLOSE, std::move(e));
    } else if (b.on_close) {
        std::string_view reason = rare_ ? std::string_view(rare_->close_reason) : std::string_view();
        b.on_close(b.user_data, as_handle(this), close_code_, reason.data(), reason.size());
    }
}

// ---- permessage-deflate ----------------------------------------------------

// The message the reader assembled is compressed: inflate it (a bomb stops
// at max_message: 1009), then check its text.
bool WsConn::inflate_message() {
    static thread_local std::string out;
    Inflater *own = rare_ ? rare_->inflater.get() : nullptr;
    Inflater &inf = own ? *own : t.w.ws_hub().shared_inflater;
    // Our inflater's window must hold the client's: 15 unless it agreed to less.
    uint8_t bits = own ? dp_.client_max_window_bits : 15;
    Inflater::Result r = inf.inflate(reader_.message(), out, route_->max_message, bits, own && !dp_.client_no_context_takeover);
    if (r == Inflater::Result::TooBig) {
        fail(1009, "message too big (inflated)");
        return false;
    }
    if (r == Inflater::Result::Corrupt) {
        fail(1007, "invalid compressed data");
        return false;
    }
    if (!reader_.binary() && !valid_utf8(out)) {
        fail(1007, "invalid UTF-8 in a text message");
        return false;
    }
    reader_.message().swap(out);
    if (out.capacity() > (1u << 20)) std::string().swap(out);
    return true;
}

Frame WsConn::compressed_frame(uint8_t opcode, std::string_view payload) {
    static thread_local std::string body;
    body.clear();
    Deflater *own = rare_ ? rare_->deflater.get() : nullptr;
    Deflater &d = own ? *own : t.w.ws_hub().shared_deflater;
    if (!d.compress(payload, body, dp_.server_max_window_bits, own && !dp_.server_no_context_takeover))
        return nullptr;
    auto f = std::make_shared<std::string>();
    ws_frame(*f, opcode, body, true);
    if (body.capacity() > (1u << 20)) std::string().swap(body);
    return f;
}

ql_status WsConn::send_published(const Frame &plain, Frame &shared) {
    std::string_view payload = ws_frame_payload(*plain);
    if (state_ != State::Open || !compressing(payload.size())) return send_frame(plain, false);
    uint8_t opcode = static_cast<uint8_t>((*plain)[0] & 0x0F);
    if ((rare_ && rare_->deflater) || dp_.server_max_window_bits != 15) {
        Frame own = compressed_frame(opcode, payload);  // contexts of its own, or a smaller window
        return send_frame(own ? own : plain, false);
    }
    if (!shared) shared = compressed_frame(opcode, payload);
    return send_frame(shared ? shared : plain, false);
}

// ---- writing -----------------------------------------------------------

bool WsConn::over_backpressure(size_t more) {
    uint64_t b = slot_->buffered.load(std::memory_order_relaxed);
    return b && b + more > route_->max_backpressure;
}

void WsConn::send_control(uint8_t opcode, std::string_view payload) {
    // Control frames go in order with the data before them; they are small
    // and never dropped.
    size_t before = tail_.size();
    ws_frame(tail_, opcode, payload);
    slot_->buffered.fetch_add(tail_.size() - before, std::memory_order_relaxed);
    if (opcode == kWsClose)
        flush();  // the close paths look at the queue right after
    else
        mark_dirty();
}

ql_status WsConn::send(uint8_t opcode, std::string_view payload) {
    if (state_ != State::Open) return QL_E_GONE;
    if (opcode >= 8) {  // a ping or pong from the host: in order, never dropped, never compressed
        send_control(opcode, payload);
        return accepted();
    }
    if (route_->raw) {  // hijacked: the bytes as given
        if (over_backpressure(payload.size())) {
            drain_armed_ = true;
            return QL_WS_DROPPED;
        }
        tail_.append(payload);
        slot_->buffered.fetch_add(payload.size(), std::memory_order_relaxed);
        mark_dirty();
        return accepted();
    }
    if (compressing(payload.size())) {
        if (Frame f = compressed_frame(opcode, payload)) return send_frame(f, false);
    }
    char head[10];
    size_t hn = ws_frame_head(head, opcode, payload.size());
    size_t total = hn + payload.size();
    if (over_backpressure(total)) {
        drain_armed_ = true;
        if (slot_->close_on_backpressure) fail(1008, "too much data waiting for a slow client");
        return QL_WS_DROPPED;
    }
    // Copied behind the frames sent before it; written at the end of this
    // loop iteration, with them, in one writev.
    tail_.append(head, hn).append(payload);
    slot_->buffered.fetch_add(total, std::memory_order_relaxed);
    mark_dirty();
    return accepted();
}

// SENT while the socket's unsent bytes stay at or under half its limit (the
// drain point); above it QUEUED, and on_drain follows once it is back there.
ql_status WsConn::accepted() {
    if (slot_->buffered.load(std::memory_order_relaxed) <= route_->max_backpressure / 2) return QL_WS_SENT;
    drain_armed_ = true;
    return QL_WS_QUEUED;
}

void WsConn::mark_dirty() {
    if (dirty_) return;
    dirty_ = true;
    t.w.ws_hub().dirty(this);
}

void WsConn::seal_tail() {
    if (tail_.empty()) return;
    auto f = std::make_shared<std::string>();
    f->swap(tail_);
    queue_.push_back({std::move(f), 0});
}

void WsConn::flush() {
    dirty_ = false;
    seal_tail();
    write_queued();
}

ql_status WsConn::send_frame(const Frame &f, bool counted, bool told_queued) {
    if (state_ != State::Open) return QL_E_GONE;
    if (counted && deflate_ && (static_cast<uint8_t>((*f)[0]) & 0x0F) < 8) {
        // Framed plain by another thread: compressed here, counted again.
        slot_->buffered.fetch_sub(f->size(), std::memory_order_relaxed);
        if (told_queued) drain_armed_ = true;
        Frame none;
        return send_published(f, none);
    }
    if (!counted) {
        if (over_backpressure(f->size())) {
            drain_armed_ = true;
            if (slot_->close_on_backpressure) fail(1008, "too much data waiting for a slow client");
            return QL_WS_DROPPED;
        }
        slot_->buffered.fetch_add(f->size(), std::memory_order_relaxed);
    }
    seal_tail();  // in order behind what was sent before it
    queue_owned(f, 0);
    mark_dirty();
    if (told_queued) drain_armed_ = true;
    return accepted();
}

void WsConn::arm_drain() {
    drain_armed_ = true;
    wrote(0);  // already under the mark: told now
}

void WsConn::queue_owned(Frame f, size_t off) { queue_.push_back({std::move(f), off}); }

// Everything queued goes out in one vectored write; whatever the socket
// does not take at once waits in libuv's queue, and on_written follows.
void WsConn::write_queued() {
    if (queue_.empty() || !inflight_.empty() || t.writing() || t.closing()) return;
    uv_buf_t bufs[kMaxIov];
    unsigned n = 0;
    size_t bytes = 0;
    while (n < kMaxIov && n < queue_.size()) {
        const Out &o = queue_[n];
        bufs[n] = uv_buf_init(const_cast<char *>(o.buf->data() + o.off), static_cast<unsigned>(o.buf->size() - o.off));
        bytes += o.buf->size() - o.off;
        ++n;
    }
    // Try at once: most writes complete here, with no uv_write at all.
    int done = t.try_writev(bufs, n);
    if (done < 0) {
        t.close();
        return;
    }
    t.count_out(static_cast<size_t>(done));
    size_t left = static_cast<size_t>(done);
    unsigned whole = 0;
    while (whole < n && left >= bufs[whole].len) left -= bufs[whole++].len;
    if (whole == n) {
        queue_.erase(queue_.begin(), queue_.begin() + n);
        wrote(bytes);
        if (!queue_.empty()) write_queued();
        return;
    }
    bufs[whole].base += left;
    bufs[whole].len -= static_cast<unsigned>(left);
    queue_[whole].off += left;
    inflight_.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.begin() + n));
    queue_.erase(queue_.begin(), queue_.begin() + n);
    inflight_bytes_ = bytes - static_cast<size_t>(done);
    if (done) wrote(static_cast<size_t>(done));
    t.queue(bufs + whole, n - whole);
}

void WsConn::on_written(int) {
    inflight_.clear();
    size_t n = inflight_bytes_;
    inflight_bytes_ = 0;
    wrote(n);
    if (!t.closing()) write_queued();
}

// n bytes went to the kernel: the buffered count falls; a drain is told
// once it is at half the limit; a close frame that went out ends the TCP.
void WsConn::wrote(size_t n) {
    uint64_t left = slot_->buffered.fetch_sub(n, std::memory_order_relaxed) - n;
    if (close_after_write_ && queue_.empty() && inflight_.empty()) {
        t.close();
        return;
    }
    if (drain_armed_ && left <= route_->max_backpressure / 2 && state_ == State::Open) {
        drain_armed_ = false;
        emit_drain();
    }
}

}  // namespace ql
