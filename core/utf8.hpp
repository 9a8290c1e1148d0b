// UTF-8 (RFC 3629) checks: one state machine for whole strings (path and
// query parameters) and for text that arrives in pieces (WebSocket messages).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ql {

// UTF-8 (RFC 3629) checked as bytes arrive, across fragments: a sequence
// may be split anywhere; a byte that can start no valid text fails at once.
class Utf8Check {
public:
    bool feed(const unsigned char *p, size_t n);  // false: invalid so far
    bool complete() const { return need_ == 0; }  // no sequence left open
    void reset() { need_ = 0, lo_ = 0x80, hi_ = 0xBF; }

private:
    uint8_t need_ = 0;   // continuation bytes still due
    uint8_t lo_ = 0x80;  // the next continuation byte's range (overlongs,
    uint8_t hi_ = 0xBF;  // surrogates and > U+10FFFF are narrower)
};

bool valid_utf8(std::string_view s);

}  // namespace ql
