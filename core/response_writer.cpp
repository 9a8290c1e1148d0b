#include "response_writer.hpp"

#include <charconv>
#include <cstring>
#include <cstdio>
#include <ctime>

namespace ql {

const char *reason_phrase(int s) {
    switch (s) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 418: return "I'm a teapot";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

void format_head(std::string &out, const HeadParams &p) {
    // Sized once, then filled with memcpy: this runs for every response.
    static constexpr std::string_view kServer = "\r\nServer: quicklane\r\nDate: ";
    static constexpr std::string_view kType = "Content-Type: ";
    static constexpr std::string_view kLength = "Content-Length: ";
    std::string_view reason = reason_phrase(p.status);
    std::string_view conn = !p.keep_alive ? "Connection: close\r\n" : p.http10 ? "Connection: keep-alive\r\n" : "";
    bool has_body = status_has_body(p.status);
    char num[24];
    size_t num_len = static_cast<size_t>(std::to_chars(num, num + sizeof num, p.content_length).ptr - num);
    unsigned status = static_cast<unsigned>(p.status) % 1000;
    static constexpr std::string_view kChunked = "Transfer-Encoding: chunked\r\n";
    // A streamed HTTP/1.0 answer is delimited by the close instead.
    bool length = has_body && !p.chunked;
    bool chunked = has_body && p.chunked && !p.http10;
    size_t total = 9 + 3 + 1 + reason.size() + kServer.size() + p.date.size() + 2 +
                   (p.content_type.empty() ? 0 : kType.size() + p.content_type.size() + 2) +
                   (length ? kLength.size() + num_len + 2 : 0) + (chunked ? kChunked.size() : 0) + conn.size() +
                   p.extra_headers.size() + p.rule_headers.size() + 2;
    out.resize(total);
    char *w = out.data();
    auto put = [&w](std::string_view v) {
        if (v.empty()) return;  // an empty view may carry a null pointer
        std::memcpy(w, v.data(), v.size());
        w += v.size();
    };
    put(p.http10 ? "HTTP/1.0 " : "HTTP/1.1 ");
    *w++ = static_cast<char>('0' + status / 100);
    *w++ = static_cast<char>('0' + status / 10 % 10);
    *w++ = static_cast<char>('0' + status % 10);
    *w++ = ' ';
    put(reason);
    put(kServer);
    put(p.date);
    put("\r\n");
    if (!p.content_type.empty()) {
        put(kType);
        put(p.content_type);
        put("\r\n");
    }
    if (length) {
        put(kLength);
        put({num, num_len});
        put("\r\n");
    }
    if (chunked) put(kChunked);
    put(conn);
    put(p.extra_headers);
    put(p.rule_headers);
    put("\r\n");
}

void format_http_date(char out[30]) {
    time_t now = time(nullptr);
    struct tm tm;
    gmtime_r(&now, &tm);
    // The C locale's %a/%b are the RFC 9110 IMF-fixdate names.
    strftime(out, 30, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

std::string error_body(std::string_view msg) {
    std::string b = "{\"detail\":\"";
    for (char c : msg) {
        if (c == '"' || c == '\\') b.push_back('\\');
        if (static_cast<unsigned char>(c) < 0x20) continue;
        b.push_back(c);
    }
    b += "\"}";
    return b;
}

}  // namespace ql
