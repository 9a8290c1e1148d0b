// fuzz_ws_deflate: permessage-deflate (core/ws/ws_deflate) — the offer
// parser, the decompressor over hostile input, and compress/inflate round
// trips.
//
// Input layout: byte 0 picks the mode (value % 3) and byte 1 a parameter;
// the rest is the data.
//  0: the data is a compressed message from a client. Byte 1: the inflate
//     limit (2^(value % 21) bytes) and window bits (9 + value / 21 % 7).
//     Checked: a result of Ok never passes the limit (a bomb stops there),
//     and a second Inflater gives the same result and bytes (no state
//     leaks between messages without context takeover).
//  1: the data is a message: compressed at window bits 9 + (byte 1 % 7) and
//     inflated back, it is the same bytes, whether the compressor keeps its
//     context or not (two messages in a row).
//  2: the data is a Sec-WebSocket-Extensions value: when an offer is taken,
//     the answer names permessage-deflate and window bits in 9..15.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "quicklane.h"
#include "ws/ws_deflate.hpp"

namespace {
[[noreturn]] void fail(const char *what) {
    std::fprintf(stderr, "fuzz_ws_deflate: %s\n", what);
    std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    const uint8_t mode = data[0] % 3, param = data[1];
    std::string_view in(reinterpret_cast<const char *>(data + 2), size - 2);
    if (mode == 0) {
        uint64_t max = uint64_t(1) << (param % 21);
        uint8_t bits = static_cast<uint8_t>(9 + param / 21 % 7);
        ql::Inflater a, b;
        std::string out1, out2;
        auto r1 = a.inflate(in, out1, max, bits, false);
        auto r2 = b.inflate(in, out2, max, bits, false);
        if (r1 != r2) fail("two inflaters disagree");
        if (r1 == ql::Inflater::Result::Ok && out1 != out2) fail("two inflaters gave different bytes");
        if (r1 == ql::Inflater::Result::Ok && out1.size() > max) fail("inflated past the limit");
        // The same stream again after a message: reset, same answer.
        std::string out3;
        if (a.inflate(in, out3, max, bits, false) != r1 || (r1 == ql::Inflater::Result::Ok && out3 != out1))
            fail("an inflater kept state between messages");
    } else if (mode == 1) {
        uint8_t bits = static_cast<uint8_t>(9 + param % 7);
        for (bool takeover : {false, true}) {
            ql::Deflater d;
            ql::Inflater i;
            for (int round = 0; round < 2; ++round) {
                std::string z, back;
                if (!d.compress(in, z, bits, takeover)) fail("compress failed");
                if (i.inflate(z, back, in.size() + 1, bits, takeover) != ql::Inflater::Result::Ok)
                    fail("our own output does not inflate");
                if (back != in) fail("round trip changed the message");
            }
        }
    } else {
        ql::DeflateParams p;
        std::string resp;
        for (uint32_t m : {uint32_t(QL_WS_COMPRESS_SHARED), uint32_t(QL_WS_COMPRESS_DEDICATED)}) {
            if (!ql::negotiate_deflate(in, m, static_cast<uint8_t>(9 + param % 7), p, resp)) continue;
            if (resp.rfind("permessage-deflate", 0) != 0) fail("answer is not permessage-deflate");
            if (p.server_max_window_bits < 9 || p.server_max_window_bits > 15) fail("server window out of range");
            if (p.client_max_window_bits < 8 || p.client_max_window_bits > 15) fail("client window out of range");
        }
    }
    return 0;
}
