// quicklane from C++: the example contract with the header-only wrapper. JSON without a DOM
// (fast_json.hpp, beside): /echo's body is checked and compacted in one pass, replies are written
// by fast_json::Writer.
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <iostream>
#include <quicklane.hpp>

#include "fast_json.hpp"

using quicklane::Request;
using quicklane::Response;

static Response error(std::string_view detail, int status) {  // {"detail": "..."}
    std::string body;
    fast_json::Writer(body).begin_object().key("detail").value(detail).end_object();
    return Response::json(std::move(body), status);
}

static unsigned env_or(const char* name, unsigned fallback) {
    const char* v = std::getenv(name);
    return v && *v ? static_cast<unsigned>(std::strtoul(v, nullptr, 10)) : fallback;
}

int main() try {
    quicklane::block_signals();  // before any thread starts: the loops inherit the mask

    quicklane::App app;
    app.static_route("GET", "/ping", Response::json(R"({"message":"pong"})"));
    app.get("/hello/{name}", [](Request& req) {  // invalid UTF-8 would be replaced, not thrown
        std::string body;
        fast_json::Writer(body).begin_object().key("hello").value(req.param("name").value_or(""))
            .end_object();
        return Response::json(std::move(body));
    });
    app.post("/echo", [](Request& req) {  // the body as sent, less its whitespace: key order kept
        std::string body;
        if (auto err = fast_json::minify(req.body(), body)) return error(err->message, 400);
        return Response::json(std::move(body));
    });

    // GET /ws/echo: each message back as it came.
    app.ws("/ws/echo", {.message = [](quicklane::WebSocket& ws, std::string_view msg, bool binary) {
                            ws.send(msg, binary);
                        }});
    // GET /ws/chat/{room}: each text message to the whole room, sender included, as
    // {"room": ..., "from": n, "text": ...}; n counts the room's members (rooms span every loop).
    struct Member {
        std::string room;
        unsigned n;
    };
    auto counts = std::make_shared<std::pair<std::mutex, std::map<std::string, unsigned>>>();
    app.ws("/ws/chat/{room}",
           {.open = [counts](quicklane::WebSocket& ws, const Request& req) {
                std::string room(req.param("room").value_or(""));
                unsigned n;
                {
                    std::lock_guard lk(counts->first);
                    n = ++counts->second[room];
                }
                ws.set_tag(new Member{room, n});
                ws.subscribe(room);
            },
            .message = [](quicklane::WebSocket& ws, std::string_view text, bool binary) {
                auto* m = static_cast<Member*>(ws.tag());
                if (binary) {  // the room speaks JSON text
                    ws.close(1003, "text messages only");
                    return;
                }
                std::string out;
                fast_json::Writer(out).begin_object().key("room").value(m->room).key("from").value(m->n)
                    .key("text").value(text).end_object();
                quicklane::publish(ws.server(), m->room, out);
            },
            .close = [](quicklane::WebSocket& ws, std::uint16_t, std::string_view) {
                delete static_cast<Member*>(ws.tag());
            }});

    quicklane::Server server(app, {.port = static_cast<std::uint16_t>(env_or("PORT", 8080)),
                                   .workers = env_or("WORKERS", 0)});
    server.start();
    std::cout << "quicklane listening on http://127.0.0.1:" << server.port() << std::endl;
    quicklane::wait_for_signal();
    server.stop(5000);
    return 0;
} catch (const quicklane::Error& e) {
    std::cerr << "quicklane: " << e.what() << " (" << quicklane::status_name(e.code()) << ")\n";
    return 1;
}
