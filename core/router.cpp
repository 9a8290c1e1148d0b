#include "router.hpp"

#include <llhttp.h>

#include <algorithm>
#include <cctype>

namespace ql {

struct Router::Node {
    std::vector<std::pair<std::string, std::unique_ptr<Node>>> statics;
    std::unique_ptr<Node> param;
    std::unique_ptr<Node> catchall;
    std::vector<const Route *> routes;
    std::string allow;
    bool has_ws = false;  // a WebSocket route (GET) is here, maybe beside a plain GET route

    // A WebSocket upgrade prefers the WebSocket route; any other request the
    // plain route of its method, else the WebSocket route (which answers 426).
    const Route *find(std::string_view method, bool upgrade = false) const {
        if (has_ws) [[unlikely]]
            return find_with_ws(method, upgrade);
        for (const Route *r : routes)
            if (r->method == method) return r;
        return nullptr;
    }
    [[gnu::noinline]] const Route *find_with_ws(std::string_view method, bool upgrade) const {
        const Route *plain = nullptr, *ws = nullptr;
        for (const Route *r : routes)
            if (r->method == method) (r->ws ? ws : plain) = r;
        return upgrade && ws ? ws : plain ? plain : ws;
    }
    // Exactly this method and kind (plain or WebSocket).
    const Route *find_kind(std::string_view method, bool ws) const {
        for (const Route *r : routes)
            if (r->method == method && bool(r->ws) == ws) return r;
        return nullptr;
    }
    void rebuild_allow() {
        allow.clear();
        has_ws = false;
        bool has_head = false;
        for (const Route *r : routes) has_head |= r->method == "HEAD";
        for (const Route *r : routes) {
            has_ws |= bool(r->ws);
            if (r->ws && find_kind("GET", false)) continue;  // GET is listed once
            if (!allow.empty()) allow += ", ";
            allow += r->method;
            if (r->method == "GET" && !has_head) allow += ", HEAD";
        }
    }
};

namespace {

bool is_tchar(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
    case '.': case '^': case '_': case '`': case '|': case '~':
        return true;
    default:
        return false;
    }
}

bool valid_name(std::string_view n) {
    if (n.empty() || n.size() > 64) return false;
    if (!(std::isalpha(static_cast<unsigned char>(n[0])) || n[0] == '_')) return false;
    return std::all_of(n.begin(), n.end(),
                       [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

// Characters allowed in a literal path segment (RFC 3986 pchar, '%' included).
bool valid_literal(std::string_view s) {
    for (unsigned char c : s) {
        if (c <= 0x20 || c >= 0x7f) return false;
        if (c == '?' || c == '#' || c == '{' || c == '}' || c == '"' || c == '<' || c == '>' || c == '\\' ||
            c == '^' || c == '`' || c == '|')
            return false;
    }
    return true;
}

enum class SegKind { Literal, Param, CatchAll };

struct Seg {
    SegKind kind;
    std::string_view text;  // literal text or parameter name
};

// Splits a pattern; returns false with a message on a bad pattern.
bool parse_pattern(std::string_view pattern, std::vector<Seg> &out, std::string *err) {
    if (pattern.empty() || pattern[0] != '/') {
        *err = "route pattern must start with '/': \"" + std::string(pattern) + "\"";
        return false;
    }
    if (pattern.size() > 4096) {
        *err = "route pattern is longer than 4096 bytes";
        return false;
    }
    if (pattern.size() == 1) return true;
    std::string_view rest = pattern.substr(1);
    while (true) {
        size_t slash = rest.find('/');
        std::string_view seg = rest.substr(0, slash);
        Seg s{SegKind::Literal, seg};
        if (!seg.empty() && seg.front() == '{') {
            if (seg.back() != '}') {
                *err = "unclosed '{' in route pattern \"" + std::string(pattern) + "\"";
                return false;
            }
            std::string_view name = seg.substr(1, seg.size() - 2);
            if (name.size() > 3 && name.substr(name.size() - 3) == "...") {
                s = {SegKind::CatchAll, name.substr(0, name.size() - 3)};
            } else {
                s = {SegKind::Param, name};
            }
        } else if (!seg.empty() && seg.front() == ':') {
            s = {SegKind::Param, seg.substr(1)};
        } else if (!seg.empty() && seg.front() == '*') {
            s = {SegKind::CatchAll, seg.substr(1)};
        }
        if (s.kind != SegKind::Literal && !valid_name(s.text)) {
            *err = "invalid parameter name \"" + std::string(s.text) + "\" in route pattern \"" +
                   std::string(pattern) + "\" (use letters, digits and '_')";
            return false;
        }
        if (s.kind == SegKind::Literal && !valid_literal(seg)) {
            *err = "invalid character in route pattern \"" + std::string(pattern) + "\"";
            return false;
        }
        if (s.kind == SegKind::CatchAll && slash != std::string_view::npos) {
            *err = "catch-all parameter must be the last segment of \"" + std::string(pattern) + "\"";
            return false;
        }
        out.push_back(s);
        if (slash == std::string_view::npos) break;
        rest = rest.substr(slash + 1);
    }
    if (out.size() > 64) {
        *err = "route pattern has more than 64 segments";
        return false;
    }
    size_t params = std::count_if(out.begin(), out.end(), [](const Seg &s) { return s.kind != SegKind::Literal; });
    if (params > 16) {
        *err = "route pattern has more than 16 parameters";
        return false;
    }
    for (size_t i = 0; i < out.size(); ++i)
        for (size_t j = i + 1; j < out.size(); ++j)
            if (out[i].kind != SegKind::Literal && out[j].kind != SegKind::Literal && out[i].text == out[j].text) {
                *err = "duplicate parameter name \"" + std::string(out[i].text) + "\" in \"" + std::string(pattern) +
                       "\"";
                return false;
            }
    return true;
}

}  // namespace

bool valid_token(std::string_view m) {
    if (m.empty()) return false;
    return std::all_of(m.begin(), m.end(), [](char c) { return is_tchar(static_cast<unsigned char>(c)); });
}

bool valid_method_token(std::string_view m) { return m.size() <= 32 && valid_token(m); }

bool parsable_method(std::string_view m) {
#define QL_METHOD_NAME(num, name, string) #string,
    static const char *const names[] = {HTTP_METHOD_MAP(QL_METHOD_NAME)};
#undef QL_METHOD_NAME
    for (const char *n : names)
        if (m == n) return true;
    return false;
}

Router::Router() : root_(std::make_unique<Node>()) {}
Router::~Router() = default;

ql_status Router::add(std::string_view method, std::string_view pattern, std::shared_ptr<HandlerRef> handler,
                      std::shared_ptr<StaticAnswer> answer, std::string *err, std::shared_ptr<const WsRoute> ws) {
    if (!valid_method_token(method)) {
        *err = "invalid HTTP method \"" + std::string(method) + "\" (expected a token such as GET or POST)";
        return QL_E_INVALID;
    }
    if (!parsable_method(method)) {
        *err = "unsupported HTTP method \"" + std::string(method) +
               "\" (methods are upper-case and known to HTTP/1.1, e.g. GET, POST, PUT, PATCH, DELETE)";
        return QL_E_INVALID;
    }
    std::vector<Seg> segs;
    if (!parse_pattern(pattern, segs, err)) return QL_E_INVALID;

    // Walk without creating nodes first, so a conflict leaves the trie unchanged.
    Node *n = root_.get();
    bool exists = true;
    for (const Seg &s : segs) {
        Node *next = nullptr;
        if (s.kind == SegKind::Literal) {
            for (auto &[k, child] : n->statics)
                if (k == s.text) next = child.get();
        } else if (s.kind == SegKind::Param) {
            next = n->param.get();
        } else {
            next = n->catchall.get();
        }
        if (!next) {
            exists = false;
            break;
        }
        n = next;
    }
    if (exists) {
        if (const Route *other = n->find_kind(method, bool(ws))) {
            *err = "route " + std::string(method) + " " + std::string(pattern) + " conflicts with " + other->method +
                   " " + other->pattern;
            return QL_E_CONFLICT;
        }
    }
    n = root_.get();
    auto route = std::make_unique<Route>();
    route->method = std::string(method);
    route->pattern = std::string(pattern);
    route->handler = std::move(handler);
    route->answer = std::move(answer);
    route->ws = std::move(ws);
    route->index = static_cast<uint32_t>(routes_.size());
    for (const Seg &s : segs) {
        if (s.kind == SegKind::Literal) {
            Node *next = nullptr;
            for (auto &[k, child] : n->statics)
                if (k == s.text) next = child.get();
            if (!next) {
                n->statics.emplace_back(std::string(s.text), std::make_unique<Node>());
                next = n->statics.back().second.get();
            }
            n = next;
        } else {
            auto &slot = s.kind == SegKind::Param ? n->param : n->catchall;
            if (!slot) slot = std::make_unique<Node>();
            n = slot.get();
            route->param_names.emplace_back(s.text);
        }
    }
    n->routes.push_back(route.get());
    n->rebuild_allow();
    routes_.push_back(std::move(route));
    return QL_OK;
}

std::unique_ptr<Router> Router::clone() const {
    auto copy = std::make_unique<Router>();
    std::string err;
    for (const auto &r : routes_) {
        copy->add(r->method, r->pattern, r->handler, r->answer, &err, r->ws);
        Route *c = copy->routes_.back().get();
        c->rules = r->rules;
        c->metrics = r->metrics;
        c->dir = r->dir;
    }
    copy->app_rules = app_rules;
    return copy;
}

Route *Router::find_route(std::string_view method, std::string_view pattern, bool ws) {
    for (auto &r : routes_)
        if (r->method == method && r->pattern == pattern && bool(r->ws) == ws) return r.get();
    return nullptr;
}

void Router::match(std::string_view method, std::string_view path, Match &out, bool upgrade) const {
    out.kind = MatchKind::NotFound;
    out.route = nullptr;
    out.param_count = 0;
    out.head_from_get = false;
    std::string_view vals[17];
    const Node *first_path = nullptr;
    bool is_head = method == "HEAD";

    // Iterative depth-first search with an explicit stack: static > param > catch-all.
    struct Frame {
        const Node *n;
        size_t pos;      // start of the segment to match; path.size()+1 = all consumed
        uint8_t stage;   // 0 static, 1 param, 2 catch-all, 3 done
        uint8_t nvals;
    };
    Frame stack[80];
    size_t sp = 0;
    size_t start = path.size() <= 1 ? path.size() + 1 : 1;
    stack[sp++] = {root_.get(), start, 0, 0};

    auto take = [&](const Node *n, uint8_t nvals) -> bool {
        if (n->routes.empty()) return false;
        const Route *r = n->find(method, upgrade);
        bool from_get = false;
        if (!r && is_head) {
            r = n->find("GET");
            from_get = r != nullptr;
        }
        if (!r) {
            if (!first_path) first_path = n;
            return false;
        }
        out.kind = MatchKind::Found;
        out.route = r;
        out.head_from_get = from_get;
        out.param_count = nvals;
        for (size_t i = 0; i < nvals && i < r->param_names.size(); ++i) out.params[i] = {&r->param_names[i], vals[i]};
        return true;
    };

    while (sp > 0) {
        Frame &f = stack[sp - 1];
        if (f.pos > path.size()) {  // all segments consumed
            --sp;
            if (take(f.n, f.nvals)) return;
            // "/" is the root's one empty segment for a catch-all: "/{path...}" matches it.
            if (f.n == root_.get() && f.n->catchall && f.nvals < 16) {
                vals[f.nvals] = path.substr(path.size());
                if (take(f.n->catchall.get(), static_cast<uint8_t>(f.nvals + 1))) return;
            }
            continue;
        }
        size_t slash = path.find('/', f.pos);
        size_t seg_end = slash == std::string_view::npos ? path.size() : slash;
        size_t next = slash == std::string_view::npos ? path.size() + 1 : slash + 1;
        std::string_view seg = path.substr(f.pos, seg_end - f.pos);
        uint8_t stage = f.stage++;
        if (stage == 0) {
            for (const auto &[k, child] : f.n->statics) {
                if (k == seg) {
                    if (sp < 80) stack[sp++] = {child.get(), next, 0, f.nvals};
                    break;
                }
            }
        } else if (stage == 1) {
            if (f.n->param && !seg.empty() && f.nvals < 16) {
                vals[f.nvals] = seg;
                if (sp < 80) stack[sp++] = {f.n->param.get(), next, 0, static_cast<uint8_t>(f.nvals + 1)};
            }
        } else if (stage == 2) {
            if (f.n->catchall && f.nvals < 16) {
                vals[f.nvals] = path.substr(f.pos);
                const Node *c = f.n->catchall.get();
                uint8_t nv = static_cast<uint8_t>(f.nvals + 1);
                --sp;
                if (take(c, nv)) return;
                continue;
            }
        } else {
            --sp;
        }
    }
    if (first_path) {
        out.kind = MatchKind::MethodNotAllowed;
        out.allow = first_path->allow;
    }
}

}  // namespace ql
