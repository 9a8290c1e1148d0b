// Static folders: a file, conditional, ranged or gzip, answered here.
#include "phases/phases.hpp"

#include <fcntl.h>
#include <unistd.h>

#include "response_writer.hpp"
#include "server.hpp"
#include "static_files.hpp"
#include "worker.hpp"

namespace ql {

// A file of a mounted folder: conditional (304), ranged (206/416), gzip
// (precompressed or cached) when the client accepts it.
void static_dir_phase(PhaseCtx &c, Request *r, const StaticDir &dir, std::string_view raw_rest) {
    static thread_local std::string rel;
    if (!static_relative_path(raw_rest, rel)) {
        answer_error(c.out, r, 404, "Not Found");
        return;
    }
    int status = 404;
    int fd = -1;
    std::shared_ptr<const FileEntry> f = c.w.server.files->get(dir, rel, &status, &fd);
    if (!f) {
        answer_error(c.out, r, status, status == 404 ? "Not Found" : status == 403 ? "Forbidden" : "the file cannot be served");
        return;
    }
    r->file_fd = fd;  // owned by the request from here on
    bool gz = (!f->gz.empty() || !f->gz_path.empty()) && accepts_gzip(find_header(*r, "accept-encoding"));
    std::string etag = f->etag;
    if (gz) etag.insert(etag.size() - 1, "-gz");
    std::string &h = r->pending_headers;  // loop-owned: the request is not dispatched
    h.assign("ETag: ").append(etag).append("\r\nLast-Modified: ").append(f->last_modified);
    h.append("\r\nAccept-Ranges: bytes\r\n");
    if (!f->gz.empty() || !f->gz_path.empty()) h.append("Vary: Accept-Encoding\r\n");
    if (dir.max_age_s) h.append("Cache-Control: public, max-age=").append(std::to_string(dir.max_age_s)).append("\r\n");
    r->file = f;
    int code = 200;
    uint64_t size = gz ? (f->on_disk ? f->gz_size : f->gz.size()) : f->size;
    uint64_t first = 0, last = size ? size - 1 : 0;
    bool has_inm = false, has_ims = false;
    std::string_view inm = find_header(*r, "if-none-match", &has_inm);
    std::string_view ims = find_header(*r, "if-modified-since", &has_ims);
    bool not_modified = has_inm ? etag_matches(inm, etag) : has_ims && ims == f->last_modified;
    if (not_modified) {
        code = 304;
        r->head_only = true;
    } else if (bool has_range = false, has_if_range = false;
               !gz && (find_header(*r, "range", &has_range), has_range) &&
               (find_header(*r, "if-range", &has_if_range), !has_if_range ||
                if_range_matches(find_header(*r, "if-range"), etag, f->last_modified))) {
        int rv = parse_range(find_header(*r, "range"), f->size, first, last);
        if (rv < 0) {
            r->close_file();
            answer_error(c.out, r, 416, "Range Not Satisfiable", "Content-Range: bytes */" + std::to_string(f->size) + "\r\n");
            return;
        }
        if (rv > 0) {
            code = 206;
            h.append("Content-Range: bytes ")
                .append(std::to_string(first))
                .append("-")
                .append(std::to_string(last))
                .append("/")
                .append(std::to_string(f->size))
                .append("\r\n");
        }
    }
    if (gz && code != 304) h.append("Content-Encoding: gzip\r\n");
    uint64_t length = code == 304 || size == 0 ? 0 : last - first + 1;
    if (f->on_disk) {
        // Sent from the file after the head (flush, send_file).
        if (gz && !r->head_only) {
            r->close_file();
            r->file_fd = ::open(f->gz_path.c_str(), O_RDONLY | O_CLOEXEC);
            if (r->file_fd < 0) {
                answer_error(c.out, r, 500, "the file cannot be served");
                return;
            }
        }
        if (r->head_only || length == 0) {
            r->close_file();
        } else {
            r->file_off = first;
            r->file_end = first + length;
        }
        r->body_ref = std::string_view("", 0);  // no body bytes in memory
    } else {
        std::string_view body = gz ? std::string_view(f->gz) : std::string_view(f->body);
        r->body_ref = length ? body.substr(first, length) : std::string_view("", 0);
    }
    c.out.ready_here(r, code, f->type, h, static_cast<size_t>(length));
}

}  // namespace ql
