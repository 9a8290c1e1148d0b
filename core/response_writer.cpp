#include "response_writer.hpp"

#include <charconv>
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

namespace {
void append_uint(std::string &out, uint64_t v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}
}  // namespace

void format_head(std::string &out, const HeadParams &p) {
    out.clear();
    out.append(p.http10 ? "HTTP/1.0 " : "HTTP/1.1 ");
    append_uint(out, static_cast<uint64_t>(p.status));
    out.push_back(' ');
    out.append(reason_phrase(p.status));
    out.append("\r\nServer: quicklane\r\nDate: ");
    out.append(p.date);
    out.append("\r\n");
    if (!p.content_type.empty()) {
        out.append("Content-Type: ");
        out.append(p.content_type);
        out.append("\r\n");
    }
    if (status_has_body(p.status)) {
        out.append("Content-Length: ");
        append_uint(out, p.content_length);
        out.append("\r\n");
    }
    if (!p.keep_alive)
        out.append("Connection: close\r\n");
    else if (p.http10)
        out.append("Connection: keep-alive\r\n");
    out.append(p.extra_headers);
    out.append("\r\n");
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
