// Transport: one accepted TCP stream on a worker loop, and nothing of HTTP.
// It owns the socket, reads into the worker's read buffer, writes vectors
// (tried at once, the rest queued), counts bytes for /metrics, keeps the
// peer's address and the activity clock, and closes. What runs on it — a
// Protocol: HTTP/1.1 (http1/) today — gets the bytes read, the end of a
// queued write and the close.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string_view>

namespace ql {

class Worker;
class Transport;

class Protocol {
public:
    explicit Protocol(Transport &transport) : t(transport) {}
    virtual ~Protocol() = default;
    // The connection is open and counted: start reading (or writing).
    virtual void start() = 0;
    virtual void on_data(const char *data, size_t len) = 0;
    // A queued write (Transport::queue) ended; status < 0: it failed, and
    // the transport is closing.
    virtual void on_written(int status) = 0;
    // The socket is closed: give back what the protocol holds. The protocol
    // is deleted right after.
    virtual void on_closed() = 0;
    virtual void check_timeouts(uint64_t now) = 0;
    // Server stopping: finish what is in flight, then close.
    virtual void drain() = 0;

    Transport &t;
};

class Transport {
public:
    explicit Transport(Worker &w);
    // Accepts from a listener (or takes a socket accepted outside libuv,
    // at stop: the backlog), then starts the protocol. False: closed.
    bool accept(uv_stream_t *listener, Protocol *p);
    bool adopt(int fd, Protocol *p);

    Protocol *protocol() const { return proto_; }

    void read(bool want);  // start / stop reading
    bool reading() const { return reading_; }
    enum class Sent { All, Queued, Failed };
    // Writes bufs (one vectored write); what the socket does not take is
    // queued, the buffers must then live until on_written. Failed: closing.
    Sent send(uv_buf_t *bufs, unsigned n);
    // Queues bufs behind nothing (the socket is known to be full).
    bool queue(const uv_buf_t *bufs, unsigned n);
    bool writing() const { return writing_; }
    // Bytes that may go out of order with the write queue: only when it is
    // empty (an interim answer). Returns what the socket took, or < 0.
    int try_write(const char *data, size_t len);
    // What the socket takes of bufs now, nothing queued: bytes, or < 0 when
    // the connection failed (the caller closes).
    int try_writev(const uv_buf_t *bufs, unsigned n);
    // Runs p on this connection from now on (an upgrade): the old protocol
    // is deleted once the callback that switched has returned.
    void switch_to(Protocol *p);  // the current protocol is deleted in the loop's check phase
    void drop_retired();
    // Shuts the write side (the client sees the end of the stream); a
    // failure closes.
    bool shutdown();
    void count_out(uint64_t n);  // bytes sent outside send (sendfile)
    int fd() const;  // -1 when closed
    bool bytes_pending() const;  // unread bytes wait in the socket
    bool peer_left() const;      // reset or FIN seen by the kernel (not reading)
    void close();  // idempotent
    bool closing() const { return closing_; }

    void touch();  // activity now (the idle clock)
    uint64_t last_activity() const { return last_activity_; }
    std::string_view peer_ip() const { return {peer_ip_, peer_ip_len_}; }
    uint16_t peer_port() const { return peer_port_; }

    Worker &w;
    Transport *prev = nullptr;  // the worker's list of connections
    Transport *next = nullptr;

private:
    ~Transport() = default;  // on_close deletes
    bool accepted();
    static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
    static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
    static void on_write(uv_write_t *req, int status);
    static void on_close(uv_handle_t *h);

    uv_tcp_t tcp_;
    // Made on first need: most connections (an idle WebSocket, a short
    // exchange whose writes the socket takes at once) never queue a write.
    std::unique_ptr<uv_write_t> wreq_;
    std::unique_ptr<uv_shutdown_t> shutdown_req_;
    Protocol *proto_ = nullptr;
    Protocol *retired_ = nullptr;
    bool closing_ = false;
    bool reading_ = false;
    bool writing_ = false;
    bool counted_ = false;
    uint64_t last_activity_ = 0;
    uint16_t peer_port_ = 0;
    uint8_t peer_ip_len_ = 0;
    char peer_ip_[46] = {0};  // formatted once per connection, not per request
};

}  // namespace ql
