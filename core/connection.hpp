// Connection: one TCP stream, its llhttp parser and its FIFO of requests.
// Answers leave in request order (pipelining); ready answers at the head of
// the FIFO go out together in one vectored write.
#pragma once

#include <llhttp.h>
#include <uv.h>

#include <cstdint>
#include <string_view>

#include "request.hpp"

namespace ql {

class Worker;

class Connection {
public:
    explicit Connection(Worker &w);
    ~Connection();
    bool accept(uv_stream_t *listener);

    void flush();   // write ready answers at the head of the FIFO
    void close();   // idempotent
    void drain();   // server stopping: finish what is in flight, then close
    void check_timeouts(uint64_t now);
    void update_reading();  // read while the pipeline has room
    bool idle() const { return !head_ && !parsing_ && !writing_; }

    Worker &w;
    Connection *prev = nullptr;
    Connection *next = nullptr;
    bool in_read = false;

private:
    static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
    static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
    static void on_write(uv_write_t *req, int status);
    static void on_close(uv_handle_t *h);

    static int cb_message_begin(llhttp_t *p);
    static int cb_url(llhttp_t *p, const char *at, size_t len);
    static int cb_version(llhttp_t *p, const char *at, size_t len);
    static int cb_header_field(llhttp_t *p, const char *at, size_t len);
    static int cb_header_value(llhttp_t *p, const char *at, size_t len);
    static int cb_headers_complete(llhttp_t *p);
    static int cb_body(llhttp_t *p, const char *at, size_t len);
    static int cb_message_complete(llhttp_t *p);
    static const llhttp_settings_t *settings();

    void handle_data(const char *data, size_t len);
    void fail(int status, std::string_view msg);
    void push(Request *r);
    void dispatch(Request *r);
    void answer_error(Request *r, int status, std::string_view msg, std::string_view extra = {});
    void complete(uint32_t n);
    void stream_written();
    void detach(Request *r);
    bool head_limit(Request *r, size_t more);

    uv_tcp_t tcp_;
    llhttp_t parser_;
    uv_write_t wreq_;
    Request *parsing_ = nullptr;
    // Raw positions for checks llhttp 8 does not make (obs-fold, bare LF).
    const char *buf_start_ = nullptr;
    const char *buf_end_ = nullptr;
    const char *value_end_ = nullptr;
    // Bare-LF checks across reads: stream offsets, and the last bytes of
    // earlier reads (a line terminator is at most 4 bytes long).
    uint64_t consumed_ = 0;       // bytes before the current read
    uint64_t line_end_ = 0;       // where the request line's or last value's text ended
    unsigned char hist_[3] = {};  // the 3 bytes before the current read
    int byte_at(uint64_t off) const;
    uint64_t offset(const char *p) const { return consumed_ + static_cast<uint64_t>(p - buf_start_); }
    bool crlf_at(uint64_t off) const { return byte_at(off) == '\r' && byte_at(off + 1) == '\n'; }
    Request *head_ = nullptr;
    Request *tail_ = nullptr;
    uint32_t fifo_len_ = 0;
    uint32_t writing_ = 0;  // requests at the FIFO head being written
    bool writing_stream_ = false;
    uint64_t head_start_ = 0;
    uint64_t last_activity_ = 0;
    int pending_status_ = 0;
    const char *pending_msg_ = nullptr;
    bool closing_ = false;
    bool close_after_ = false;  // close once the FIFO is written
    bool reading_ = false;
    bool headers_done_ = false;
    bool counted_ = false;
    uint16_t peer_port_ = 0;
    uint8_t peer_ip_len_ = 0;
    char peer_ip_[46] = {0};  // formatted once per connection, not per request
};

}  // namespace ql
