// permessage-deflate (RFC 7692) with zlib: the offer a server accepts, and
// the compressor and decompressor of messages.
//
// Two ways to run it (ql_ws_behavior.compression):
//  - shared: no context takeover either way, so a message is compressed and
//    inflated on its own, by one pair of zlib streams per loop: a socket
//    holds no zlib memory at all, and a published message is compressed
//    once for all its subscribers;
//  - dedicated: each socket keeps its contexts (better ratios on chatty
//    streams of similar messages), at the memory of two zlib streams sized
//    by the negotiated window bits.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace ql {

struct DeflateParams {
    bool server_no_context_takeover = true;
    bool client_no_context_takeover = true;
    uint8_t server_max_window_bits = 15;  // our compressor's window
    uint8_t client_max_window_bits = 15;  // the client's (our decompressor's)
};

// The client's Sec-WebSocket-Extensions offers, in its order: the first
// permessage-deflate offer this server can honour fills `out` and the
// response header value; false when none can (or none was made).
// mode: QL_WS_COMPRESS_SHARED or _DEDICATED; max_bits: the most window bits
// the server allows itself and the client (dedicated).
bool negotiate_deflate(std::string_view offers, uint32_t mode, uint8_t max_bits, DeflateParams &out,
                       std::string &response);

class Deflater {
public:
    Deflater() = default;
    ~Deflater();
    Deflater(const Deflater &) = delete;
    Deflater &operator=(const Deflater &) = delete;
    // Appends the compressed form of one message to out (without the final
    // 00 00 FF FF). takeover false: the next message starts afresh.
    bool compress(std::string_view in, std::string &out, uint8_t window_bits, bool takeover);

private:
    z_stream z_{};
    bool ready_ = false;
    uint8_t bits_ = 0;
};

class Inflater {
public:
    Inflater() = default;
    ~Inflater();
    Inflater(const Inflater &) = delete;
    Inflater &operator=(const Inflater &) = delete;
    enum class Result { Ok, TooBig, Corrupt };
    // out = the message inflated from one compressed message; TooBig as soon
    // as it would pass `max` bytes (a bomb stops there).
    Result inflate(std::string_view in, std::string &out, uint64_t max, uint8_t window_bits, bool takeover);

private:
    z_stream z_{};
    bool ready_ = false;
    uint8_t bits_ = 0;
};

}  // namespace ql
