#include "ws/ws_codec.hpp"

#include <algorithm>
#include <cstring>

namespace ql {

// ---- close codes ---------------------------------------------------

bool valid_close_code(uint32_t code) {
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

// ---- writing -----------------------------------------------------------

size_t ws_frame_head(char out[10], uint8_t opcode, uint64_t len, bool rsv1) {
    out[0] = static_cast<char>(0x80 | (rsv1 ? 0x40 : 0) | (opcode & 0x0F));
    if (len < 126) {
        out[1] = static_cast<char>(len);
        return 2;
    }
    if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = static_cast<char>(len >> 8);
        out[3] = static_cast<char>(len);
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<char>(len >> (56 - 8 * i));
    return 10;
}

std::string_view ws_frame_payload(std::string_view frame) {
    uint8_t len7 = static_cast<uint8_t>(frame[1]) & 0x7F;
    return frame.substr(len7 < 126 ? 2 : len7 == 126 ? 4 : 10);
}

void ws_frame(std::string &out, uint8_t opcode, std::string_view payload, bool rsv1) {
    char h[10];
    size_t n = ws_frame_head(h, opcode, payload.size(), rsv1);
    out.reserve(out.size() + n + payload.size());
    out.append(h, n).append(payload);
}

std::string ws_close_payload(uint16_t code, std::string_view reason) {
    if (reason.size() > 123) {
        size_t cut = 123;
        // Back to a character boundary: never end inside a UTF-8 sequence.
        while (cut > 0 && (static_cast<unsigned char>(reason[cut]) & 0xC0) == 0x80) --cut;
        reason = reason.substr(0, cut);
    }
    std::string p;
    p.push_back(static_cast<char>(code >> 8));
    p.push_back(static_cast<char>(code & 0xFF));
    p.append(reason);
    return p;
}

// ---- reading -----------------------------------------------------------

size_t FrameReader::fail(uint16_t code, const char *why, Event &ev) {
    error_code_ = code;
    error_reason_ = why;
    ev = Event::Error;
    return 0;
}

// The head is complete: check it (false: failed, ev set).
bool FrameReader::frame_head_done(Event &ev) {
    uint8_t b0 = head_[0], b1 = head_[1];
    fin_ = b0 & 0x80;
    opcode_ = b0 & 0x0F;
    bool rsv1 = b0 & 0x40;
    if (b0 & 0x30) return fail(1002, "reserved bits set", ev), false;
    if (!(b1 & 0x80)) return fail(1002, "client frame not masked", ev), false;
    uint64_t len = b1 & 0x7F;
    size_t at = 2;
    if (len == 126) {
        len = (uint64_t(head_[2]) << 8) | head_[3];
        at = 4;
    } else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; ++i) len = (len << 8) | head_[2 + i];
        if (len >> 63) return fail(1002, "frame length has its top bit set", ev), false;
        at = 10;
    }
    std::memcpy(mask_, head_ + at, 4);
    mask_pos_ = 0;
    left_ = len;
    if (opcode_ >= 8) {
        if (opcode_ > kWsPong) return fail(1002, "reserved opcode", ev), false;
        if (!fin_) return fail(1002, "fragmented control frame", ev), false;
        if (len > 125) return fail(1002, "control frame longer than 125 bytes", ev), false;
        if (rsv1) return fail(1002, "reserved bits set", ev), false;
        ctl_.clear();
    } else {
        if (opcode_ > kWsBinary) return fail(1002, "reserved opcode", ev), false;
        if (opcode_ == kWsCont) {
            if (!in_message_) return fail(1002, "continuation frame without a message", ev), false;
            if (rsv1) return fail(1002, "reserved bits set", ev), false;
        } else {
            if (in_message_) return fail(1002, "new message inside a fragmented one", ev), false;
            if (rsv1 && !allow_rsv1_) return fail(1002, "reserved bits set", ev), false;
            in_message_ = true;
            msg_op_ = opcode_;
            msg_rsv1_ = rsv1;
            msg_.clear();
            utf8_.reset();
        }
        if (len > max_message_ || msg_.size() > max_message_ - len)
            return fail(1009, "message too big", ev), false;
    }
    in_payload_ = true;
    return true;
}

// A control frame's payload is complete: its event.
void FrameReader::control_done(Event &ev) {
    if (opcode_ == kWsPing) {
        ev = Event::Ping;
    } else if (opcode_ == kWsPong) {
        ev = Event::Pong;
    } else {
        if (ctl_.size() == 1) return (void)fail(1002, "close frame with a 1-byte payload", ev);
        close_code_ = 1005;
        close_reason_ = {};
        if (ctl_.size() >= 2) {
            close_code_ = static_cast<uint16_t>((uint8_t(ctl_[0]) << 8) | uint8_t(ctl_[1]));
            if (!valid_close_code(close_code_)) return (void)fail(1002, "invalid close code", ev);
            close_reason_ = std::string_view(ctl_).substr(2);
            if (!valid_utf8(close_reason_)) return (void)fail(1007, "close reason is not UTF-8", ev);
        }
        ev = Event::Close;
    }
}

namespace {
// XORs n bytes with the client's mask, starting at phase `pos`: eight bytes
// at a time (the compiler vectorizes the loop), the tail byte by byte.
void unmask(char *dst, size_t n, const uint8_t mask[4], uint8_t pos) {
    const uint8_t m[4] = {mask[pos & 3], mask[(pos + 1) & 3], mask[(pos + 2) & 3], mask[(pos + 3) & 3]};
    uint32_t m32;
    std::memcpy(&m32, m, 4);
    const uint64_t m64 = (uint64_t(m32) << 32) | m32;  // the same four bytes twice, in memory order
    size_t k = 0;
    for (; k + 8 <= n; k += 8) {
        uint64_t v;
        std::memcpy(&v, dst + k, 8);
        v ^= m64;
        std::memcpy(dst + k, &v, 8);
    }
    for (; k < n; ++k) dst[k] = static_cast<char>(dst[k] ^ m[k & 3]);
}
}  // namespace

size_t FrameReader::feed(const char *data, size_t len, Event &ev) {
    ev = Event::None;
    if (error_code_) return fail(error_code_, error_reason_, ev);
    const auto *p = reinterpret_cast<const unsigned char *>(data);
    size_t i = 0;
    while (i < len) {
        if (!in_payload_) {
            head_[head_len_++] = p[i++];
            if (head_len_ == 2) {
                uint8_t l = head_[1] & 0x7F;
                head_need_ = static_cast<uint8_t>(2 + (l == 126 ? 2 : l == 127 ? 8 : 0) + ((head_[1] & 0x80) ? 4 : 0));
            }
            if (head_len_ < head_need_) continue;
            head_len_ = 0;
            head_need_ = 2;
            if (!frame_head_done(ev)) return i;
            if (left_ != 0) continue;
        } else {
            size_t take = static_cast<size_t>(std::min<uint64_t>(left_, len - i));
            // Copied as it came (a memcpy, no zero-fill), then unmasked in place.
            std::string &to = opcode_ >= 8 ? ctl_ : msg_;
            size_t old = to.size();
            to.append(reinterpret_cast<const char *>(p + i), take);
            char *dst = to.data() + old;
            unmask(dst, take, mask_, mask_pos_);
            mask_pos_ = static_cast<uint8_t>((mask_pos_ + take) & 3);
            i += take;
            left_ -= take;
            if (opcode_ < 8 && msg_op_ == kWsText && !msg_rsv1_ &&
                !utf8_.feed(reinterpret_cast<const unsigned char *>(dst), take))
                return fail(1007, "invalid UTF-8 in a text message", ev), i;
            if (left_ != 0) continue;
        }
        // A frame ended.
        in_payload_ = false;
        if (opcode_ >= 8) {
            control_done(ev);
            return i;
        }
        if (fin_) {
            in_message_ = false;
            if (msg_op_ == kWsText && !msg_rsv1_ && !utf8_.complete())
                return fail(1007, "invalid UTF-8 in a text message", ev), i;
            ev = Event::Message;
            return i;
        }
    }
    return i;
}

}  // namespace ql
