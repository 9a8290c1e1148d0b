// The opening handshake of RFC 6455 (section 4.2), server side: which
// upgrade requests are well formed, the Sec-WebSocket-Accept value, and the
// 101 answer's head. Nothing here touches a socket.
#pragma once

#include <string>
#include <string_view>

#include "quicklane.h"

namespace ql {

struct Request;

// What is wrong with an upgrade request, if anything: status 0 = fine;
// else the status to answer with (400, or 426) and why. A 426 for a wrong
// version carries `Sec-WebSocket-Version: 13` (extra_header).
struct HandshakeCheck {
    int status = 0;
    const char *why = "";
    const ql_header *headers = nullptr;  // the answer's extra headers
    size_t header_count = 0;
};
HandshakeCheck check_upgrade(const Request &r);

// base64(SHA-1(key + the RFC's GUID)).
std::string ws_accept_key(std::string_view key);

// The 101 answer to r: Upgrade, Connection, Sec-WebSocket-Accept, then
// `extra` (header lines, each ending in CRLF).
void ws_switching_head(std::string &out, const Request &r, std::string_view extra);

// True when the comma-separated header value lists `token` (case-insensitive).
bool header_has_token(std::string_view value, std::string_view token);

}  // namespace ql
