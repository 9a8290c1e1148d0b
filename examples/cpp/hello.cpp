// quicklane from C++: the example contract with the header-only wrapper and nlohmann_json.
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <quicklane.hpp>

using json = nlohmann::ordered_json;  // keeps the key order of the echoed body
using quicklane::Request;
using quicklane::Response;

static std::string dump(const json& j) {  // invalid UTF-8 from a URL is replaced, not thrown
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

static unsigned env_or(const char* name, unsigned fallback) {
    const char* v = std::getenv(name);
    return v && *v ? static_cast<unsigned>(std::strtoul(v, nullptr, 10)) : fallback;
}

int main() try {
    quicklane::block_signals();  // before any thread starts: the loops inherit the mask

    quicklane::App app;
    app.static_route("GET", "/ping", Response::json(R"({"message":"pong"})"));
    app.get("/hello/{name}", [](Request& req) {
        return Response::json(dump({{"hello", req.param("name").value_or("")}}));
    });
    app.post("/echo", [](Request& req) {
        try {
            return Response::json(dump(json::parse(req.body())));
        } catch (const json::parse_error& e) {
            return Response::json(dump({{"detail", std::string("invalid JSON: ") + e.what()}}), 400);
        }
    });

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
