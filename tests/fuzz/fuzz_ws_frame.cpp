// fuzz_ws_frame: bytes in -> the WebSocket frame reader (core/ws/ws_codec).
//
// Input layout: byte 0 picks the message limit (bits 0-3: 2^(bit value + 4)
// bytes, 16 B to 512 KiB) and byte 1 the piece size (1 + value) the stream is
// cut into; the rest is the byte stream a client sent.
//
// Invariants checked (not only crashes):
//  - split-invariance: the events (kind, payload, code) are the same whether
//    the stream comes whole or in pieces;
//  - every text message is valid UTF-8 and every message fits the limit;
//  - control payloads are at most 125 bytes; close codes are 1005 or a code
//    a peer may send, and close reasons are UTF-8;
//  - after an error the reader takes no byte, and the error code is 1002,
//    1007 or 1009;
//  - feed always consumes bytes or reports an event (never stalls).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ws/ws_codec.hpp"

namespace {

using Ev = ql::FrameReader::Event;

struct Event {
    Ev kind;
    std::string data;
    uint32_t code;
    bool binary;
    bool operator==(const Event &o) const {
        return kind == o.kind && data == o.data && code == o.code && binary == o.binary;
    }
};

[[noreturn]] void fail(const char *what) {
    std::fprintf(stderr, "fuzz_ws_frame: %s\n", what);
    std::abort();
}

std::vector<Event> run(const uint8_t *p, size_t n, size_t piece, uint64_t max) {
    ql::FrameReader fr(max);
    std::vector<Event> out;
    size_t at = 0;
    while (at < n) {
        size_t len = std::min(piece, n - at);
        size_t used = 0;
        while (used < len) {
            Ev ev;
            size_t k = fr.feed(reinterpret_cast<const char *>(p + at + used), len - used, ev);
            if (k > len - used) fail("consumed more than it was given");
            used += k;
            switch (ev) {
            case Ev::None:
                if (used != len) fail("stopped early without an event");
                break;
            case Ev::Message: {
                const std::string &m = fr.message();
                if (m.size() > max) fail("message over the limit");
                if (!fr.binary() && !ql::valid_utf8(m)) fail("text message that is not UTF-8");
                out.push_back({ev, m, 0, fr.binary()});
                break;
            }
            case Ev::Ping:
            case Ev::Pong:
                if (fr.control().size() > 125) fail("control payload over 125 bytes");
                out.push_back({ev, std::string(fr.control()), 0, false});
                break;
            case Ev::Close:
                if (fr.close_code() != 1005 && !ql::valid_close_code(fr.close_code())) fail("invalid close code passed");
                if (!ql::valid_utf8(fr.close_reason())) fail("close reason that is not UTF-8");
                out.push_back({ev, std::string(fr.close_reason()), fr.close_code(), false});
                break;
            case Ev::Error: {
                uint16_t c = fr.error_code();
                if (c != 1002 && c != 1007 && c != 1009) fail("unexpected error code");
                Ev again;
                if (fr.feed(reinterpret_cast<const char *>(p), n, again) != 0 || again != Ev::Error)
                    fail("bytes taken after an error");
                out.push_back({ev, {}, c, false});
                return out;
            }
            }
        }
        at += len;
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    uint64_t max = uint64_t(1) << ((data[0] & 0x0F) + 4);
    size_t piece = 1 + data[1];
    const uint8_t *p = data + 2;
    size_t n = size - 2;
    std::vector<Event> whole = run(p, n, n ? n : 1, max);
    std::vector<Event> split = run(p, n, piece, max);
    // An error ends both runs; before it, the same events. (The error may be
    // found at the same byte either way: fail-fast UTF-8 is per byte.)
    if (whole != split) fail("events differ between a whole and a split stream");
    return 0;
}
