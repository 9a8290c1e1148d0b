// Static files and compression, served by the core: content types, ETag /
// Last-Modified / 304, Range / 206 / 416, gzip (precompressed or on the fly),
// and every way out of the folder refused.
#include <doctest.h>
#include <quicklane.hpp>

#include "test_support.hpp"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace ql = quicklane;

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/ql-static-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~TempDir() { std::system(("rm -rf " + path).c_str()); }
    void write(const std::string &rel, const std::string &data) const {
        std::ofstream(path + "/" + rel, std::ios::binary) << data;
    }
};

std::optional<qlt::Response> get(uint16_t port, std::string_view target, std::string_view extra = {},
                                 std::string_view method = "GET") {
    return qlt::fetch(port, method, target, {}, extra);
}

}  // namespace

TEST_CASE("static files: types, validators, ranges, gzip, traversal") {
    TempDir root, outside;
    std::string big;
    for (int i = 0; i < 800; ++i) big += "line " + std::to_string(i) + " of a text file that compresses well\n";
    root.write("big.txt", big);
    root.write("app.js", "console.log('hi');");
    root.write("logo.png", std::string("\x89PNG\r\n\x1a\n", 8) + std::string(3000, 'x'));
    ::mkdir((root.path + "/docs").c_str(), 0755);
    root.write("docs/index.html", "<h1>docs</h1>");
    root.write("style.css", std::string(2000, 'a'));
    root.write("style.css.gz", "precompressed-bytes");  // served as is when fresh
    outside.write("secret.txt", "secret");
    REQUIRE(::symlink((outside.path + "/secret.txt").c_str(), (root.path + "/leak.txt").c_str()) == 0);
    REQUIRE(::symlink((root.path + "/app.js").c_str(), (root.path + "/inside-link.js").c_str()) == 0);

    ql::App app;
    app.static_dir("/static/", root.path, 3600);
    app.get("/dyn", [&](ql::Request &) { return ql::Response::text(big); });
    app.get("/small", [&](ql::Request &) { return ql::Response::text("tiny"); });
    app.compression(true, 1024);
    ql::Server s(app, {.host = "127.0.0.1", .port = 0, .workers = 1});
    s.start();
    uint16_t port = s.port();

    auto r = get(port, "/static/big.txt");
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == big);
    CHECK(r->header("Content-Type") == "text/plain; charset=utf-8");
    CHECK(r->header("Cache-Control") == "public, max-age=3600");
    CHECK(r->header("Accept-Ranges") == "bytes");
    CHECK(r->header("Vary") == "Accept-Encoding");
    std::string etag = r->header("ETag").value_or("");
    std::string lm = r->header("Last-Modified").value_or("");
    CHECK(etag.rfind("\"", 0) == 0);  // strong: ranges may rely on it
    CHECK(!lm.empty());
    CHECK(get(port, "/static/app.js")->header("Content-Type") == "text/javascript; charset=utf-8");
    CHECK(get(port, "/static/logo.png")->header("Content-Type") == "image/png");
    CHECK(get(port, "/static/docs/")->body == "<h1>docs</h1>");
    CHECK(get(port, "/static/docs")->body == "<h1>docs</h1>");
    CHECK(get(port, "/static/inside-link.js")->status == 200);
    auto head = get(port, "/static/big.txt", {}, "HEAD");
    CHECK(head->status == 200);
    CHECK(head->header("Content-Length") == std::to_string(big.size()));

    SUBCASE("conditional requests") {
        auto nm = get(port, "/static/big.txt", "If-None-Match: " + etag + "\r\n");
        CHECK(nm->status == 304);
        CHECK(nm->body.empty());
        CHECK(nm->header("ETag") == etag);
        CHECK(get(port, "/static/big.txt", "If-None-Match: \"other\", " + etag + "\r\n")->status == 304);
        CHECK(get(port, "/static/big.txt", "If-None-Match: *\r\n")->status == 304);
        CHECK(get(port, "/static/big.txt", "If-None-Match: \"other\"\r\n")->status == 200);
        CHECK(get(port, "/static/big.txt", "If-Modified-Since: " + lm + "\r\n")->status == 304);
    }
    SUBCASE("ranges") {
        auto p = get(port, "/static/big.txt", "Range: bytes=0-9\r\n");
        CHECK(p->status == 206);
        CHECK(p->body == big.substr(0, 10));
        CHECK(p->header("Content-Range") == "bytes 0-9/" + std::to_string(big.size()));
        CHECK(get(port, "/static/big.txt", "Range: bytes=-5\r\n")->body == big.substr(big.size() - 5));
        CHECK(get(port, "/static/big.txt", "Range: bytes=10-\r\n")->body == big.substr(10));
        CHECK(get(port, "/static/big.txt", "Range: bytes=5-999999999\r\n")->body == big.substr(5));
        auto bad = get(port, "/static/big.txt", "Range: bytes=999999-\r\n");
        CHECK(bad->status == 416);
        CHECK(bad->header("Content-Range") == "bytes */" + std::to_string(big.size()));
        CHECK(get(port, "/static/big.txt", "Range: bytes=0-1,5-6\r\n")->status == 200);  // several: whole
        CHECK(get(port, "/static/big.txt", "Range: items=0-1\r\n")->status == 200);       // other unit
        CHECK(get(port, "/static/big.txt", "Range: bytes=9-2\r\n")->status == 200);       // invalid: ignored
        // If-Range: the range only while the client's validator is the current one.
        auto ir = get(port, "/static/big.txt", "Range: bytes=0-9\r\nIf-Range: " + etag + "\r\n");
        CHECK(ir->status == 206);
        CHECK(ir->body == big.substr(0, 10));
        CHECK(get(port, "/static/big.txt", "Range: bytes=0-9\r\nIf-Range: " + lm + "\r\n")->status == 206);
        auto stale = get(port, "/static/big.txt", "Range: bytes=0-9\r\nIf-Range: \"0-0\"\r\n");
        CHECK(stale->status == 200);
        CHECK(stale->body == big);
        CHECK(get(port, "/static/big.txt", "Range: bytes=0-9\r\nIf-Range: W/" + etag + "\r\n")->status == 200);
        CHECK(get(port, "/static/big.txt", "Range: bytes=0-9\r\nIf-Range: Thu, 01 Jan 1970 00:00:00 GMT\r\n")->status == 200);
        CHECK(get(port, "/static/big.txt", "If-Range: " + etag + "\r\n")->status == 200);  // no Range: whole
    }
    SUBCASE("gzip: on the fly and precompressed, never for images") {
        auto gz = get(port, "/static/big.txt", "Accept-Encoding: gzip, br\r\n");
        CHECK(gz->status == 200);
        CHECK(gz->header("Content-Encoding") == "gzip");
        CHECK(gz->body.size() < big.size() / 4);
        CHECK(qlt::gunzip(gz->body) == big);
        CHECK(gz->header("ETag") != etag);  // another representation
        CHECK(get(port, "/static/big.txt", "Accept-Encoding: gzip;q=0\r\n")->header("Content-Encoding") == std::nullopt);
        auto pre = get(port, "/static/style.css", "Accept-Encoding: gzip\r\n");
        CHECK(pre->body == "precompressed-bytes");
        CHECK(get(port, "/static/logo.png", "Accept-Encoding: gzip\r\n")->header("Content-Encoding") == std::nullopt);
    }
    SUBCASE("no way out of the folder") {
        for (const char *t : {"/static/../secret.txt", "/static/%2e%2e/secret.txt", "/static/docs/..%2f..%2fsecret.txt",
                              "/static/docs%2findex.html", "/static//big.txt", "/static/docs/../big.txt",
                              "/static/leak.txt", "/static/%5c..%5csecret.txt", "/static/./big.txt",
                              "/static/big.txt%00.png", "/static/missing.txt"}) {
            CAPTURE(t);
            auto x = get(port, t);
            REQUIRE(x);
            CHECK(x->status >= 400);
            CHECK(x->body.find("secret") == std::string::npos);
        }
    }
    SUBCASE("compression of handler answers") {
        auto d = get(port, "/dyn", "Accept-Encoding: gzip\r\n");
        CHECK(d->header("Content-Encoding") == "gzip");
        CHECK(d->header("Vary") == "Accept-Encoding");
        CHECK(qlt::gunzip(d->body) == big);
        CHECK(get(port, "/dyn")->body == big);  // not accepted: identity
        CHECK(get(port, "/small", "Accept-Encoding: gzip\r\n")->header("Content-Encoding") == std::nullopt);
    }
}

TEST_CASE("static files: bad mounts are refused") {
    ql::App app;
    auto refused = [&](auto f, std::string_view needle) {
        try {
            f();
            FAIL("expected quicklane::Error");
        } catch (const ql::Error &e) {
            CHECK(std::string(e.what()).find(needle) != std::string::npos);
        }
    };
    refused([&] { app.static_dir("/static/", "/nonexistent-folder-ql"); }, "is not a folder");
    refused([&] { app.static_dir("static", "/tmp"); }, "must start and end");
    refused([&] { app.static_dir("/s/{x}/", "/tmp"); }, "parameters");
    refused([&] { app.compression(true, 1024, 12); }, "level");
}

namespace {

size_t open_fds() {
    size_t n = 0;
    if (DIR *d = ::opendir("/proc/self/fd")) {
        while (::readdir(d)) ++n;
        ::closedir(d);
    }
    return n;
}

std::string pattern_bytes(size_t n, unsigned seed) {
    std::string s(n, '\0');
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; ++i) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        s[i] = static_cast<char>('a' + x % 26);
    }
    return s;
}

}  // namespace

TEST_CASE("static files: large files are sent from disk (sendfile)") {
    TempDir root;
    const size_t kLarge = 6u << 20;  // above the 4 MiB kept in memory
    std::string large = pattern_bytes(kLarge, 1);
    root.write("large.txt", large);
    std::string large_gz = pattern_bytes(5u << 20, 2);  // served as is: a precompressed sibling
    root.write("large.txt.gz", large_gz);
    root.write("large.bin", large);
    // 100 MiB, sparse but for a marker at the end: files this size used to get 500.
    const uint64_t kHuge = 100ull << 20;
    {
        std::ofstream(root.path + "/huge.bin", std::ios::binary).put('x');
        REQUIRE(::truncate((root.path + "/huge.bin").c_str(), static_cast<off_t>(kHuge - 4)) == 0);
        std::ofstream(root.path + "/huge.bin", std::ios::binary | std::ios::app) << "END!";
    }

    ql::App app;
    app.static_dir("/static/", root.path);
    app.get("/small", [&](ql::Request &) { return ql::Response::text("tiny"); });
    app.get("/sigpipe", [&](ql::Request &) {  // handlers run on the loop thread that writes
        sigset_t now;
        pthread_sigmask(SIG_BLOCK, nullptr, &now);
        return ql::Response::text(sigismember(&now, SIGPIPE) ? "blocked" : "open");
    });
    ql::Server s(app, {.host = "127.0.0.1", .port = 0, .workers = 1, .idle_timeout_ms = 1000});
    s.start();
    uint16_t port = s.port();
    size_t fds_before = open_fds();

    SUBCASE("whole, HEAD, 304, ranges, gzip sibling") {
        auto r = get(port, "/static/large.bin");
        REQUIRE(r);
        CHECK(r->status == 200);
        CHECK(r->header("Content-Length") == std::to_string(kLarge));
        CHECK(r->header("Content-Type") == "application/octet-stream");
        CHECK(r->body.size() == kLarge);
        CHECK(r->body == large);
        std::string etag = r->header("ETag").value_or("");
        CHECK(!etag.empty());

        auto head = get(port, "/static/large.bin", {}, "HEAD");
        REQUIRE(head);
        CHECK(head->status == 200);
        CHECK(head->header("Content-Length") == std::to_string(kLarge));
        CHECK(head->body.empty());

        auto nm = get(port, "/static/large.bin", "If-None-Match: " + etag + "\r\n");
        REQUIRE(nm);
        CHECK(nm->status == 304);
        CHECK(nm->body.empty());

        auto mid = get(port, "/static/large.bin", "Range: bytes=5000000-5000099\r\n");
        REQUIRE(mid);
        CHECK(mid->status == 206);
        CHECK(mid->header("Content-Range") == "bytes 5000000-5000099/" + std::to_string(kLarge));
        CHECK(mid->body == large.substr(5000000, 100));
        auto tail = get(port, "/static/large.bin", "Range: bytes=-70000\r\n");
        REQUIRE(tail);
        CHECK(tail->body == large.substr(kLarge - 70000));
        auto from = get(port, "/static/large.bin", "Range: bytes=1-\r\n");
        REQUIRE(from);
        CHECK(from->body == large.substr(1));
        auto bad = get(port, "/static/large.bin", "Range: bytes=" + std::to_string(kLarge) + "-\r\n");
        REQUIRE(bad);
        CHECK(bad->status == 416);

        auto gz = get(port, "/static/large.txt", "Accept-Encoding: gzip\r\n");
        REQUIRE(gz);
        CHECK(gz->header("Content-Encoding") == "gzip");
        CHECK(gz->header("Vary") == "Accept-Encoding");
        CHECK(gz->body == large_gz);
        auto plain = get(port, "/static/large.txt");
        REQUIRE(plain);
        CHECK(plain->header("Content-Encoding") == std::nullopt);
        CHECK(plain->body == large);
    }
    SUBCASE("a 100 MiB file") {
        auto r = get(port, "/static/huge.bin");
        REQUIRE(r);
        CHECK(r->status == 200);
        CHECK(r->body.size() == kHuge);
        CHECK(r->body.substr(0, 1) == "x");
        CHECK(r->body.substr(kHuge - 4) == "END!");
        CHECK(r->body[kHuge / 2] == '\0');
    }
    SUBCASE("pipelined behind and before other answers, in order") {
        qlt::Client c(port);
        REQUIRE(c.ok());
        REQUIRE(c.send(qlt::request("GET", "/small") + qlt::request("GET", "/static/large.bin") +
                       qlt::request("GET", "/small") +
                       qlt::request("GET", "/static/large.bin", {}, "Range: bytes=10-19\r\n") +
                       qlt::request("HEAD", "/static/large.bin") + qlt::request("GET", "/small")));
        auto a = c.read_final();
        auto b = c.read_final(10000);
        auto d = c.read_final();
        auto e = c.read_final();
        auto f = c.read_final(5000, true);
        auto g = c.read_final();
        REQUIRE((a && b && d && e && f && g));
        CHECK(a->body == "tiny");
        CHECK(b->body == large);
        CHECK(d->body == "tiny");
        CHECK(e->body == large.substr(10, 10));
        CHECK(f->header("Content-Length") == std::to_string(kLarge));
        CHECK(g->body == "tiny");
    }
    SUBCASE("a changed file is sent as it is now; a resume against the old one gets all of it") {
        auto before = get(port, "/static/large.bin", "Range: bytes=0-99\r\n");
        REQUIRE(before);
        std::string old_tag = before->header("ETag").value_or("");
        auto resume = get(port, "/static/large.bin", "Range: bytes=100-199\r\nIf-Range: " + old_tag + "\r\n");
        REQUIRE(resume);
        CHECK(resume->status == 206);
        CHECK(resume->body == large.substr(100, 100));
        std::string other = pattern_bytes(kLarge, 3);
        root.write("large.bin", other);
        auto r = get(port, "/static/large.bin");
        REQUIRE(r);
        CHECK(r->body == other);
        CHECK(r->header("ETag") != old_tag);
        auto restart = get(port, "/static/large.bin", "Range: bytes=100-199\r\nIf-Range: " + old_tag + "\r\n");
        REQUIRE(restart);
        CHECK(restart->status == 200);
        CHECK(restart->body == other);
    }
    SUBCASE("a file that shrinks while it is sent: the connection closes short") {
        root.write("shrink.bin", std::string(64u << 20, 's'));
        qlt::Client c(port);
        REQUIRE(c.ok());
        REQUIRE(c.send(qlt::request("GET", "/static/shrink.bin")));
        auto deadline = qlt::Clock::now() + std::chrono::seconds(5);
        while (c.buf.find("\r\n\r\n") == std::string::npos) REQUIRE(c.fill(deadline) == qlt::Client::kData);
        REQUIRE(::truncate((root.path + "/shrink.bin").c_str(), 1 << 20) == 0);
        CHECK(c.wait_closed(10000));
        CHECK(c.buf.size() < (64u << 20));
    }
    SUBCASE("clients that leave or stop reading release the file") {
        // A write to a client that has gone must fail with EPIPE, not end the process.
        CHECK(get(port, "/sigpipe")->body == "blocked");
        {
            qlt::Client gone(port);
            REQUIRE(gone.ok());
            REQUIRE(gone.send(qlt::request("GET", "/static/huge.bin")));
            auto deadline = qlt::Clock::now() + std::chrono::seconds(5);
            REQUIRE(gone.fill(deadline) == qlt::Client::kData);
            gone.reset();
        }
        // Stops reading: no progress for the idle timeout (1 s) closes it.
        qlt::Client stalled(port);
        REQUIRE(stalled.ok());
        REQUIRE(stalled.send(qlt::request("GET", "/static/huge.bin")));
        qlt::sleep_ms(2500);
        CHECK(get(port, "/small")->body == "tiny");  // the loop serves others meanwhile
        CHECK(stalled.wait_closed(20000));
        CHECK(stalled.buf.size() < kHuge);
        stalled.close();
        CHECK(qlt::wait_until([&] { return open_fds() <= fds_before; }, 5000));
        CHECK(s.stats().connections_open == 0);
    }
    CHECK(qlt::wait_until([&] { return open_fds() <= fds_before; }, 5000));
}
