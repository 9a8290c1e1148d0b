// Formats response heads. The Date value is cached per loop and refreshed
// once a second by the worker's tick.
#pragma once

#include <string>
#include <string_view>

namespace ql {

struct HeadParams {
    int status;
    std::string_view content_type;
    std::string_view extra_headers;  // preformatted "Name: value\r\n" lines
    size_t content_length;
    bool keep_alive;
    bool http10;
    std::string_view date;  // 29 chars
    bool chunked = false;   // streamed: Transfer-Encoding: chunked instead of Content-Length
    std::string_view rule_headers = {};  // added by native rules (CORS, RateLimit-*)
};

const char *reason_phrase(int status);
void format_head(std::string &out, const HeadParams &p);
// 1xx, 204 and 304 answers never carry body bytes (RFC 9110 6.4.1).
inline bool status_has_body(int s) { return !(s < 200 || s == 204 || s == 304); }
// Fills 29 chars "Sun, 06 Nov 1994 08:49:37 GMT" for now.
void format_http_date(char out[30]);
// JSON error body {"detail":"..."}; msg must not need escaping beyond quotes/backslashes.
std::string error_body(std::string_view msg);

}  // namespace ql
