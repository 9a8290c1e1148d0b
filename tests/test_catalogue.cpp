// The strict-HTTP catalogue (tests/catalogue/cases.txt) over raw sockets against an in-process
// server with one worker. Every request that reaches a handler is recorded, so a malformed or
// smuggled request that slips through is seen, not only a wrong status line. Each case runs
// twice: in one write, then one byte per write (framing split across TCP reads).
#include "test_support.hpp"

#include "catalogue/cases.hpp"

#include <mutex>

using namespace qlt;

namespace {

struct Recorder {
    std::mutex mu;
    std::vector<std::string> seen; // "METHOD target"
    size_t count() {
        std::lock_guard<std::mutex> lk(mu);
        return seen.size();
    }
    std::vector<std::string> since(size_t from) {
        std::lock_guard<std::mutex> lk(mu);
        return {seen.begin() + static_cast<long>(std::min(from, seen.size())), seen.end()};
    }
};

const char *const kMethods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"};

ql_server_options catalogue_options() {
    auto o = options(1);
    // Short enough that a case the server wrongly waits on shows up as 408, not as a hang.
    o.header_timeout_ms = 3000;
    o.idle_timeout_ms = 3000;
    return o;
}

const std::string kControl = "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n";

// Sends `raw` whole or one byte per write. Stops at the first failed send: the server may
// close as soon as it has seen enough.
void send_case(Client &cl, const std::string &raw, bool bytewise) {
    if (!bytewise) {
        cl.send(raw);
        return;
    }
    for (char ch : raw)
        if (!cl.send(std::string_view(&ch, 1))) return;
}

void run_case(Server &s, Recorder &rec, const qlcat::Case &tc, bool bytewise) {
    CAPTURE(tc.name);
    CAPTURE(tc.line);
    CAPTURE(bytewise);
    size_t before = rec.count();
    {
        Client cl(s.port);
        REQUIRE(cl.ok());
        send_case(cl, tc.raw, bytewise);
        for (size_t i = 0; i < tc.expect.size(); ++i) {
            CAPTURE(i);
            auto r = cl.read_response(4000);
            CHECK_MESSAGE(r, cl.error);
            if (!r) break;
            INFO("got ", r->status, " ", r->body, "; expected ", tc.expect[i]);
            CHECK(qlcat::status_matches(tc.expect[i], r->status));
            if (r->status >= 400) CHECK(r->body.find("\"detail\"") != std::string::npos);
        }
        if (tc.close) {
            // Closed, and nothing more was answered (a smuggled request gets no response).
            CHECK(cl.wait_closed(3000));
            INFO("unexpected bytes after the expected responses: ", cl.buf.substr(0, 200));
            CHECK(cl.buf.empty());
        } else {
            INFO("unexpected bytes after the expected responses: ", cl.buf.substr(0, 200));
            CHECK(cl.buf.empty());
            REQUIRE(cl.send(kControl));
            auto r = cl.read_response(3000);
            CHECK_MESSAGE(r, cl.error);
            if (r) CHECK(r->status == 200);
        }
    }
    // The handler saw exactly the valid requests (the control request above included).
    int control = tc.close ? 0 : 1;
    CHECK(qlt::wait_until([&] { return rec.count() >= before + static_cast<size_t>(tc.handled + control); }, 1000));
    sleep_ms(2);
    auto seen = rec.since(before);
    std::string all;
    for (auto &x : seen) all += x + "; ";
    INFO("handler saw: ", all);
    CHECK(seen.size() == static_cast<size_t>(tc.handled + control));
    for (auto &x : seen) CHECK(x.find("smuggled") == std::string::npos);

    // The server still serves a fresh connection normally.
    auto r = fetch_raw(s.port, kControl);
    CHECK(r);
    if (r) CHECK(r->status == 200);
    CHECK(qlt::wait_until([&] { return rec.count() == before + seen.size() + 1; }, 1000));
}

} // namespace

TEST_CASE("strict HTTP/1.1 catalogue: malformed and smuggled requests never reach a handler") {
    std::string err;
    auto cases = qlcat::load(QL_CATALOGUE_FILE, err);
    REQUIRE_MESSAGE(!cases.empty(), err);
    CHECK(cases.size() >= 45);

    Recorder rec;
    Server s(
        [&](ql_app *app, Server &) {
            for (const char *m : kMethods) {
                auto fn = [&rec](ql_request *req) {
                    {
                        std::lock_guard<std::mutex> lk(rec.mu);
                        rec.seen.push_back(str(ql_request_method(req)) + " " + str(ql_request_target(req)));
                    }
                    respond(req, 200, "application/json", "{}");
                };
                REQUIRE(add_route(app, m, "/{path...}", fn) == QL_OK);
            }
        },
        catalogue_options());

    SUBCASE("each case in one write") {
        for (auto &tc : cases) run_case(s, rec, tc, false);
    }
    SUBCASE("each case one byte per write") {
        for (auto &tc : cases)
            if (tc.raw.size() <= 4096) run_case(s, rec, tc, true);
    }
}

// A line break split across two reads: the second write waits until the server has surely read
// the first, at every split point next to a CR or LF.
TEST_CASE("line breaks split across reads: a bare LF is caught at every split point") {
    Recorder rec;
    Server s(
        [&](ql_app *app, Server &) {
            REQUIRE(add_route(app, "GET", "/{path...}", [&rec](ql_request *req) {
                {
                    std::lock_guard<std::mutex> lk(rec.mu);
                    rec.seen.push_back(str(ql_request_target(req)));
                }
                respond(req, 200, "application/json", "{}");
            }) == QL_OK);
            REQUIRE(add_route(app, "POST", "/{path...}", [&rec](ql_request *req) {
                {
                    std::lock_guard<std::mutex> lk(rec.mu);
                    rec.seen.push_back(str(ql_request_target(req)));
                }
                respond(req, 200, "application/json", "{}");
            }) == QL_OK);
        },
        catalogue_options());

    struct Split {
        const char *name;
        std::string raw;
        int status;
    };
    const std::vector<Split> cases = {
        {"bare LF ends the head", "GET /ping HTTP/1.1\r\nHost: x\r\n\n", 400},
        {"bare LF ends the head after an empty value", "GET /ping HTTP/1.1\r\nHost: x\r\nX-E:\r\n\n", 400},
        {"bare LF ends a head without fields", "GET /ping HTTP/1.0\r\n\n", 400},
        {"bare LF after the request line", "GET /ping HTTP/1.1\nHost: x\r\n\r\n", 400},
        {"bare LF ends the trailers",
         "POST /e HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: y\r\n\n", 400},
        {"valid head", "GET /ping HTTP/1.1\r\nHost: x\r\nX-E:\r\n\r\n", 200},
        {"valid HTTP/1.0 head without fields", "GET /ping HTTP/1.0\r\n\r\n", 200},
        {"valid trailers", "POST /e HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: y\r\n\r\n", 200},
    };
    for (auto &tc : cases) {
        std::vector<size_t> points;
        for (size_t i = 0; i < tc.raw.size(); ++i)
            if (tc.raw[i] == '\r' || tc.raw[i] == '\n') {
                points.push_back(i);
                points.push_back(i + 1);
            }
        for (size_t at : points) {
            if (at == 0 || at >= tc.raw.size()) continue;
            std::string name = tc.name;
            CAPTURE(name);
            CAPTURE(at);
            size_t before = rec.count();
            Client cl(s.port);
            REQUIRE(cl.ok());
            REQUIRE(cl.send(std::string_view(tc.raw).substr(0, at)));
            sleep_ms(15);
            cl.send(std::string_view(tc.raw).substr(at));
            auto r = cl.read_response(4000);
            REQUIRE_MESSAGE(r, cl.error);
            CHECK(r->status == tc.status);
            if (tc.status != 200) {
                CHECK(cl.wait_closed(3000));
                sleep_ms(5);
                CHECK(rec.count() == before);
            }
        }
    }
}
