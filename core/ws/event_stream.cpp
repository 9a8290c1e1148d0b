#include "ws/event_stream.hpp"

#include <cstring>

#include "request.hpp"
#include "router.hpp"
#include "server.hpp"
#include "worker.hpp"
#include "ws/ws_hub.hpp"

namespace ql {

std::string sse_event(std::string_view text) {
    std::string out;
    out.reserve(text.size() + 16);
    size_t i = 0;
    while (true) {
        size_t e = text.find_first_of("\r\n", i);
        out.append("data: ").append(text.substr(i, e == std::string_view::npos ? std::string_view::npos : e - i));
        out.push_back('\n');
        if (e == std::string_view::npos) break;
        i = e + (text[e] == '\r' && e + 1 < text.size() && text[e + 1] == '\n' ? 2 : 1);
        if (i == text.size()) break;
    }
    out.push_back('\n');
    return out;
}

bool SseSub::write(std::string_view bytes, uint64_t now) {
    std::string err;
    ql_status st = server->respond_write(id, bytes.data(), bytes.size(), false, &buffered, &err);
    last_write_ms = now;
    return st == QL_OK;
}

namespace {

struct Holder {
    std::shared_ptr<const EventStreamRoute> route;
};

// The topics of this request: each template with its {name}s filled in.
std::vector<std::string> topics_for(const EventStreamRoute &route, const Request &r) {
    std::vector<std::string> out;
    for (const std::string &t : route.topics) {
        std::string topic;
        size_t i = 0;
        while (i < t.size()) {
            size_t open = t.find('{', i);
            size_t close = open == std::string::npos ? std::string::npos : t.find('}', open);
            if (close == std::string::npos) {
                topic.append(t, i, std::string::npos);
                break;
            }
            topic.append(t, i, open - i);
            std::string_view name(t.data() + open + 1, close - open - 1);
            for (const ParamRef &p : r.params)
                if (*p.name == name) topic.append(r.view(p.value));
            i = close + 1;
        }
        out.push_back(std::move(topic));
    }
    return out;
}

void on_request(void *user_data, ql_request *req) {
    const EventStreamRoute &route = *static_cast<Holder *>(user_data)->route;
    auto *r = reinterpret_cast<Request *>(req);
    Worker &w = *r->worker;
    Server &s = w.server;
    static const ql_header headers[] = {{"Cache-Control", 13, "no-cache", 8}, {"X-Accel-Buffering", 17, "no", 2}};
    ql_response head = QL_RESPONSE_INIT;
    head.content_type = "text/event-stream";
    head.content_type_len = 17;
    head.headers = headers;
    head.header_count = 2;
    // The stream opens with a comment, so the client sees the head at once.
    head.body = ": ok\n\n";
    head.body_len = 6;
    std::string err;
    if (r->head_only) {  // HEAD: the head of the stream, no stream
        s.respond(r->id(), &head, &err);
        return;
    }
    auto sub = std::make_unique<SseSub>();
    sub->server = &s;
    sub->id = r->id();
    sub->topics = topics_for(route, *r);
    sub->max_backpressure = route.max_backpressure;
    sub->keepalive_ms = route.keepalive_ms;
    sub->last_write_ms = w.now_ms();
    r->tag = sub.get();
    if (s.respond_start(sub->id, &head, &err) != QL_OK) return;
    w.ws_hub().add_event_stream(std::move(sub));
}

// The client left: its loop drops it (the tag is the subscriber).
void on_abort(void *, ql_req_id, void *tag) {
    if (auto *sub = static_cast<SseSub *>(tag)) sub->hub->remove_event_stream(sub);
}

}  // namespace

std::shared_ptr<HandlerRef> event_stream_handler(std::shared_ptr<const EventStreamRoute> route) {
    auto ref = std::make_shared<HandlerRef>();
    ref->h.version = QL_HANDLER_VERSION;
    ref->h.on_request = on_request;
    ref->h.on_abort = on_abort;
    ref->h.user_data = new Holder{std::move(route)};
    ref->h.destroy = [](void *p) { delete static_cast<Holder *>(p); };
    return ref;
}

}  // namespace ql
