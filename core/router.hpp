// Router: a segment trie per app, frozen (shared, immutable) once a server
// snapshots it. Matching never allocates: parameter values come back as raw
// views into the request path; decoding happens in the request's arena.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "quicklane.h"
#include "rules.hpp"
#include "static_files.hpp"

namespace ql {

// Keeps a host handler's user_data alive while any router snapshot uses it.
struct HandlerRef {
    ql_handler h{};
    ~HandlerRef() {
        if (h.destroy) h.destroy(h.user_data);
    }
};

struct StaticAnswer {
    int status = 200;
    std::string content_type;
    std::string extra_headers;  // preformatted "Name: value\r\n" lines
    std::string body;
};

struct WsRoute;  // ws/ws_conn.hpp

struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> param_names;  // positional; the last may be a catch-all
    std::shared_ptr<HandlerRef> handler;   // null for static routes
    std::shared_ptr<StaticAnswer> answer;  // null for handler routes
    std::shared_ptr<const RouteRules> rules;  // native rules (null: none of its own)
    bool metrics = false;                  // answered with the server's /metrics text
    std::shared_ptr<const StaticDir> dir;  // a mounted folder (the catch-all is the file path)
    std::shared_ptr<const WsRoute> ws;  // a WebSocket route (its handler checks the upgrade)
    uint32_t index = 0;                    // position in the app, for per-route state
};

enum class MatchKind { Found, NotFound, MethodNotAllowed };

struct RawParam {
    const std::string *name;
    std::string_view raw;  // not yet percent-decoded
};

struct Match {
    MatchKind kind = MatchKind::NotFound;
    const Route *route = nullptr;
    bool head_from_get = false;
    std::string_view allow;  // for 405: "GET, HEAD, POST"
    RawParam params[16];
    size_t param_count = 0;
};

class Router {
public:
    Router();
    ~Router();
    Router(const Router &) = delete;
    Router &operator=(const Router &) = delete;

    // Returns QL_OK or an error status with a message in *err.
    // A WebSocket route (`ws`, method GET) may share its pattern with a plain
    // GET route: upgrades go to the first, other requests to the second.
    ql_status add(std::string_view method, std::string_view pattern, std::shared_ptr<HandlerRef> handler,
                  std::shared_ptr<StaticAnswer> answer, std::string *err, std::shared_ptr<const WsRoute> ws = nullptr);

    // Deep copy (routes share handler/answer objects).
    std::unique_ptr<Router> clone() const;

    // path: decoded-free path starting with '/'. upgrade: a WebSocket upgrade
    // request (it prefers the WebSocket route of its path).
    void match(std::string_view method, std::string_view path, Match &out, bool upgrade = false) const;

    size_t size() const { return routes_.size(); }
    const std::vector<std::unique_ptr<Route>> &routes() const { return routes_; }
    // The route registered with exactly this method and pattern (the plain
    // one, or the WebSocket one), or null.
    Route *find_route(std::string_view method, std::string_view pattern, bool ws = false);

    // App-wide rules; replaced whole (copy on write) so snapshots never change.
    std::shared_ptr<const AppRules> app_rules = std::make_shared<AppRules>();

private:
    struct Node;
    std::unique_ptr<Node> root_;
    std::vector<std::unique_ptr<Route>> routes_;
};

// RFC 9110 tokens: methods (at most 32 bytes) and header names.
bool valid_method_token(std::string_view m);
bool valid_token(std::string_view m);
// Methods the HTTP/1.1 parser accepts (upper-case: GET, POST, PURGE, ...).
bool parsable_method(std::string_view m);

}  // namespace ql
