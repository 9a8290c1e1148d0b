#include "ws/ws_deflate.hpp"

#include <algorithm>
#include <cstring>

#include "quicklane.h"
#include "request.hpp"

namespace ql {

namespace {
// One extension's parameters: "name; a; b=1".
bool parse_bits(std::string_view v, uint8_t &bits) {
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    if (v.empty() || v.size() > 2) return false;
    unsigned n = 0;
    for (char c : v) {
        if (c < '0' || c > '9') return false;
        n = n * 10 + static_cast<unsigned>(c - '0');
    }
    if (n < 8 || n > 15) return false;
    bits = static_cast<uint8_t>(n);
    return true;
}

// One offer: true when it is permessage-deflate with parameters we accept.
bool accept_offer(std::string_view offer, uint32_t mode, uint8_t max_bits, DeflateParams &p, std::string &resp) {
    size_t semi = offer.find(';');
    if (trim(offer.substr(0, semi)) != "permessage-deflate") return false;
    bool seen_snct = false, seen_cnct = false, seen_smwb = false, seen_cmwb = false;
    uint8_t smwb = 15, cmwb = 15;
    bool cmwb_offered = false;
    std::string_view rest = semi == std::string_view::npos ? std::string_view{} : offer.substr(semi + 1);
    while (!rest.empty()) {
        size_t next = rest.find(';');
        std::string_view param = trim(rest.substr(0, next));
        rest = next == std::string_view::npos ? std::string_view{} : rest.substr(next + 1);
        size_t eq = param.find('=');
        std::string_view name = trim(param.substr(0, eq));
        std::string_view value = eq == std::string_view::npos ? std::string_view{} : trim(param.substr(eq + 1));
        bool has_value = eq != std::string_view::npos;
        // A parameter twice, an unknown one, or a bad value: this offer is declined.
        if (name == "server_no_context_takeover") {
            if (seen_snct || has_value) return false;
            seen_snct = true;
        } else if (name == "client_no_context_takeover") {
            if (seen_cnct || has_value) return false;
            seen_cnct = true;
        } else if (name == "server_max_window_bits") {
            if (seen_smwb || !parse_bits(value, smwb)) return false;
            seen_smwb = true;
        } else if (name == "client_max_window_bits") {
            if (seen_cmwb || (has_value && !parse_bits(value, cmwb))) return false;
            seen_cmwb = true;
            cmwb_offered = true;
        } else {
            return false;
        }
    }
    // zlib cannot compress with an 8-bit raw window: such an offer is declined.
    if (seen_smwb && smwb < 9) return false;
    p = DeflateParams{};
    if (mode == QL_WS_COMPRESS_SHARED) {
        // No context either way (RFC 7692 7.1.1: the server may ask the client
        // for client_no_context_takeover whatever it offered).
        p.server_no_context_takeover = p.client_no_context_takeover = true;
        p.server_max_window_bits = seen_smwb ? smwb : 15;
        p.client_max_window_bits = cmwb;
    } else {
        p.server_no_context_takeover = seen_snct;
        p.client_no_context_takeover = seen_cnct;
        uint8_t ours = seen_smwb ? std::min(smwb, max_bits) : max_bits;
        p.server_max_window_bits = ours < 9 ? 9 : ours;
        // The client's window: ours to limit only when it said it can be limited.
        p.client_max_window_bits = cmwb_offered ? std::min(cmwb, max_bits) : 15;
    }
    resp = "permessage-deflate";
    if (p.server_no_context_takeover) resp += "; server_no_context_takeover";
    if (p.client_no_context_takeover) resp += "; client_no_context_takeover";
    if (seen_smwb || p.server_max_window_bits < 15)
        resp += "; server_max_window_bits=" + std::to_string(p.server_max_window_bits);
    if (cmwb_offered && p.client_max_window_bits < 15)
        resp += "; client_max_window_bits=" + std::to_string(p.client_max_window_bits);
    return true;
}
}  // namespace

bool negotiate_deflate(std::string_view offers, uint32_t mode, uint8_t max_bits, DeflateParams &out,
                       std::string &response) {
    if (mode != QL_WS_COMPRESS_SHARED && mode != QL_WS_COMPRESS_DEDICATED) return false;
    while (!offers.empty()) {
        size_t comma = offers.find(',');
        if (accept_offer(offers.substr(0, comma), mode, max_bits, out, response)) return true;
        if (comma == std::string_view::npos) break;
        offers.remove_prefix(comma + 1);
    }
    return false;
}

// ---- compressing ---------------------------------------------------------

Deflater::~Deflater() {
    if (ready_) deflateEnd(&z_);
}

bool Deflater::compress(std::string_view in, std::string &out, uint8_t window_bits, bool takeover) {
    if (ready_ && bits_ != window_bits) {
        deflateEnd(&z_);
        ready_ = false;
    }
    if (!ready_) {
        // Level 1 (as uWebSockets): a message is compressed while its
        // sender waits. memLevel 8 (zlib's default), a window of 2^bits, raw deflate.
        if (deflateInit2(&z_, Z_BEST_SPEED, Z_DEFLATED, -window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return false;
        ready_ = true;
        bits_ = window_bits;
    }
    size_t start = out.size();
    z_.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(in.data()));
    z_.avail_in = static_cast<uInt>(in.size());
    do {
        size_t at = out.size();
        size_t room = deflateBound(&z_, z_.avail_in) + 16;
        out.resize(at + room);
        z_.next_out = reinterpret_cast<Bytef *>(out.data() + at);
        z_.avail_out = static_cast<uInt>(room);
        int rc = deflate(&z_, Z_SYNC_FLUSH);
        out.resize(at + room - z_.avail_out);
        if (rc != Z_OK && rc != Z_BUF_ERROR) return false;
    } while (z_.avail_in > 0 || z_.avail_out == 0);
    // A sync flush ends with 00 00 FF FF, which the message leaves out (RFC 7692 7.2.1).
    if (out.size() - start >= 4 && std::memcmp(out.data() + out.size() - 4, "\x00\x00\xff\xff", 4) == 0)
        out.resize(out.size() - 4);
    if (!takeover) deflateReset(&z_);
    return true;
}

// ---- inflating -------------------------------------------------------------

Inflater::~Inflater() {
    if (ready_) inflateEnd(&z_);
}

Inflater::Result Inflater::inflate(std::string_view in, std::string &out, uint64_t max, uint8_t window_bits,
                                   bool takeover) {
    if (ready_ && bits_ != window_bits) {
        inflateEnd(&z_);
        ready_ = false;
    }
    if (!ready_) {
        if (inflateInit2(&z_, -window_bits) != Z_OK) return Result::Corrupt;
        ready_ = true;
        bits_ = window_bits;
    }
    out.clear();
    static const char tail[4] = {0, 0, '\xff', '\xff'};
    Result res = Result::Ok;
    for (int part = 0; part < 2 && res == Result::Ok; ++part) {
        std::string_view src = part == 0 ? in : std::string_view(tail, 4);
        z_.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(src.data()));
        z_.avail_in = static_cast<uInt>(src.size());
        while (z_.avail_in > 0) {
            size_t at = out.size();
            size_t room = std::max<size_t>(16384, src.size() * 2);
            if (at + room > max + 1) room = max + 1 - at;  // one byte past max tells "too big"
            out.resize(at + room);
            z_.next_out = reinterpret_cast<Bytef *>(out.data() + at);
            z_.avail_out = static_cast<uInt>(room);
            int rc = ::inflate(&z_, Z_SYNC_FLUSH);
            out.resize(at + room - z_.avail_out);
            if (out.size() > max) {
                res = Result::TooBig;
                break;
            }
            if (rc == Z_STREAM_END) {
                // A final block: fine once; more input after it is not deflate.
                if (z_.avail_in > 0) res = Result::Corrupt;
                break;
            }
            if (rc == Z_BUF_ERROR && z_.avail_out > 0) break;  // all input taken
            if (rc != Z_OK && rc != Z_BUF_ERROR) {
                res = Result::Corrupt;
                break;
            }
        }
    }
    if (!takeover || res != Result::Ok) inflateReset(&z_);
    return res;
}

}  // namespace ql
