#include "utf8.hpp"

#include <cstring>

namespace ql {

bool Utf8Check::feed(const unsigned char *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (need_ == 0) {
            // ASCII runs: eight bytes at a time while no high bit is set.
            while (i + 8 <= n) {
                uint64_t v;
                std::memcpy(&v, p + i, 8);
                if (v & 0x8080808080808080ull) break;
                i += 8;
            }
            if (i >= n) break;
            unsigned char c = p[i++];
            if (c < 0x80) continue;
            if (c < 0xC2) return false;  // a continuation byte, or an overlong 2-byte lead
            if (c < 0xE0) {
                need_ = 1, lo_ = 0x80, hi_ = 0xBF;
            } else if (c < 0xF0) {
                need_ = 2;
                lo_ = c == 0xE0 ? 0xA0 : 0x80;  // overlong
                hi_ = c == 0xED ? 0x9F : 0xBF;  // surrogates U+D800..DFFF
            } else if (c < 0xF5) {
                need_ = 3;
                lo_ = c == 0xF0 ? 0x90 : 0x80;  // overlong
                hi_ = c == 0xF4 ? 0x8F : 0xBF;  // above U+10FFFF
            } else {
                return false;
            }
            continue;
        }
        unsigned char c = p[i++];
        if (c < lo_ || c > hi_) return false;
        --need_;
        lo_ = 0x80, hi_ = 0xBF;
    }
    return true;
}

bool valid_utf8(std::string_view s) {
    Utf8Check u;
    return u.feed(reinterpret_cast<const unsigned char *>(s.data()), s.size()) && u.complete();
}

}  // namespace ql
