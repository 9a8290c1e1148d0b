// quicklane from C++: the fastpath contract. Validation, the response cache, CORS, the rate limit,
// API keys, static files, metrics and /healthz are native rules (quicklane::RouteRules, App::cors,
// ...): a request they answer never reaches C++. Run it from examples/ (it serves ./static).
#include <atomic>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <quicklane.hpp>

using json = nlohmann::ordered_json;
using quicklane::Request;
using quicklane::Response;

// POST /items's body, as JSON Schema: pydantic's Item(name: str = Field(min_length=1),
// price: float = Field(ge=0), tags: list[str] | None = None), extra="forbid".
static const char* const item_schema = R"({"type":"object","properties":{
  "name":{"type":"string","minLength":1},
  "price":{"type":"number","minimum":0},
  "tags":{"type":"array","items":{"type":"string"}}},
  "required":["name","price"],"additionalProperties":false})";

static std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

static unsigned env_or(const char* name, unsigned fallback) {
    const char* v = std::getenv(name);
    return v && *v ? static_cast<unsigned>(std::strtoul(v, nullptr, 10)) : fallback;
}

int main() try {
    quicklane::block_signals();  // before any thread starts: the loops inherit the mask
    static std::atomic<long> next_id{1}, cached_calls{0};  // shared by every worker loop

    quicklane::App app;
    app.static_route("GET", "/ping", Response::json(R"({"message":"pong"})"));
    app.static_route("GET", "/healthz", Response::json(R"({"status":"ok"})"));
    app.post("/items", [](Request& req) {  // the body is valid here
        json item = json::parse(req.body());
        if (!item.contains("tags")) item["tags"] = json::array();
        item["id"] = next_id++;
        return Response::json(dump(item), 201);
    });
    app.route_rules("POST", "/items", {.body_schema = item_schema});
    app.get("/items/{id}", [](Request& req) {  // id is an integer >= 1 here
        std::string id(req.param("id").value_or("0"));
        return Response::json(dump({{"id", std::stoll(id)}, {"name", "item " + id}, {"price", 9.5},
                                    {"tags", json::array()}}));
    });
    app.route_rules("GET", "/items/{id}", {.params_schema = R"({"id":{"in":"path","type":"integer","minimum":1}})"});
    app.get("/cached/{key}", [](Request& req) {  // runs once per path per 2 s
        return Response::json(dump({{"key", req.param("key").value_or("")}, {"calls", ++cached_calls}}));
    });
    app.route_rules("GET", "/cached/{key}", {.cache_ttl_ms = 2000});
    app.get("/limited", [](Request&) { return Response::json(R"({"limited":true})"); });
    app.route_rules("GET", "/limited", {.rate_limit = 5, .rate_window_ms = 60000});
    app.get("/private", [](Request&) { return Response::json(R"({"private":true})"); });
    app.route_rules("GET", "/private", {.require_api_key = true});
    app.api_keys({"secret-key"});
    app.cors({.origins = "https://app.example", .methods = "GET, POST"});
    app.static_dir("/static/", "static");
    app.metrics("/metrics");

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
