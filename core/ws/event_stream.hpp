// Event streams (ql_app_event_stream): server-sent-event clients subscribed
// to the same topics as WebSockets. The route's handler answers 200
// text/event-stream on the loop and registers the client with the loop's
// WsHub; a publish reaches it framed as EventSource events (once per loop
// and publish), written through the streamed-answer path.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "quicklane.h"

namespace ql {

struct HandlerRef;
class Server;
class WsHub;

struct EventStreamRoute {
    std::vector<std::string> topics;  // templates: {name} is a path parameter
    uint32_t keepalive_ms = 15000;
    uint64_t max_backpressure = 1u << 20;
};

// One client of an event stream (loop thread).
struct SseSub {
    Server *server = nullptr;
    WsHub *hub = nullptr;
    ql_req_id id = 0;
    std::vector<std::string> topics;
    uint64_t max_backpressure = 0;
    uint32_t keepalive_ms = 0;
    uint64_t last_write_ms = 0;
    uint64_t buffered = 0;  // after the last write
    // Writes bytes of the stream; false once the client is gone.
    bool write(std::string_view bytes, uint64_t now);
};

// "data: <line>\n" for each line of text (CR, LF or CRLF end a line), then "\n".
std::string sse_event(std::string_view text);

std::shared_ptr<HandlerRef> event_stream_handler(std::shared_ptr<const EventStreamRoute> route);

}  // namespace ql
