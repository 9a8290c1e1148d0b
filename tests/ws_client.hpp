// A raw WebSocket client for the tests: the handshake over test_support's
// Client, masked client frames (any length, fragments, bad ones on purpose),
// and server frames read back one at a time.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "test_support.hpp"

namespace qlt {

struct WsFrame {
    bool fin = true;
    uint8_t opcode = 0;
    bool rsv1 = false;
    std::string payload;
    uint16_t close_code() const {
        return payload.size() >= 2 ? static_cast<uint16_t>((uint8_t(payload[0]) << 8) | uint8_t(payload[1])) : 1005;
    }
};

inline std::string upgrade_request(std::string_view path, std::string_view extra = {},
                                   std::string_view key = "dGhlIHNhbXBsZSBub25jZQ==") {
    std::string r = "GET " + std::string(path) + " HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";
    r += "Sec-WebSocket-Key: " + std::string(key) + "\r\nSec-WebSocket-Version: 13\r\n";
    r += extra;
    r += "\r\n";
    return r;
}

// One client frame. mask false: an unmasked (invalid) client frame.
inline std::string client_frame(uint8_t opcode, std::string_view payload, bool fin = true, bool mask = true,
                                uint8_t rsv = 0) {
    std::string f;
    f.push_back(static_cast<char>((fin ? 0x80 : 0) | (rsv << 4) | opcode));
    uint8_t m = mask ? 0x80 : 0;
    if (payload.size() < 126) {
        f.push_back(static_cast<char>(m | payload.size()));
    } else if (payload.size() <= 0xFFFF) {
        f.push_back(static_cast<char>(m | 126));
        f.push_back(static_cast<char>(payload.size() >> 8));
        f.push_back(static_cast<char>(payload.size() & 0xFF));
    } else {
        f.push_back(static_cast<char>(m | 127));
        for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>(uint64_t(payload.size()) >> (8 * i)));
    }
    static std::mt19937 rng(7);
    char key[4];
    for (char &k : key) k = static_cast<char>(rng());
    if (mask) f.append(key, 4);
    size_t at = f.size();
    f.append(payload);
    if (mask)
        for (size_t i = 0; i < payload.size(); ++i) f[at + i] = static_cast<char>(f[at + i] ^ key[i % 4]);
    return f;
}

class WsClient {
public:
    explicit WsClient(uint16_t port) : c(port) {}

    // Sends the upgrade; returns the answer (101 when it opened).
    std::optional<Response> open(std::string_view path, std::string_view extra = {}, std::string_view trailing = {}) {
        c.send(upgrade_request(path, extra) + std::string(trailing));
        return c.read_response();
    }
    bool send(uint8_t opcode, std::string_view payload, bool fin = true) {
        return c.send(client_frame(opcode, payload, fin));
    }
    bool text(std::string_view s) { return send(1, s); }
    bool binary(std::string_view s) { return send(2, s); }
    bool close(uint16_t code, std::string_view reason = {}) {
        std::string p;
        p.push_back(static_cast<char>(code >> 8));
        p.push_back(static_cast<char>(code & 0xFF));
        p.append(reason);
        return send(8, p);
    }

    // The next server frame (server frames are never masked).
    std::optional<WsFrame> read(int timeout_ms = 3000) {
        auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
        while (true) {
            if (auto f = parse()) return f;
            if (c.fill(deadline) != Client::kData) return std::nullopt;
        }
    }

    Client c;

private:
    std::optional<WsFrame> parse() {
        std::string &b = c.buf;
        if (b.size() < 2) return std::nullopt;
        uint8_t b0 = uint8_t(b[0]), b1 = uint8_t(b[1]);
        if (b1 & 0x80) {
            FAIL_CHECK("server frame is masked");
        }
        uint64_t len = b1 & 0x7F;
        size_t at = 2;
        if (len == 126) {
            if (b.size() < 4) return std::nullopt;
            len = (uint64_t(uint8_t(b[2])) << 8) | uint8_t(b[3]);
            at = 4;
        } else if (len == 127) {
            if (b.size() < 10) return std::nullopt;
            len = 0;
            for (int i = 0; i < 8; ++i) len = (len << 8) | uint8_t(b[2 + i]);
            at = 10;
        }
        if (b.size() < at + len) return std::nullopt;
        WsFrame f;
        f.fin = b0 & 0x80;
        f.rsv1 = b0 & 0x40;
        f.opcode = b0 & 0x0F;
        f.payload = b.substr(at, len);
        b.erase(0, at + len);
        return f;
    }
};

}  // namespace qlt
