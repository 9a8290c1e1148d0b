// Http1: the HTTP/1.1 protocol on a transport — its llhttp parser, the line
// checks llhttp does not make, and its FIFO of requests. A parsed request
// goes to the phases (phases/); answers leave in request order
// (pipelining), and ready answers at the head of the FIFO go out together
// in one vectored write. Streamed request bodies: http1_body.cpp.
#pragma once

#include <llhttp.h>
#include <uv.h>

#include <cstdint>
#include <string_view>

#include "phases/phases.hpp"
#include "request.hpp"
#include "transport/transport.hpp"

namespace ql {

class Worker;

class Http1 final : public Protocol, public Answers {
public:
    explicit Http1(Transport &t);
    ~Http1() override;

    // Protocol
    void start() override { update_reading(); }
    void on_data(const char *data, size_t len) override;
    void on_written(int status) override;
    void on_closed() override;
    void check_timeouts(uint64_t now) override;
    void drain() override;  // server stopping: finish what is in flight, then close
    // Answers (phases): the head of an answer made on the loop
    void ready_here(Request *r, int status, std::string_view type, std::string_view headers, size_t length) override;

    void flush();   // write ready answers at the head of the FIFO
    void close() { t.close(); }
    void update_reading();  // read while the pipeline has room
    // Streamed request bodies (body_stream.cpp). A host read some of r's
    // body (loop thread): resume reading, send 100 Continue when owed.
    void body_consumed(Request *r);
    // An answer to r is being made while its body still arrives: true when
    // the connection must close after it (the rest is not worth reading).
    bool answer_closes(Request *r);
    bool idle() const { return !head_ && !parsing_ && !writing_; }

    Worker &w;
    bool in_read = false;  // inside llhttp_execute: answers wait for its end

private:

    static int cb_message_begin(llhttp_t *p);
    static int cb_url(llhttp_t *p, const char *at, size_t len);
    static int cb_header_field(llhttp_t *p, const char *at, size_t len);
    static int cb_header_value(llhttp_t *p, const char *at, size_t len);
    static int cb_headers_complete(llhttp_t *p);
    static int cb_body(llhttp_t *p, const char *at, size_t len);
    static int cb_chunk_header(llhttp_t *p);
    static int cb_message_complete(llhttp_t *p);
    static const llhttp_settings_t *settings();

    void fail(int status, std::string_view msg);
    void push(Request *r);
    void dispatch(Request *r);
    void answer_error(Request *r, int status, std::string_view msg, std::string_view extra = {}) {
        ql::answer_error(*this, r, status, msg, extra);
    }
    void complete(uint32_t n);
    void stream_written();
    void head_written(uint32_t n, bool file);
    bool send_file(Request *r);
    void detach(Request *r);
    void observe(Request *r);
    void notify_abort(Request *r);
    void abandon(Request *r);
    void expire_handlers(uint64_t now);
    bool head_limit(Request *r, size_t more);
    bool gap_ok(const char *to);
    // A head (or body) refused with status: the answer fail() sends.
    int refuse(int status, const char *why);  // HPE_USER, for llhttp
    bool refuse_head(const char *why);         // 400; false, for the line checks
    bool note_span(const char *at, size_t len);
    int unknown_method(const char *from, const char *to);
    static int cb_method(llhttp_t *p, const char *at, size_t len);
    static int cb_version(llhttp_t *p, const char *at, size_t len);
    // Streamed request bodies (body_stream.cpp).
    bool stream_route(Request *r);
    bool body_arrived(Request *r, const char *at, size_t len);
    void body_ended(Request *r);
    void body_abandoned(Request *r);
    void stream_failed(Request *r, int status, std::string_view msg);
    bool replace_unanswered(Request *r, int status, std::string_view msg, bool keep_alive);
    void send_continue(Request *r);
    void linger();
    void close_or_linger();

    llhttp_t parser_;
    Request *parsing_ = nullptr;
    // Raw positions for the line checks llhttp 8 does not make (gap_ok).
    const char *buf_start_ = nullptr;
    const char *buf_end_ = nullptr;
    // Bytes between the spans of a head (and after the last one) carry every
    // line break; each LF there must follow a CR. Checked across reads.
    const char *span_end_ = nullptr;  // in the current buffer; nullptr: at its start
    bool span_seen_ = false;
    uint8_t gap_lfs_ = 0;
    char gap_prev_ = 0;
    uint32_t gap_bytes_ = 0;
    uint32_t last_gap_ = 0;  // bytes between the last two spans
    // A method llhttp does not know: 501 when it is a well-formed token
    // followed by SP, else 400. Counts its bytes, across reads.
    uint32_t method_seen_ = 0;  // method bytes of the current message in earlier reads
    int32_t method_tchars_ = -1;  // >= 0: reading an unknown method to its end
    Request *head_ = nullptr;
    Request *tail_ = nullptr;
    uint32_t fifo_len_ = 0;
    uint32_t writing_ = 0;  // requests at the FIFO head being written
    bool writing_stream_ = false;
    bool writing_file_ = false;  // the write ends with a file answer's head, or is a chunk of it
    uint64_t head_start_ = 0;
    int pending_status_ = 0;
    const char *pending_msg_ = nullptr;
    bool close_after_ = false;  // close once the FIFO is written
    bool body_paused_ = false;   // reads stopped: a streamed body's window is full
    bool linger_ = false;        // close after the answer by lingering (a body still comes)
    bool lingering_ = false;     // write side shut: reading and dropping until EOF or 2 s
    uint64_t pause_start_ = 0;
    uint64_t linger_start_ = 0;
    // A streamed answer drained (stream_written): its on_drain, due at the end of flush.
    const ql_handler *drain_h_ = nullptr;
    ql_req_id drain_id_ = 0;
    void *drain_tag_ = nullptr;
    bool headers_done_ = false;
    // WebSocket upgrade: bytes read behind the upgrade request (they are the
    // WebSocket's), and the switch once its 101 has gone out.
    std::string upgrade_rest_;
    bool switched_ = false;
    void upgrade(Request *r);
};

}  // namespace ql
