// Static files and compression: a folder mounted under a URL prefix, served
// by the core (ETag / Last-Modified / 304, Range / 206 / 416, content types,
// precompressed or cached gzip, no way out of the root), and gzip for dynamic
// answers above a size threshold.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace ql {

struct StaticDir {
    std::string root;        // realpath of the folder, no trailing slash
    std::string index = "index.html";
    uint32_t max_age_s = 0;  // Cache-Control: public, max-age=N (0: no Cache-Control)
    bool gzip = true;        // .gz siblings, or gzip on the fly (cached)
};

struct CompressionRules {
    uint32_t min_bytes = 1024;
    int level = 6;
};

// Files up to kMemoryFileMax are read once and kept (by path, size and mtime),
// bounded by bytes; the gzip form of compressible files is kept beside them.
// Larger files stay on disk and go out with sendfile(2): their entry carries
// only the metadata, and each answer opens the file itself.
struct FileEntry {
    std::string body;
    std::string gz;  // empty: not compressible (or gzip off)
    bool on_disk = false;  // body and gz are empty; the bytes are sent from the file
    std::string gz_path;   // on disk: a .gz sibling at least as new as the file
    uint64_t gz_size = 0;
    uint64_t size = 0;
    int64_t mtime_ns = 0;
    std::string etag;           // W/"size-mtime"
    std::string last_modified;  // HTTP-date
    std::string_view type;
};

class FileCache {
public:
    explicit FileCache(uint64_t max_bytes) : max_bytes_(max_bytes) {}
    // The file's current content (re-read when its size or mtime changed).
    // nullptr with *status set (404, 403, 500) when it cannot be served.
    // For an entry on disk, *fd is the file opened read-only (the caller
    // closes it), and the entry describes that open file; else -1.
    std::shared_ptr<const FileEntry> get(const StaticDir &dir, const std::string &path, int *status, int *fd);

private:
    std::shared_ptr<const FileEntry> resolve(const StaticDir &dir, const std::string &path, int *status, int *fd);
    struct Recent {
        std::shared_ptr<const FileEntry> entry;
        uint64_t checked_ms;
    };
    std::mutex mu_;
    std::unordered_map<std::string, std::shared_ptr<const FileEntry>> map_;  // by real path
    // By mount and request path: resolved (realpath, stat) at most once a
    // second, as nginx's open_file_cache_valid; changes show within 1 s.
    std::unordered_map<std::string, Recent> recent_;
    uint64_t bytes_ = 0;
    uint64_t max_bytes_;
};

// Files larger than this are not kept in memory; they are sent with sendfile.
constexpr uint64_t kMemoryFileMax = 4ull << 20;

// The file path under dir for a request's (raw, still percent-encoded) rest
// of path, or false: encoded slashes or backslashes, NUL, empty, "." or ".."
// segments are refused before anything touches the disk.
bool static_relative_path(std::string_view raw, std::string &out);

// Content type by file extension ("application/octet-stream" otherwise).
std::string_view content_type_for(std::string_view path);
bool compressible_type(std::string_view type);

// True when the Accept-Encoding header accepts gzip (q > 0).
bool accepts_gzip(std::string_view accept_encoding);

// gzip (RFC 1952) of data; false on a zlib error.
bool gzip_compress(std::string_view data, int level, std::string &out);

// Range header for a body of `size` bytes: 0 = none or not applicable (serve
// whole), 1 = one satisfiable range [first, last], -1 = unsatisfiable (416).
int parse_range(std::string_view header, uint64_t size, uint64_t &first, uint64_t &last);

// If-None-Match against an ETag (weak comparison, lists and "*").
bool etag_matches(std::string_view if_none_match, std::string_view etag);

// If-Range (RFC 9110 13.1.5): true when the client's validator is still the
// current one, so its Range applies; a weak tag or another date never is.
bool if_range_matches(std::string_view if_range, std::string_view etag, std::string_view last_modified);

}  // namespace ql
