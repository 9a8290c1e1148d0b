// WebSocket framing (RFC 6455): the frame reader over client frames built
// here byte by byte — masking, lengths, fragmentation, control frames, close
// codes, UTF-8 split at every byte — and the server frame writer.
#include <doctest.h>

#include <string>
#include <vector>

#include "ws/ws_codec.hpp"

using namespace ql;
using Ev = FrameReader::Event;

namespace {

// A client frame: masked with a fixed key unless mask is false.
std::string client_frame(uint8_t opcode, std::string_view payload, bool fin = true, bool mask = true,
                         uint8_t rsv = 0) {
    std::string f;
    f.push_back(static_cast<char>((fin ? 0x80 : 0) | rsv | opcode));
    uint8_t m = mask ? 0x80 : 0;
    size_t n = payload.size();
    if (n < 126) {
        f.push_back(static_cast<char>(m | n));
    } else if (n <= 0xFFFF) {
        f.push_back(static_cast<char>(m | 126));
        f.push_back(static_cast<char>(n >> 8));
        f.push_back(static_cast<char>(n));
    } else {
        f.push_back(static_cast<char>(m | 127));
        for (int i = 0; i < 8; ++i) f.push_back(static_cast<char>(uint64_t(n) >> (56 - 8 * i)));
    }
    const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    if (mask) f.append(reinterpret_cast<const char *>(key), 4);
    for (size_t i = 0; i < n; ++i) f.push_back(static_cast<char>(payload[i] ^ (mask ? key[i & 3] : 0)));
    return f;
}

struct Got {
    Ev ev;
    std::string data;  // message, control payload or close reason
    bool binary = false;
    uint16_t code = 0;
};

// Feeds `wire` in pieces of `step` bytes and collects every event.
std::vector<Got> run(const std::string &wire, size_t step = 1 << 20, uint64_t max = 1 << 24) {
    FrameReader fr(max);
    std::vector<Got> out;
    for (size_t at = 0; at < wire.size();) {
        size_t piece = std::min(step, wire.size() - at);
        size_t used = 0;
        while (used < piece) {
            Ev ev;
            size_t n = fr.feed(wire.data() + at + used, piece - used, ev);
            used += n;
            if (ev == Ev::Message) out.push_back({ev, fr.message(), fr.binary(), 0});
            else if (ev == Ev::Ping || ev == Ev::Pong) out.push_back({ev, std::string(fr.control()), false, 0});
            else if (ev == Ev::Close) out.push_back({ev, std::string(fr.close_reason()), false, fr.close_code()});
            else if (ev == Ev::Error) {
                out.push_back({ev, fr.error_reason(), false, fr.error_code()});
                return out;
            }
            if (n == 0 && ev == Ev::None) break;
        }
        at += piece;
    }
    return out;
}

uint16_t error_of(const std::string &wire) {
    auto g = run(wire);
    return !g.empty() && g.back().ev == Ev::Error ? g.back().code : 0;
}

}  // namespace

TEST_CASE("text, binary and empty messages, whole or a byte at a time") {
    std::string big(70000, 'x');  // a 64-bit length
    std::string mid(300, 'y');    // a 16-bit length
    std::string wire = client_frame(kWsText, "hello") + client_frame(kWsBinary, std::string("\0\xff\x01", 3)) +
                       client_frame(kWsText, "") + client_frame(kWsBinary, mid) + client_frame(kWsText, big);
    for (size_t step : {size_t(1), size_t(3), size_t(7), size_t(1) << 20}) {
        auto g = run(wire, step);
        REQUIRE(g.size() == 5);
        CHECK(g[0].data == "hello");
        CHECK(!g[0].binary);
        CHECK(g[1].data == std::string("\0\xff\x01", 3));
        CHECK(g[1].binary);
        CHECK(g[2].data.empty());
        CHECK(g[3].data == mid);
        CHECK(g[4].data == big);
    }
}

TEST_CASE("fragments join, with control frames between them") {
    std::string wire = client_frame(kWsText, "he", false) + client_frame(kWsPing, "p1") +
                       client_frame(kWsCont, "ll", false) + client_frame(kWsCont, "o", true);
    for (size_t step : {size_t(1), size_t(1) << 20}) {
        auto g = run(wire, step);
        REQUIRE(g.size() == 2);
        CHECK(g[0].ev == Ev::Ping);
        CHECK(g[0].data == "p1");
        CHECK(g[1].ev == Ev::Message);
        CHECK(g[1].data == "hello");
    }
}

TEST_CASE("protocol faults are 1002") {
    CHECK(error_of(client_frame(kWsText, "x", true, false)) == 1002);              // not masked
    CHECK(error_of(client_frame(kWsText, "x", true, true, 0x40)) == 1002);         // RSV1, no extension
    CHECK(error_of(client_frame(kWsText, "x", true, true, 0x20)) == 1002);         // RSV2
    CHECK(error_of(client_frame(3, "x")) == 1002);                                 // reserved data opcode
    CHECK(error_of(client_frame(11, "x")) == 1002);                                // reserved control opcode
    CHECK(error_of(client_frame(kWsPing, "x", false)) == 1002);                    // fragmented control
    CHECK(error_of(client_frame(kWsPing, std::string(126, 'a'))) == 1002);         // control > 125
    CHECK(error_of(client_frame(kWsCont, "x")) == 1002);                           // continuation first
    CHECK(error_of(client_frame(kWsText, "a", false) + client_frame(kWsText, "b")) == 1002);  // nested
    CHECK(error_of(client_frame(kWsClose, "x")) == 1002);                          // 1-byte close
    // A 64-bit length with its top bit set.
    std::string f = std::string("\x82\xff\x80\x00\x00\x00\x00\x00\x00\x00", 10) + std::string(4, '\0');
    CHECK(error_of(f) == 1002);
    // Nothing is read after an error.
    FrameReader fr(1 << 20);
    Ev ev;
    std::string bad = client_frame(kWsText, "x", true, false);
    fr.feed(bad.data(), bad.size(), ev);
    CHECK(ev == Ev::Error);
    std::string good = client_frame(kWsText, "y");
    CHECK(fr.feed(good.data(), good.size(), ev) == 0);
    CHECK(ev == Ev::Error);
}

TEST_CASE("close frames: codes and reasons") {
    auto g = run(client_frame(kWsClose, ""));
    REQUIRE(g.size() == 1);
    CHECK(g[0].ev == Ev::Close);
    CHECK(g[0].code == 1005);  // no code given: reported locally only
    g = run(client_frame(kWsClose, ws_close_payload(1000, "bye")));
    REQUIRE(g.size() == 1);
    CHECK(g[0].code == 1000);
    CHECK(g[0].data == "bye");
    for (uint16_t ok : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999}) {
        auto h = run(client_frame(kWsClose, ws_close_payload(ok, "")));
        REQUIRE(h.size() == 1);
        CHECK(h[0].ev == Ev::Close);
        CHECK(h[0].code == ok);
    }
    for (uint16_t bad : {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535})
        CHECK(error_of(client_frame(kWsClose, ws_close_payload(bad, ""))) == 1002);
    CHECK(error_of(client_frame(kWsClose, ws_close_payload(1000, "\xff"))) == 1007);
}

TEST_CASE("UTF-8: valid text passes split at every byte, invalid fails fast") {
    // ASCII, 2-, 3- and 4-byte sequences, the edges of each range.
    std::string text = "a\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"
                       "κόσμε";
    CHECK(valid_utf8(text));
    for (size_t cut = 0; cut <= text.size(); ++cut) {
        std::string wire = client_frame(kWsText, text.substr(0, cut), false) + client_frame(kWsCont, text.substr(cut));
        auto g = run(wire, 1);
        REQUIRE(g.size() == 1);
        CHECK(g[0].ev == Ev::Message);
        CHECK(g[0].data == text);
    }
    for (std::string bad : {std::string("\x80"), std::string("\xc0\xaf"), std::string("\xc1\xbf"),
                            std::string("\xe0\x9f\xbf"), std::string("\xed\xa0\x80"), std::string("\xf0\x8f\xbf\xbf"),
                            std::string("\xf4\x90\x80\x80"), std::string("\xf5\x80\x80\x80"), std::string("\xff")}) {
        CHECK(!valid_utf8(bad));
        CHECK(error_of(client_frame(kWsText, bad)) == 1007);
    }
    // Fails at the bad byte, before the message (or its frame) ends.
    std::string wire = client_frame(kWsText, "ok\xff" + std::string(1000, 'z'), false);
    FrameReader fr(1 << 20);
    Ev ev = Ev::None;
    size_t used = 0;
    while (used < wire.size() && ev != Ev::Error) used += fr.feed(wire.data() + used, 1, ev);
    CHECK(ev == Ev::Error);
    CHECK(fr.error_code() == 1007);
    CHECK(used < 20);
    // A sequence left open at the message's end.
    CHECK(error_of(client_frame(kWsText, "\xe2\x82")) == 1007);
    // Binary is not checked.
    CHECK(run(client_frame(kWsBinary, "\xff"))[0].ev == Ev::Message);
}

TEST_CASE("message size limit: 1009 from the frame head and across fragments") {
    auto g = run(client_frame(kWsBinary, std::string(101, 'a')), 1 << 20, 100);
    REQUIRE(g.size() == 1);
    CHECK(g[0].code == 1009);
    g = run(client_frame(kWsBinary, std::string(60, 'a'), false) + client_frame(kWsCont, std::string(60, 'b')), 1,
            100);
    REQUIRE(g.size() == 1);
    CHECK(g[0].code == 1009);
    g = run(client_frame(kWsBinary, std::string(100, 'a')), 1 << 20, 100);
    REQUIRE(g.size() == 1);
    CHECK(g[0].ev == Ev::Message);
    // A 2 GiB announced frame is refused at its head, before any payload.
    FrameReader fr(16u << 20);
    std::string head = std::string("\x82\xff\x00\x00\x00\x00\x80\x00\x00\x00", 10) + std::string(4, '\1');
    Ev ev;
    fr.feed(head.data(), head.size(), ev);
    CHECK(ev == Ev::Error);
    CHECK(fr.error_code() == 1009);
}

TEST_CASE("server frames: lengths 0, 125, 126, 65535, 65536; close payloads cut on a boundary") {
    for (size_t n : {size_t(0), size_t(125), size_t(126), size_t(65535), size_t(65536)}) {
        std::string f;
        ws_frame(f, kWsBinary, std::string(n, 'q'));
        size_t head = n < 126 ? 2 : n <= 0xFFFF ? 4 : 10;
        REQUIRE(f.size() == head + n);
        CHECK(uint8_t(f[0]) == 0x82);
        CHECK((uint8_t(f[1]) & 0x80) == 0);  // servers never mask
        uint64_t len = uint8_t(f[1]) & 0x7F;
        if (len == 126) len = (uint64_t(uint8_t(f[2])) << 8) | uint8_t(f[3]);
        if (len == 127) {
            len = 0;
            for (int i = 0; i < 8; ++i) len = (len << 8) | uint8_t(f[2 + i]);
        }
        CHECK(len == n);
    }
    std::string reason;
    for (int i = 0; i < 60; ++i) reason += "é";  // 120 bytes
    reason += "€€";                              // 126 bytes: the cut falls inside the second €
    std::string p = ws_close_payload(1001, reason);
    CHECK(p.size() <= 125);
    CHECK(uint8_t(p[0]) == 0x03);
    CHECK(uint8_t(p[1]) == 0xE9);
    CHECK(valid_utf8(p.substr(2)));
    CHECK(p.size() == 2 + 123);  // 120 bytes of é and one whole €
}

TEST_CASE("unmasking: every length and split (the eight-bytes-at-a-time path and its tails at every mask phase)") {
    for (size_t n : {size_t(1), size_t(2), size_t(3), size_t(5), size_t(7), size_t(8), size_t(9), size_t(15),
                     size_t(16), size_t(17), size_t(63), size_t(64), size_t(65), size_t(1000), size_t(70001)}) {
        std::string payload(n, '\0');
        for (size_t i = 0; i < n; ++i) payload[i] = static_cast<char>(i * 7 + 3);
        // Two frames back to back: the second starts at another offset of the read.
        std::string wire = client_frame(kWsBinary, payload) + client_frame(kWsBinary, payload);
        for (size_t step : {size_t(1), size_t(3), size_t(5), size_t(8), size_t(13), size_t(4096), size_t(1) << 20}) {
            auto g = run(wire, step);
            REQUIRE(g.size() == 2);
            CHECK(g[0].data == payload);
            CHECK(g[1].data == payload);
        }
    }
}
