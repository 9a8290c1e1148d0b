// fuzz_router: the router's matching, route registration, percent-decoding and
// UTF-8 validation, each checked against a small independent model.
//
// Byte 0 chooses the mode (the rest is the input):
//   0: match "METHOD path" against a fixed router (static, params, catch-alls);
//   1: percent_decode (byte 1 bit 0: '+' is a space) and valid_utf8;
//   2: register routes, one "METHOD pattern" per line, into a fresh router;
//      every one is accepted or refused with a message, and an accepted one
//      is then reachable.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "model_utf8.hpp"
#include "request.hpp"
#include "router.hpp"

namespace {

[[noreturn]] void check_failed(const char *what, const char *file, int line) {
    std::fprintf(stderr, "fuzz_router: invariant failed at %s:%d: %s\n", file, line, what);
    std::abort();
}
#define FZ_CHECK(c)                                     \
    do {                                                \
        if (!(c)) check_failed(#c, __FILE__, __LINE__); \
    } while (0)

// ---- an independent model of pattern matching ------------------------------

std::vector<std::string_view> split(std::string_view s) {
    std::vector<std::string_view> out;
    if (s.size() <= 1) return out;  // "/" and "" have no segments
    s.remove_prefix(1);
    for (;;) {
        size_t slash = s.find('/');
        out.push_back(s.substr(0, slash));
        if (slash == std::string_view::npos) break;
        s.remove_prefix(slash + 1);
    }
    return out;
}

enum class K { Lit, Param, All };
K kind(std::string_view seg) {
    if (seg.size() >= 2 && seg.front() == '{' && seg.back() == '}')
        return seg.size() > 5 && seg.substr(seg.size() - 4) == "...}" ? K::All : K::Param;
    if (!seg.empty() && seg.front() == ':') return K::Param;
    if (!seg.empty() && seg.front() == '*') return K::All;
    return K::Lit;
}

// Does `pattern` (already accepted by the router) match `path`?
bool model_match(std::string_view pattern, std::string_view path) {
    std::vector<std::string_view> ps = split(pattern), xs = split(path);
    // The root's catch-all takes "/" (or "") as one empty segment.
    if (xs.empty() && ps.size() == 1 && kind(ps[0]) == K::All) return true;
    size_t i = 0;
    for (; i < ps.size(); ++i) {
        K k = kind(ps[i]);
        if (k == K::All) return i < xs.size();
        if (i >= xs.size()) return false;
        if (k == K::Param ? xs[i].empty() : xs[i] != ps[i]) return false;
    }
    return i == xs.size();
}

// Rebuilds the path from the pattern and the parameters the router returned.
std::string rebuild(std::string_view pattern, const ql::Match &m) {
    std::vector<std::string_view> ps = split(pattern);
    std::string out;
    size_t pi = 0;
    for (std::string_view seg : ps) {
        out += '/';
        if (kind(seg) == K::Lit) {
            out += seg;
        } else {
            FZ_CHECK(pi < m.param_count);
            out += m.params[pi++].raw;
        }
    }
    FZ_CHECK(pi == m.param_count);
    return out;
}

struct Pat {
    const char *method, *pattern;
};
const Pat kRoutes[] = {
    {"GET", "/"},
    {"GET", "/ping"},
    {"GET", "/users/me"},
    {"GET", "/users/{id}"},
    {"PUT", "/users/{id}"},
    {"GET", "/users/{id}/posts/{post}"},
    {"DELETE", "/users/:id/posts/:post"},
    {"GET", "/users/{id}/files/{rest...}"},
    {"GET", "/static/*path"},
    {"POST", "/static/upload"},
    {"GET", "/a/b/c"},
    {"GET", "/a/{x}/c"},
    {"GET", "/a/{x}/{y}"},
    {"POST", "/a/b/{z...}"},
    {"HEAD", "/h"},
    {"OPTIONS", "/{all...}"},
    {"GET", "/x//y"},
    {"GET", "/trailing/"},
    {"PATCH", "/%41/{p}"},
};

const ql::Router &fixed_router() {
    static ql::Router *r = [] {
        auto *rt = new ql::Router();
        for (const Pat &p : kRoutes) {
            std::string err;
            if (rt->add(p.method, p.pattern, nullptr, nullptr, &err) != QL_OK) {
                std::fprintf(stderr, "fuzz_router setup: %s\n", err.c_str());
                std::abort();
            }
        }
        return rt;
    }();
    return *r;
}

bool method_fits(std::string_view route_method, std::string_view method) {
    return route_method == method || (method == "HEAD" && route_method == "GET");
}

// Checks one match result against the model over `routes`.
void check_match(const ql::Router &rt, const std::vector<Pat> &routes, std::string_view method,
                 std::string_view path) {
    ql::Match m;
    rt.match(method, path, m);
    bool any = false, fits = false;
    for (const Pat &p : routes) {
        if (!model_match(p.pattern, path)) continue;
        any = true;
        fits |= method_fits(p.method, method);
    }
    if (m.kind == ql::MatchKind::Found) {
        FZ_CHECK(m.route != nullptr);
        FZ_CHECK(method_fits(m.route->method, method));
        FZ_CHECK(model_match(m.route->pattern, path));
        FZ_CHECK(m.param_count == m.route->param_names.size());
        for (size_t i = 0; i < m.param_count; ++i) {
            // Raw values are views into the path.
            std::string_view v = m.params[i].raw;
            FZ_CHECK(v.empty() || (v.data() >= path.data() && v.data() + v.size() <= path.data() + path.size()));
            FZ_CHECK(*m.params[i].name == m.route->param_names[i]);
        }
        std::string back = rebuild(m.route->pattern, m);
        FZ_CHECK(back == path || (path.size() <= 1 && (back.empty() || back == "/")));
    } else if (m.kind == ql::MatchKind::MethodNotAllowed) {
        FZ_CHECK(any && !fits);
        FZ_CHECK(!m.allow.empty());
    } else {
        FZ_CHECK(!any);
    }
    if (fits) FZ_CHECK(m.kind == ql::MatchKind::Found);
}

void mode_match(std::string_view in) {
    size_t sp = in.find(' ');
    std::string_view method = sp == std::string_view::npos ? std::string_view("GET") : in.substr(0, sp);
    std::string path(sp == std::string_view::npos ? in : in.substr(sp + 1));
    if (path.empty() || path[0] != '/') path.insert(path.begin(), '/');  // the connection hands over "/..." only
    static const std::vector<Pat> routes(std::begin(kRoutes), std::end(kRoutes));
    check_match(fixed_router(), routes, method, path);
}

// ---- percent-decoding -----------------------------------------------------------

int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}


void mode_decode(std::string_view in) {
    if (in.empty()) return;
    bool plus = in[0] & 1;
    in.remove_prefix(1);
    // Model: a '%' needs two hex digits; the result must be UTF-8.
    std::string want;
    bool ok = true;
    for (size_t i = 0; i < in.size() && ok; ++i) {
        if (in[i] == '%') {
            if (i + 2 >= in.size()) {
                ok = false;
                break;
            }
            int h = hex(in[i + 1]), l = hex(in[i + 2]);
            if (h < 0 || l < 0) {
                ok = false;
                break;
            }
            want.push_back(static_cast<char>(h * 16 + l));
            i += 2;
        } else {
            want.push_back(plus && in[i] == '+' ? ' ' : in[i]);
        }
    }
    ok = ok && model_utf8(want);
    std::string got = "junk from before";
    bool r = ql::percent_decode(in, plus, got);
    FZ_CHECK(r == ok);
    if (r) {
        FZ_CHECK(got == want);
        FZ_CHECK(got.size() <= in.size());
    }
    FZ_CHECK(ql::valid_utf8(in) == model_utf8(in));
}

// ---- registration ------------------------------------------------------------------

// A path that `pattern` matches: parameters become "v", catch-alls "c/d".
std::string sample_path(std::string_view pattern) {
    std::vector<std::string_view> ps = split(pattern);
    if (ps.empty()) return "/";
    std::string out;
    for (std::string_view seg : ps) {
        out += '/';
        K k = kind(seg);
        out += k == K::Lit ? seg : k == K::Param ? std::string_view("v") : std::string_view("c/d");
    }
    return out;
}

// Two patterns name the same trie node when their shapes agree.
std::string shape(std::string_view pattern) {
    std::string out;
    for (std::string_view seg : split(pattern)) {
        K k = kind(seg);
        out += k == K::Lit ? "/L" + std::string(seg) : k == K::Param ? "/P" : "/A";
    }
    return out;
}

void mode_register(std::string_view in) {
    ql::Router rt;
    std::vector<std::string> keep;  // owns the strings the Pats point at
    keep.reserve(64);
    std::vector<Pat> accepted;
    int lines = 0;
    while (!in.empty() && lines++ < 32) {
        size_t nl = in.find('\n');
        std::string_view line = in.substr(0, nl);
        in = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
        size_t sp = line.find(' ');
        std::string_view method = sp == std::string_view::npos ? std::string_view("GET") : line.substr(0, sp);
        std::string_view pattern = sp == std::string_view::npos ? line : line.substr(sp + 1);
        std::string err;
        ql_status st = rt.add(method, pattern, nullptr, nullptr, &err);
        if (st != QL_OK) {
            FZ_CHECK(st == QL_E_INVALID || st == QL_E_CONFLICT);
            FZ_CHECK(!err.empty());
            if (st == QL_E_CONFLICT) {
                bool dup = false;
                for (const Pat &p : accepted) dup |= p.method == method && shape(p.pattern) == shape(pattern);
                FZ_CHECK(dup);
            }
            continue;
        }
        FZ_CHECK(pattern.size() >= 1 && pattern[0] == '/');
        keep.emplace_back(method);
        const char *m = keep.back().c_str();
        keep.emplace_back(pattern);
        accepted.push_back({m, keep.back().c_str()});
        // The same route again conflicts.
        std::string err2;
        FZ_CHECK(rt.add(method, pattern, nullptr, nullptr, &err2) == QL_E_CONFLICT && !err2.empty());
    }
    FZ_CHECK(rt.size() == accepted.size());
    std::unique_ptr<ql::Router> copy = rt.clone();
    FZ_CHECK(copy->size() == rt.size());
    for (const Pat &p : accepted) {
        std::string path = sample_path(p.pattern);
        check_match(rt, accepted, p.method, path);
        check_match(*copy, accepted, p.method, path);
        ql::Match m;
        rt.match(p.method, path, m);
        FZ_CHECK(m.kind == ql::MatchKind::Found);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    std::string_view in(reinterpret_cast<const char *>(data) + 1, size - 1);
    switch (data[0] % 3) {
    case 0: mode_match(in); break;
    case 1: mode_decode(in); break;
    default: mode_register(in); break;
    }
    return 0;
}
