// fast_json.hpp — JSON on a handler's hot path without building a DOM (example code: copy it).
//
//   fast_json::minify(text, out)  checks that text is one JSON document and appends it to out less
//                                 the whitespace between tokens: key order, numbers and strings
//                                 byte for byte as sent. It is the one-pass checker of the C
//                                 example (../c/json_helper.c: compile it into the program).
//   fast_json::Writer(out)        appends compact JSON to a std::string: strings escaped as
//                                 nlohmann_json escapes them, ill-formed UTF-8 replaced by U+FFFD.
//
// Why no parser: a body that is echoed or passed on needs no values. On bench/echo-1k.json the
// checker costs ~12k instructions, simdjson's DOM parse plus its minify ~19k, nlohmann's
// ordered_json parse and dump ~275k. To read values, parse (nlohmann_json; simdjson where hot).
#pragma once

#include <charconv>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "../c/json_helper.h"

namespace fast_json {

struct SyntaxError {
    std::size_t offset;   // byte where the text stops being JSON (its length: it ended early)
    std::string message;  // "invalid JSON at byte 5: unexpected end of input; expected a value"
};

// Appends `text`, less its whitespace, to `out`; or says why it is not one JSON document.
inline std::optional<SyntaxError> minify(std::string_view text, std::string& out) {
    std::size_t at = out.size();
    json_error err;
    out.resize(at + text.size());
    std::size_t n = json_minify(text.data(), text.size(), out.data() + at, &err);
    out.resize(n == JSON_INVALID ? at : at + n);
    if (n == JSON_INVALID) return SyntaxError{err.offset, err.message};
    return std::nullopt;
}

namespace detail {

// Length of the UTF-8 sequence at s[0] >= 0x80 when it is well-formed; else minus the length of its
// longest ill-formed start, which becomes one U+FFFD (Unicode's "maximal subpart" practice, which
// nlohmann's error_handler_t::replace follows too).
inline int utf8_sequence(const unsigned char* s, std::size_t n) {
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    int len;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else return -1;
    for (int i = 1; i < len; ++i, lo = 0x80, hi = 0xBF)
        if (static_cast<std::size_t>(i) >= n || s[i] < lo || s[i] > hi) return -i;
    return len;
}

}  // namespace detail

// Writes `s` as a JSON string, quotes included, to `o`, which has room for 6 * s.size() + 2 bytes;
// returns the end. " \ and control characters are escaped (\n, \t, ... or \u00XX), the rest is
// kept as UTF-8, and each ill-formed UTF-8 sequence becomes U+FFFD.
inline char* write_string(char* o, std::string_view s) {
    auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const auto* end = p + s.size();
    *o++ = '"';
    while (p < end) {
        unsigned char c = *p;
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            *o++ = static_cast<char>(c), ++p;
        } else if (c >= 0x80) {
            int len = detail::utf8_sequence(p, static_cast<std::size_t>(end - p));
            if (len > 0) std::memcpy(o, p, static_cast<std::size_t>(len)), o += len, p += len;
            else std::memcpy(o, "\xEF\xBF\xBD", 3), o += 3, p -= len;
        } else {
            static constexpr char hex[] = "0123456789abcdef";
            static constexpr char shorts[] = "btn\0fr";  // 0x08..0x0D; 0x0B has none
            *o++ = '\\', ++p;
            if (c == '"' || c == '\\') *o++ = static_cast<char>(c);
            else if (c >= 0x08 && c <= 0x0D && shorts[c - 0x08]) *o++ = shorts[c - 0x08];
            else *o++ = 'u', *o++ = '0', *o++ = '0', *o++ = hex[c >> 4], *o++ = hex[c & 15];
        }
    }
    *o++ = '"';
    return o;
}

// Appends compact JSON to a string as it goes (no DOM); the commas are placed for you:
//   std::string body;
//   fast_json::Writer(body).begin_object().key("id").value(42).key("tags").begin_array()
//       .value("a").end_array().end_object();   // {"id":42,"tags":["a"]}
class Writer {
public:
    explicit Writer(std::string& out) : out_(out) {}

    Writer& begin_object() { return open('{'); }
    Writer& end_object() { return close('}'); }
    Writer& begin_array() { return open('['); }
    Writer& end_array() { return close(']'); }
    Writer& key(std::string_view k) {
        quoted(k), out_ += ':', first_ = true;
        return *this;
    }
    Writer& value(std::string_view s) { return quoted(s); }
    Writer& value(const char* s) { return quoted(s); }
    Writer& value(bool b) { return raw(b ? "true" : "false"); }
    Writer& value(std::integral auto n) {
        char buf[24];
        return raw({buf, std::to_chars(buf, buf + sizeof buf, n).ptr});
    }
    Writer& value(double d) {  // the shortest form that reads back the same; NaN, infinities: null
        if (!std::isfinite(d)) return null();
        char buf[32];
        return raw({buf, std::to_chars(buf, buf + sizeof buf, d).ptr});
    }
    Writer& null() { return raw("null"); }
    // A value that is JSON already (a body that minify() checked, for instance).
    Writer& raw(std::string_view json) {
        comma(), out_ += json;
        return *this;
    }

private:
    void comma() {
        if (!first_) out_ += ',';
        first_ = false;
    }
    Writer& open(char c) {
        comma(), out_ += c, first_ = true;
        return *this;
    }
    Writer& close(char c) {
        out_ += c, first_ = false;
        return *this;
    }
    Writer& quoted(std::string_view s) {
        comma();
        std::size_t at = out_.size();
        out_.resize(at + 6 * s.size() + 2);
        out_.resize(static_cast<std::size_t>(write_string(out_.data() + at, s) - out_.data()));
        return *this;
    }

    std::string& out_;
    bool first_ = true;  // no comma before the next item: start of a container, or after a key
};

}  // namespace fast_json
