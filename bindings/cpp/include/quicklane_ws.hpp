// quicklane_ws.hpp — WebSockets and pub/sub for the C++ API (included by
// quicklane.hpp; not on its own). In the shape of uWebSockets' app.ws():
//
//   app.ws("/ws/chat/{room}", {
//       .open = [](quicklane::WebSocket& ws, const quicklane::Request& req) {
//           ws.subscribe(std::string("room:") + std::string(req.param("room")));
//       },
//       .message = [](quicklane::WebSocket& ws, std::string_view msg, bool binary) {
//           ws.send(msg, binary);
//       },
//   });
//
// Callbacks run on the socket's loop thread. A WebSocket is a cheap copyable
// handle (server + id): keep it to send, close or subscribe later from any
// thread; once the socket is closed its calls report SendStatus::Closed /
// false instead of touching freed memory.
#ifndef QUICKLANE_WS_HPP
#define QUICKLANE_WS_HPP

namespace quicklane {

enum class SendStatus { Sent, Queued, Dropped, Closed };

// permessage-deflate (see ql_ws_behavior.compression): Shared keeps no
// context (no zlib memory per socket), Dedicated keeps one per socket.
enum class Compression : std::uint32_t {
    None = QL_WS_COMPRESS_NONE,
    Shared = QL_WS_COMPRESS_SHARED,
    Dedicated = QL_WS_COMPRESS_DEDICATED
};

class WebSocket {
public:
    WebSocket() noexcept = default;
    WebSocket(ql_server* server, ql_ws_id id) noexcept : server_(server), id_(id) {}
    explicit WebSocket(ql_websocket* ws) noexcept
        : server_(ql_websocket_server(ws)), id_(ql_websocket_id(ws)), live_(ws) {}

    ql_ws_id id() const noexcept { return id_; }
    ql_server* server() const noexcept { return server_; }

    // One message (text must be valid UTF-8: else Error QL_E_INVALID).
    SendStatus send(std::string_view data, bool binary = false) const {
        detail::ErrorSlot err;
        Status st = ql_ws_send(server_, id_, data.data(), data.size(), binary ? QL_WS_BINARY : QL_WS_TEXT, err.out());
        return to_send_status(st, err, "ql_ws_send");
    }
    // A ping or a pong of at most 125 bytes (Error QL_E_INVALID otherwise), in
    // order with the messages; the core answers the client's pings itself.
    SendStatus ping(std::string_view payload = {}) const { return control(QL_WS_PING, payload); }
    SendStatus pong(std::string_view payload = {}) const { return control(QL_WS_PONG, payload); }
    // The close handshake (code 0: cut the connection). False when it is
    // closed or closing already.
    bool close(std::uint16_t code = 1000, std::string_view reason = {}) const {
        detail::ErrorSlot err;
        Status st = ql_ws_close(server_, id_, code, reason.data(), reason.size(), err.out());
        if (st == QL_E_GONE) return false;
        detail::check(st, err, "ql_ws_close");
        return true;
    }
    bool subscribe(std::string_view topic) const { return subscription(topic, true); }
    bool unsubscribe(std::string_view topic) const { return subscription(topic, false); }
    // To every subscriber of topic but this socket; returns how many.
    std::size_t publish(std::string_view topic, std::string_view data, bool binary = false) const {
        std::size_t n = 0;
        detail::ErrorSlot err;
        detail::check(ql_server_publish(server_, topic.data(), topic.size(), data.data(), data.size(),
                                        binary ? QL_WS_BINARY : QL_WS_TEXT, id_, &n, err.out()),
                      err, "ql_server_publish");
        return n;
    }
    // Bytes sent and not yet taken by the kernel (0 once closed).
    std::uint64_t buffered() const noexcept {
        std::uint64_t n = 0;
        return ql_ws_buffered(server_, id_, &n, nullptr) == QL_OK ? n : 0;
    }
    // Inside a callback only: the host pointer kept with the socket, and the
    // chosen subprotocol.
    void* tag() const noexcept { return live_ ? ql_websocket_tag(live_) : nullptr; }
    void set_tag(void* tag) const noexcept {
        if (live_) ql_websocket_set_tag(live_, tag);
    }
    std::string_view subprotocol() const noexcept {
        return live_ ? detail::view(ql_websocket_subprotocol(live_)) : std::string_view{};
    }

    static SendStatus to_send_status(Status st, const detail::ErrorSlot& err, const char* what) {
        switch (st) {
        case QL_WS_SENT: return SendStatus::Sent;
        case QL_WS_QUEUED: return SendStatus::Queued;
        case QL_WS_DROPPED: return SendStatus::Dropped;
        case QL_E_GONE: return SendStatus::Closed;
        default: detail::raise(st, err, what);
        }
    }

private:
    SendStatus control(std::uint32_t kind, std::string_view payload) const {
        detail::ErrorSlot err;
        Status st = ql_ws_send(server_, id_, payload.data(), payload.size(), kind, err.out());
        return to_send_status(st, err, "ql_ws_send");
    }
    bool subscription(std::string_view topic, bool on) const {
        detail::ErrorSlot err;
        Status st = on ? ql_ws_subscribe(server_, id_, topic.data(), topic.size(), err.out())
                       : ql_ws_unsubscribe(server_, id_, topic.data(), topic.size(), err.out());
        if (st == QL_E_GONE) return false;
        detail::check(st, err, on ? "ql_ws_subscribe" : "ql_ws_unsubscribe");
        return true;
    }

    ql_server* server_ = nullptr;
    ql_ws_id id_ = 0;
    ql_websocket* live_ = nullptr;
};

// What an upgrade handler decides: accept (with a subprotocol and extra
// headers) or refuse with any HTTP answer.
struct UpgradeAnswer {
    std::optional<Response> refuse{};
    std::string subprotocol{};
    std::vector<std::pair<std::string, std::string>> headers{};
};

// A WebSocket route's callbacks and limits (see ql_ws_behavior). Every
// callback is optional; without `upgrade` every well-formed upgrade is
// accepted.
struct WebSocketBehavior {
    std::function<UpgradeAnswer(const Request&)> upgrade{};
    std::function<void(WebSocket&, const Request&)> open{};
    std::function<void(WebSocket&, std::string_view, bool binary)> message{};
    std::function<void(WebSocket&)> drain{};
    std::function<void(WebSocket&, std::uint16_t code, std::string_view reason)> close{};
    std::uint64_t max_message_bytes = 0;   // 0: 16 MiB
    std::uint64_t max_backpressure = 0;    // 0: 1 MiB
    std::uint32_t idle_timeout_ms = 0;     // 0: 120 s
    std::uint32_t ping_interval_ms = 0;    // 0: none
    bool close_on_backpressure = false;
    Compression compression = Compression::None;
    std::uint32_t compression_window_bits = 0;  // Dedicated: 9..15 (0: 15)
};

namespace detail {

struct WsRoute {
    std::string pattern;
    WebSocketBehavior b;

    template <class Fn>
    void guard(const char* what, Fn&& fn) noexcept {
        try {
            fn();
        } catch (const std::exception& e) {
            log_error(what, "WS", pattern, e.what());
        } catch (...) {
            log_error(what, "WS", pattern, "unknown exception");
        }
    }

    static void on_upgrade(void* user_data, ql_request* req) noexcept {
        auto* self = static_cast<WsRoute*>(user_data);
        ql_server* server = ql_request_server(req);
        ql_req_id id = ql_request_id(req);
        bool done = false;
        self->guard("exception in upgrade handler of", [&] {
            Request request(req);
            UpgradeAnswer a = self->b.upgrade(request);
            ErrorSlot err;
            Status st;
            if (a.refuse) {
                st = with_c_response(*a.refuse, [&](const ql_response* res) {
                    return ql_respond(server, id, res, err.out());
                });
            } else {
                std::vector<ql_header> hs;
                for (const auto& [n, v] : a.headers) hs.push_back(ql_header{n.data(), n.size(), v.data(), v.size()});
                ql_ws_accept_options o = QL_WS_ACCEPT_OPTIONS_INIT;
                o.subprotocol = a.subprotocol.data();
                o.subprotocol_len = a.subprotocol.size();
                o.headers = hs.empty() ? nullptr : hs.data();
                o.header_count = hs.size();
                st = ql_ws_accept(server, id, &o, err.out());
            }
            if (st != QL_OK && st != QL_E_GONE) {
                std::string msg = err.message();
                log_error("invalid upgrade answer from", "WS", self->pattern, msg.c_str());
                return;
            }
            done = true;
        });
        if (!done) respond_internal_error(server, id);
    }
    static void on_open(void* user_data, ql_websocket* ws, const ql_request* req) noexcept {
        auto* self = static_cast<WsRoute*>(user_data);
        self->guard("exception in open handler of", [&] {
            WebSocket s(ws);
            Request request(const_cast<ql_request*>(req));
            self->b.open(s, request);
        });
    }
    static void on_message(void* user_data, ql_websocket* ws, const char* data, std::size_t len, int binary) noexcept {
        auto* self = static_cast<WsRoute*>(user_data);
        self->guard("exception in message handler of", [&] {
            WebSocket s(ws);
            self->b.message(s, std::string_view(data, len), binary != 0);
        });
    }
    static void on_drain(void* user_data, ql_websocket* ws) noexcept {
        auto* self = static_cast<WsRoute*>(user_data);
        self->guard("exception in drain handler of", [&] {
            WebSocket s(ws);
            self->b.drain(s);
        });
    }
    static void on_close(void* user_data, ql_websocket* ws, std::uint16_t code, const char* reason,
                         std::size_t len) noexcept {
        auto* self = static_cast<WsRoute*>(user_data);
        self->guard("exception in close handler of", [&] {
            WebSocket s(ws);
            self->b.close(s, code, std::string_view(reason, len));
        });
    }
};

inline void add_ws(ql_app* app, std::string_view pattern, WebSocketBehavior behavior) {
    auto route = std::make_unique<WsRoute>();
    route->pattern.assign(pattern);
    route->b = std::move(behavior);
    ql_ws_behavior b = QL_WS_BEHAVIOR_INIT;
    const WebSocketBehavior& cb = route->b;
    b.on_upgrade = cb.upgrade ? &WsRoute::on_upgrade : nullptr;
    b.on_open = cb.open ? &WsRoute::on_open : nullptr;
    b.on_message = cb.message ? &WsRoute::on_message : nullptr;
    b.on_drain = cb.drain ? &WsRoute::on_drain : nullptr;
    b.on_close = cb.close ? &WsRoute::on_close : nullptr;
    b.user_data = route.get();
    b.destroy = [](void* p) { delete static_cast<WsRoute*>(p); };
    b.max_message_bytes = cb.max_message_bytes;
    b.max_backpressure = cb.max_backpressure;
    b.idle_timeout_ms = cb.idle_timeout_ms;
    b.ping_interval_ms = cb.ping_interval_ms;
    b.close_on_backpressure = cb.close_on_backpressure ? 1 : 0;
    b.compression = static_cast<std::uint32_t>(cb.compression);
    b.compression_window_bits = cb.compression_window_bits;
    ErrorSlot err;
    Status st = ql_app_ws(app, pattern.data(), pattern.size(), &b, err.out());
    // On failure the core never took user_data: it is still ours (and freed here).
    if (st == QL_OK) (void)route.release();
    check(st, err, "ql_app_ws");
}

}  // namespace detail

// From any thread: a message to every subscriber of topic; returns how many.
inline std::size_t publish(ql_server* server, std::string_view topic, std::string_view data, bool binary = false) {
    std::size_t n = 0;
    detail::ErrorSlot err;
    detail::check(ql_server_publish(server, topic.data(), topic.size(), data.data(), data.size(),
                                    binary ? QL_WS_BINARY : QL_WS_TEXT, 0, &n, err.out()),
                  err, "ql_server_publish");
    return n;
}

}  // namespace quicklane

#endif  // QUICKLANE_WS_HPP
