// Router unit tests: matching, precedence, conflicts, pattern validation.
#include <doctest.h>

#include <string>

#include "request.hpp"
#include "router.hpp"

using namespace ql;

namespace {
std::shared_ptr<HandlerRef> H() { return std::make_shared<HandlerRef>(); }

ql_status add(Router &r, const char *m, const char *p, std::string *err = nullptr) {
    std::string e;
    ql_status s = r.add(m, p, H(), nullptr, err ? err : &e);
    return s;
}

std::string param(const Match &m, const char *name) {
    for (size_t i = 0; i < m.param_count; ++i)
        if (*m.params[i].name == name) return std::string(m.params[i].raw);
    return "<none>";
}
}  // namespace

TEST_CASE("exact, parameter and catch-all routes") {
    Router r;
    REQUIRE(add(r, "GET", "/") == QL_OK);
    REQUIRE(add(r, "GET", "/users/me") == QL_OK);
    REQUIRE(add(r, "GET", "/users/{id}") == QL_OK);
    REQUIRE(add(r, "GET", "/users/:id/posts/:post") == QL_OK);
    REQUIRE(add(r, "GET", "/files/{path...}") == QL_OK);
    REQUIRE(add(r, "GET", "/static/*rest") == QL_OK);
    Match m;
    r.match("GET", "/", m);
    CHECK(m.kind == MatchKind::Found);
    CHECK(m.route->pattern == "/");
    r.match("GET", "/users/me", m);
    REQUIRE(m.kind == MatchKind::Found);
    CHECK(m.route->pattern == "/users/me");  // static beats parameter
    r.match("GET", "/users/42", m);
    REQUIRE(m.kind == MatchKind::Found);
    CHECK(m.route->pattern == "/users/{id}");
    CHECK(param(m, "id") == "42");
    r.match("GET", "/users/7/posts/9", m);
    REQUIRE(m.kind == MatchKind::Found);
    CHECK(param(m, "id") == "7");
    CHECK(param(m, "post") == "9");
    r.match("GET", "/files/a/b/c.txt", m);
    REQUIRE(m.kind == MatchKind::Found);
    CHECK(param(m, "path") == "a/b/c.txt");
    r.match("GET", "/static/x", m);
    REQUIRE(m.kind == MatchKind::Found);
    CHECK(param(m, "rest") == "x");
    r.match("GET", "/users/", m);  // empty segment never matches a parameter
    CHECK(m.kind == MatchKind::NotFound);
    r.match("GET", "/users/42/extra", m);
    CHECK(m.kind == MatchKind::NotFound);
    r.match("GET", "/nope", m);
    CHECK(m.kind == MatchKind::NotFound);
}

TEST_CASE("backtracking prefers a route that has the method") {
    Router r;
    REQUIRE(add(r, "GET", "/users/me") == QL_OK);
    REQUIRE(add(r, "POST", "/users/{id}") == QL_OK);
    Match m;
    r.match("POST", "/users/me", m);
    REQUIRE(m.kind == MatchKind::Found);
    CHECK(m.route->pattern == "/users/{id}");
    CHECK(param(m, "id") == "me");
    r.match("DELETE", "/users/me", m);
    REQUIRE(m.kind == MatchKind::MethodNotAllowed);
    CHECK(m.allow == "GET, HEAD");
}

TEST_CASE("405 lists methods; HEAD is served from GET") {
    Router r;
    REQUIRE(add(r, "GET", "/items") == QL_OK);
    REQUIRE(add(r, "POST", "/items") == QL_OK);
    Match m;
    r.match("PUT", "/items", m);
    REQUIRE(m.kind == MatchKind::MethodNotAllowed);
    CHECK(m.allow == "GET, HEAD, POST");
    r.match("HEAD", "/items", m);
    REQUIRE(m.kind == MatchKind::Found);
    CHECK(m.head_from_get);
    CHECK(m.route->method == "GET");
}

TEST_CASE("conflicts and invalid patterns are refused with a message") {
    Router r;
    std::string err;
    REQUIRE(add(r, "GET", "/users/{id}") == QL_OK);
    CHECK(add(r, "GET", "/users/{name}", &err) == QL_E_CONFLICT);
    CHECK(err.find("/users/{id}") != std::string::npos);
    CHECK(add(r, "GET", "/users/:other", &err) == QL_E_CONFLICT);
    CHECK(add(r, "POST", "/users/{name}") == QL_OK);  // another method is fine
    CHECK(add(r, "GET", "users", &err) == QL_E_INVALID);
    CHECK(add(r, "GET", "/a/{x", &err) == QL_E_INVALID);
    CHECK(add(r, "GET", "/a/{1x}", &err) == QL_E_INVALID);
    CHECK(add(r, "GET", "/a/{p...}/b", &err) == QL_E_INVALID);
    CHECK(add(r, "GET", "/a/{x}/{x}", &err) == QL_E_INVALID);
    CHECK(add(r, "GET", "/a b", &err) == QL_E_INVALID);
    CHECK(add(r, "G T", "/ok", &err) == QL_E_INVALID);
    CHECK(add(r, "", "/ok", &err) == QL_E_INVALID);
    CHECK(r.size() == 2);
}

TEST_CASE("a root catch-all also matches /") {
    Router r;
    REQUIRE(add(r, "GET", "/{path...}") == QL_OK);
    Match m;
    r.match("GET", "/", m);
    REQUIRE(m.kind == MatchKind::Found);
    CHECK(param(m, "path") == "");
    r.match("GET", "/a/b", m);
    REQUIRE(m.kind == MatchKind::Found);
    CHECK(param(m, "path") == "a/b");
    REQUIRE(add(r, "GET", "/") == QL_OK);  // an exact root route wins over the catch-all
    r.match("GET", "/", m);
    REQUIRE(m.kind == MatchKind::Found);
    CHECK(m.route->pattern == "/");
}

TEST_CASE("a clone matches like the original") {
    Router r;
    REQUIRE(add(r, "GET", "/a/{x}") == QL_OK);
    auto c = r.clone();
    Match m;
    c->match("GET", "/a/1", m);
    CHECK(m.kind == MatchKind::Found);
    CHECK(c->size() == 1);
}

TEST_CASE("percent-decoding and UTF-8 validation") {
    std::string out;
    CHECK(percent_decode("J%C3%B6rg", false, out));
    CHECK(out == "J\xC3\xB6rg");
    CHECK(percent_decode("a+b%20c", true, out));
    CHECK(out == "a b c");
    CHECK(percent_decode("a+b", false, out));
    CHECK(out == "a+b");
    CHECK_FALSE(percent_decode("%zz", false, out));
    CHECK_FALSE(percent_decode("%4", false, out));
    CHECK_FALSE(percent_decode("%", false, out));
    CHECK_FALSE(percent_decode("%C3", false, out));      // truncated UTF-8
    CHECK_FALSE(percent_decode("%C0%AF", false, out));   // overlong
    CHECK_FALSE(percent_decode("%ED%A0%80", false, out));  // surrogate
    CHECK(percent_decode("%F0%9F%98%80", false, out));
    CHECK(iequals("Content-Type", "content-type"));
    CHECK_FALSE(iequals("Content-Type", "content-typo"));
}
