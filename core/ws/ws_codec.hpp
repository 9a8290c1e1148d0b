// WebSocket framing (RFC 6455 section 5), written for the server side: it
// reads client frames (masked) and writes server frames (unmasked). No
// sockets here: FrameReader takes bytes as they come and gives whole
// messages and control frames, or the close code a fault calls for.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "utf8.hpp"

namespace ql {

// A close code a peer may send (RFC 6455 7.4, the IANA registry): 1000–1003,
// 1007–1014, 3000–4999.
bool valid_close_code(uint32_t code);

enum WsOpcode : uint8_t { kWsCont = 0, kWsText = 1, kWsBinary = 2, kWsClose = 8, kWsPing = 9, kWsPong = 10 };

// The head of a server frame (FIN set, no mask) before `len` payload bytes:
// writes 2, 4 or 10 bytes into out and returns how many. rsv1: a
// compressed message (permessage-deflate).
size_t ws_frame_head(char out[10], uint8_t opcode, uint64_t len, bool rsv1 = false);
// The payload of a whole server frame (as ws_frame made it).
std::string_view ws_frame_payload(std::string_view frame);
// A whole frame in one string.
void ws_frame(std::string &out, uint8_t opcode, std::string_view payload, bool rsv1 = false);
// A close frame's payload: the code, then the reason (cut to fit 123 bytes
// on a UTF-8 boundary).
std::string ws_close_payload(uint16_t code, std::string_view reason);

class FrameReader {
public:
    enum class Event {
        None,     // all bytes taken, nothing complete
        Message,  // message(), binary(): a whole data message
        Ping,     // control(): its payload
        Pong,
        Close,    // close_code() (1005: none given), close_reason()
        Error,    // error_code() (1002, 1007, 1009), error_reason(); stop reading
    };
    explicit FrameReader(uint64_t max_message) : max_message_(max_message) {}
    // Takes bytes up to the end of the next event and returns how many; call
    // again with the rest. After Error the reader takes nothing more.
    size_t feed(const char *data, size_t len, Event &ev);
    // rsv1 allowed on a message's first frame (permessage-deflate): the
    // message then comes compressed, compressed() tells, and its text is
    // checked by the caller after inflating (not here).
    void allow_rsv1(bool on) { allow_rsv1_ = on; }

    std::string &message() { return msg_; }  // the host may take it (swap)
    bool binary() const { return msg_op_ == kWsBinary; }
    bool compressed() const { return msg_rsv1_; }
    std::string_view control() const { return ctl_; }
    uint16_t close_code() const { return close_code_; }
    std::string_view close_reason() const { return close_reason_; }
    uint16_t error_code() const { return error_code_; }
    const char *error_reason() const { return error_reason_; }
    bool failed() const { return error_code_ != 0; }

private:
    size_t fail(uint16_t code, const char *why, Event &ev);
    bool frame_head_done(Event &ev);
    void control_done(Event &ev);

    uint64_t max_message_;
    bool allow_rsv1_ = false;
    // the frame being read
    uint8_t head_[14];
    uint8_t head_len_ = 0;
    uint8_t head_need_ = 2;
    bool in_payload_ = false;
    uint8_t opcode_ = 0;
    bool fin_ = false;
    uint64_t left_ = 0;  // payload bytes still to come
    uint8_t mask_[4] = {0};
    uint8_t mask_pos_ = 0;
    // the message being assembled (data frames)
    bool in_message_ = false;
    uint8_t msg_op_ = 0;
    bool msg_rsv1_ = false;
    std::string msg_;
    Utf8Check utf8_;
    // a control frame (at most 125 bytes, may come between fragments)
    std::string ctl_;  // short ones in place; no 125-byte array in every reader
    uint16_t close_code_ = 0;
    std::string_view close_reason_;
    uint16_t error_code_ = 0;
    const char *error_reason_ = "";
};

}  // namespace ql
