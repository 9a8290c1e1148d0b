// An independent UTF-8 check for the fuzz targets' invariants (Unicode 15,
// table 3-7: well-formed byte sequences), written apart from the core's.
#pragma once

#include <cstddef>
#include <string_view>

inline bool model_utf8(std::string_view s) {
    const auto *p = reinterpret_cast<const unsigned char *>(s.data());
    size_t i = 0, n = s.size();
    auto in = [](unsigned char c, unsigned lo, unsigned hi) { return c >= lo && c <= hi; };
    while (i < n) {
        unsigned char c = p[i];
        if (c <= 0x7f) {
            ++i;
        } else if (in(c, 0xc2, 0xdf)) {
            if (i + 1 >= n || !in(p[i + 1], 0x80, 0xbf)) return false;
            i += 2;
        } else if (in(c, 0xe0, 0xef)) {
            if (i + 2 >= n) return false;
            unsigned lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
            if (!in(p[i + 1], lo, hi) || !in(p[i + 2], 0x80, 0xbf)) return false;
            i += 3;
        } else if (in(c, 0xf0, 0xf4)) {
            if (i + 3 >= n) return false;
            unsigned lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
            if (!in(p[i + 1], lo, hi) || !in(p[i + 2], 0x80, 0xbf) || !in(p[i + 3], 0x80, 0xbf)) return false;
            i += 4;
        } else {
            return false;
        }
    }
    return true;
}
