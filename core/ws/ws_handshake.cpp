#include "ws/ws_handshake.hpp"

#include <nettle/base64.h>
#include <nettle/sha1.h>

#include <cstring>

#include "request.hpp"

namespace ql {

namespace {
// A key is base64 of 16 bytes: 22 characters of the alphabet and "==".
bool valid_key(std::string_view k) {
    if (k.size() != 24 || k[22] != '=' || k[23] != '=') return false;
    for (size_t i = 0; i < 22; ++i) {
        char c = k[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
        if (!ok) return false;
    }
    // The last character before "==" carries 2 bits: its low 4 bits are zero.
    static const char *last = "AQgw";
    return std::strchr(last, k[21]) != nullptr;
}
}  // namespace

bool header_has_token(std::string_view value, std::string_view token) {
    while (!value.empty()) {
        size_t comma = value.find(',');
        if (iequals(trim(value.substr(0, comma)), token)) return true;
        if (comma == std::string_view::npos) break;
        value.remove_prefix(comma + 1);
    }
    return false;
}

HandshakeCheck check_upgrade(const Request &r) {
    HandshakeCheck c;
    bool found = false;
    std::string_view upgrade = find_header(r, "upgrade", &found);
    if (!found || !header_has_token(upgrade, "websocket")) {
        static const ql_header h[] = {{"Upgrade", 7, "websocket", 9}, {"Sec-WebSocket-Version", 21, "13", 2}};
        c.status = 426;
        c.why = "this route takes WebSocket connections (Upgrade: websocket)";
        c.headers = h;
        c.header_count = 2;
        return c;
    }
    if (std::strcmp(r.method_name, "GET") != 0 || r.http_minor < 1) {
        c.status = 400;
        c.why = "a WebSocket upgrade is a GET over HTTP/1.1";
        return c;
    }
    if (!header_has_token(find_header(r, "connection"), "upgrade")) {
        c.status = 400;
        c.why = "a WebSocket upgrade needs Connection: Upgrade";
        return c;
    }
    std::string_view version = trim(find_header(r, "sec-websocket-version", &found));
    if (!found || version != "13") {
        static const ql_header h[] = {{"Sec-WebSocket-Version", 21, "13", 2}};
        c.status = 426;
        c.why = "unsupported WebSocket version (13 is)";
        c.headers = h;
        c.header_count = 1;
        return c;
    }
    if (!valid_key(trim(find_header(r, "sec-websocket-key")))) {
        c.status = 400;
        c.why = "missing or invalid Sec-WebSocket-Key";
        return c;
    }
    return c;
}

std::string ws_accept_key(std::string_view key) {
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    sha1_ctx ctx;
    sha1_init(&ctx);
    sha1_update(&ctx, key.size(), reinterpret_cast<const uint8_t *>(key.data()));
    sha1_update(&ctx, sizeof guid - 1, reinterpret_cast<const uint8_t *>(guid));
    uint8_t digest[SHA1_DIGEST_SIZE];
    sha1_digest(&ctx, sizeof digest, digest);
    std::string out(BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE), '\0');
    base64_encode_raw(out.data(), sizeof digest, digest);
    return out;
}

void ws_switching_head(std::string &out, const Request &r, std::string_view extra) {
    std::string_view key = trim(find_header(r, "sec-websocket-key"));
    out.assign("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ");
    out.append(ws_accept_key(key)).append("\r\n").append(extra).append("\r\n");
}

}  // namespace ql
