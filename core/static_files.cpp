#include "static_files.hpp"
#include "rules.hpp"  // elapsed_ms

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cctype>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <chrono>
#include <ctime>

#include "request.hpp"

namespace ql {

namespace {

bool read_file(int fd, uint64_t size, std::string &out) {
    out.resize(size);
    uint64_t off = 0;
    while (off < size) {
        ssize_t n = ::pread(fd, out.data() + off, size - off, static_cast<off_t>(off));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        off += static_cast<uint64_t>(n);
    }
    return true;
}

void http_date(time_t t, std::string &out) {
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[40];
    size_t n = strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    out.assign(buf, n);
}

}  // namespace

bool static_relative_path(std::string_view raw, std::string &out) {
    out.clear();
    if (raw.empty()) return true;  // the folder itself (its index)
    // Encoded separators would hide a segment boundary from the checks below.
    for (size_t i = 0; i + 2 < raw.size(); ++i) {
        if (raw[i] != '%') continue;
        int a = hexval(raw[i + 1]), b = hexval(raw[i + 2]);
        if (a < 0 || b < 0) return false;
        int c = a * 16 + b;
        if (c == '/' || c == '\\' || c == 0) return false;
    }
    std::string decoded;
    if (!percent_decode(raw, false, decoded)) return false;
    size_t pos = 0;
    while (pos <= decoded.size()) {
        size_t slash = decoded.find('/', pos);
        if (slash == std::string::npos) slash = decoded.size();
        std::string_view seg(decoded.data() + pos, slash - pos);
        bool last = slash == decoded.size();
        if (seg.empty() && !last) return false;  // doubled slash
        if (seg == "." || seg == "..") return false;
        for (char c : seg)
            if (c == '\\' || c == '\0') return false;
        if (!out.empty() && !seg.empty()) out.push_back('/');
        out.append(seg);
        pos = slash + 1;
    }
    return true;
}

std::string_view content_type_for(std::string_view path) {
    size_t dot = path.rfind('.');
    size_t slash = path.rfind('/');
    if (dot == std::string_view::npos || (slash != std::string_view::npos && dot < slash))
        return "application/octet-stream";
    std::string ext(path.substr(dot + 1));
    for (char &c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    static const std::unordered_map<std::string, std::string_view> types = {
        {"html", "text/html; charset=utf-8"}, {"htm", "text/html; charset=utf-8"},
        {"css", "text/css; charset=utf-8"},   {"js", "text/javascript; charset=utf-8"},
        {"mjs", "text/javascript; charset=utf-8"}, {"json", "application/json"},
        {"map", "application/json"},          {"txt", "text/plain; charset=utf-8"},
        {"md", "text/markdown; charset=utf-8"}, {"csv", "text/csv; charset=utf-8"},
        {"xml", "application/xml"},           {"svg", "image/svg+xml"},
        {"png", "image/png"},                 {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"},               {"gif", "image/gif"},
        {"webp", "image/webp"},               {"avif", "image/avif"},
        {"ico", "image/x-icon"},              {"woff", "font/woff"},
        {"woff2", "font/woff2"},              {"ttf", "font/ttf"},
        {"otf", "font/otf"},                  {"pdf", "application/pdf"},
        {"wasm", "application/wasm"},         {"zip", "application/zip"},
        {"gz", "application/gzip"},           {"mp4", "video/mp4"},
        {"webm", "video/webm"},               {"mp3", "audio/mpeg"},
        {"wav", "audio/wav"},                 {"ogg", "audio/ogg"},
    };
    auto it = types.find(ext);
    return it == types.end() ? std::string_view("application/octet-stream") : it->second;
}

bool compressible_type(std::string_view type) {
    return type.rfind("text/", 0) == 0 || type.rfind("application/json", 0) == 0 ||
           type.rfind("application/xml", 0) == 0 || type.rfind("application/javascript", 0) == 0 ||
           type.rfind("image/svg+xml", 0) == 0 || type.rfind("application/wasm", 0) == 0;
}

bool accepts_gzip(std::string_view ae) {
    while (!ae.empty()) {
        size_t comma = ae.find(',');
        std::string_view item = ae.substr(0, comma);
        ae = comma == std::string_view::npos ? std::string_view{} : ae.substr(comma + 1);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
        size_t semi = item.find(';');
        std::string_view coding = item.substr(0, semi);
        while (!coding.empty() && (coding.back() == ' ' || coding.back() == '\t')) coding.remove_suffix(1);
        if (!iequals(coding, "gzip") && coding != "*") continue;
        if (semi == std::string_view::npos) return true;
        std::string_view params = item.substr(semi + 1);
        size_t q = params.find("q=");
        if (q == std::string_view::npos) return true;
        std::string qv(params.substr(q + 2));
        return std::strtod(qv.c_str(), nullptr) > 0.0;
    }
    return false;
}

bool gzip_compress(std::string_view data, int level, std::string &out) {
    z_stream zs{};
    if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return false;
    out.resize(deflateBound(&zs, data.size()) + 32);
    zs.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(data.data()));
    zs.avail_in = static_cast<uInt>(data.size());
    zs.next_out = reinterpret_cast<Bytef *>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    int rc = deflate(&zs, Z_FINISH);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    return rc == Z_STREAM_END;
}

int parse_range(std::string_view h, uint64_t size, uint64_t &first, uint64_t &last) {
    if (h.rfind("bytes=", 0) != 0) return 0;  // another unit: ignored (RFC 9110 14.2)
    h.remove_prefix(6);
    if (h.find(',') != std::string_view::npos) return 0;  // several ranges: the whole file
    size_t dash = h.find('-');
    if (dash == std::string_view::npos) return 0;
    auto num = [](std::string_view s, uint64_t &v) {
        if (s.empty() || s.size() > 19) return false;
        v = 0;
        for (char c : s) {
            if (c < '0' || c > '9') return false;
            v = v * 10 + static_cast<uint64_t>(c - '0');
        }
        return true;
    };
    std::string_view a = h.substr(0, dash), b = h.substr(dash + 1);
    uint64_t x = 0, y = 0;
    if (a.empty()) {  // suffix: the last y bytes
        if (!num(b, y)) return 0;
        if (y == 0 || size == 0) return -1;
        first = y >= size ? 0 : size - y;
        last = size - 1;
        return 1;
    }
    if (!num(a, x)) return 0;
    if (x >= size) return -1;
    if (b.empty()) {
        first = x;
        last = size - 1;
        return 1;
    }
    if (!num(b, y) || y < x) return 0;  // invalid: ignored
    first = x;
    last = y >= size ? size - 1 : y;
    return 1;
}

bool etag_matches(std::string_view inm, std::string_view etag) {
    auto opaque = [](std::string_view t) {
        if (t.rfind("W/", 0) == 0) t.remove_prefix(2);
        return t;
    };
    std::string_view want = opaque(etag);
    while (!inm.empty()) {
        size_t comma = inm.find(',');
        std::string_view item = inm.substr(0, comma);
        inm = comma == std::string_view::npos ? std::string_view{} : inm.substr(comma + 1);
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
        if (item == "*" || opaque(item) == want) return true;
    }
    return false;
}

bool if_range_matches(std::string_view if_range, std::string_view etag, std::string_view last_modified) {
    while (!if_range.empty() && (if_range.front() == ' ' || if_range.front() == '\t')) if_range.remove_prefix(1);
    while (!if_range.empty() && (if_range.back() == ' ' || if_range.back() == '\t')) if_range.remove_suffix(1);
    if (if_range.rfind("W/", 0) == 0) return false;                 // strong comparison only
    if (!if_range.empty() && if_range.front() == '"') return if_range == etag;
    return !if_range.empty() && if_range == last_modified;            // an HTTP-date: exactly ours
}

std::shared_ptr<const FileEntry> FileCache::get(const StaticDir &dir, const std::string &rel, int *status, int *fd) {
    *fd = -1;
    static thread_local std::string key;
    key.assign(dir.root).push_back('\0');
    key.append(rel);
    uint64_t now = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::steady_clock::now().time_since_epoch())
                                             .count());
    {
        std::lock_guard lk(mu_);
        auto it = recent_.find(key);
        if (it != recent_.end() && elapsed_ms(now, it->second.checked_ms) < 1000) return it->second.entry;
    }
    std::shared_ptr<const FileEntry> e = resolve(dir, rel, status, fd);
    if (e && !e->on_disk) {
        std::lock_guard lk(mu_);
        if (recent_.size() >= 65536) recent_.clear();  // simple bound
        recent_[key] = {e, now};
    }
    return e;
}

std::shared_ptr<const FileEntry> FileCache::resolve(const StaticDir &dir, const std::string &rel, int *status,
                                                    int *fd_out) {
    std::string full = dir.root;
    if (!rel.empty()) full.append("/").append(rel);
    char resolved[PATH_MAX];
    if (!::realpath(full.c_str(), resolved)) {
        *status = 404;
        return nullptr;
    }
    std::string path(resolved);
    // Symlinks that lead out of the root are refused like a missing file.
    if (path != dir.root && path.rfind(dir.root + "/", 0) != 0) {
        *status = 404;
        return nullptr;
    }
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
        *status = 404;
        return nullptr;
    }
    if (S_ISDIR(st.st_mode)) {
        if (dir.index.empty()) {
            *status = 404;
            return nullptr;
        }
        std::string index = path + "/" + dir.index;
        if (!::realpath(index.c_str(), resolved) || ::stat(resolved, &st) != 0) {
            *status = 404;
            return nullptr;
        }
        path = resolved;
        if (path.rfind(dir.root + "/", 0) != 0) {
            *status = 404;
            return nullptr;
        }
    }
    if (!S_ISREG(st.st_mode)) {
        *status = 404;
        return nullptr;
    }
    int64_t mtime = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    uint64_t size = static_cast<uint64_t>(st.st_size);
    {
        std::lock_guard lk(mu_);
        auto it = map_.find(path);
        if (it != map_.end() && it->second->size == size && it->second->mtime_ns == mtime) return it->second;
    }
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *status = errno == EACCES ? 403 : 404;
        return nullptr;
    }
    auto e = std::make_shared<FileEntry>();
    if (size > kMemoryFileMax) {
        // Too large to keep: describe the file as opened, and send it from there.
        if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            ::close(fd);
            *status = 404;
            return nullptr;
        }
        size = static_cast<uint64_t>(st.st_size);
        mtime = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
        e->on_disk = true;
    } else {
        bool ok = read_file(fd, size, e->body);
        ::close(fd);
        fd = -1;
        if (!ok) {
            *status = 500;
            return nullptr;
        }
    }
    e->size = size;
    e->mtime_ns = mtime;
    char tag[64];
    // Strong, as nginx's: size and mtime (ns) change with every write that
    // could change a byte, so byte ranges (If-Range) may rely on it.
    snprintf(tag, sizeof tag, "\"%llx-%llx\"", static_cast<unsigned long long>(size),
             static_cast<unsigned long long>(mtime));
    e->etag = tag;
    http_date(st.st_mtim.tv_sec, e->last_modified);
    e->type = content_type_for(path);
    if (dir.gzip && compressible_type(e->type) && size >= 256) {
        // A precompressed sibling, when it is as new as the file; else gzip once
        // (files kept in memory only: a large one goes out as it is).
        std::string gz_path = path + ".gz";
        struct stat gst;
        int gfd = -1;
        bool fresh = ::stat(gz_path.c_str(), &gst) == 0 && S_ISREG(gst.st_mode) &&
                     gst.st_mtim.tv_sec >= st.st_mtim.tv_sec;
        if (e->on_disk) {
            if (fresh) {
                e->gz_path = std::move(gz_path);
                e->gz_size = static_cast<uint64_t>(gst.st_size);
            }
        } else if (fresh && (gfd = ::open(gz_path.c_str(), O_RDONLY | O_CLOEXEC)) >= 0) {
            if (!read_file(gfd, static_cast<uint64_t>(gst.st_size), e->gz)) e->gz.clear();
            ::close(gfd);
        } else if (gzip_compress(e->body, 6, e->gz) && e->gz.size() >= e->body.size()) {
            e->gz.clear();  // no gain
        }
    }
    if (e->on_disk) {
        *fd_out = fd;
        return e;
    }
    std::shared_ptr<const FileEntry> shared = e;
    {
        std::lock_guard lk(mu_);
        uint64_t add = e->body.size() + e->gz.size();
        if (bytes_ + add > max_bytes_) {
            map_.clear();  // simple bound: start over
            bytes_ = 0;
        }
        auto [it, inserted] = map_.insert_or_assign(path, shared);
        (void)it;
        (void)inserted;
        bytes_ += add;
    }
    return shared;
}

}  // namespace ql
