#include "ws/ws_hub.hpp"

#include <cstdlib>
#include <random>

#include "server.hpp"
#include "worker.hpp"

namespace ql {

WsHub::WsHub(Worker &w) : w_(w) {
    slots_ = static_cast<WsSlot **>(std::calloc(kMaxSlots, sizeof(WsSlot *)));
    std::random_device rd;
    gen_seed_ = rd();
}

WsHub::~WsHub() {
    uint32_t n = count_.load();
    for (uint32_t i = 0; i < n; ++i) delete slots_[i];
    std::free(slots_);
}

WsSlot *WsHub::acquire() {
    WsSlot *s = free_;
    if (s) {
        free_ = s->next_free;
    } else {
        uint32_t n = count_.load(std::memory_order_relaxed);
        if (n >= kMaxSlots) return nullptr;
        s = new WsSlot();
        s->index = n;
        // As for requests: ids from elsewhere are unlikely to name a live socket.
        s->gen.store(gen_seed_ + n * 2654435761u, std::memory_order_relaxed);
        std::atomic_ref<WsSlot *>(slots_[n]).store(s, std::memory_order_release);
        count_.store(n + 1, std::memory_order_release);
    }
    s->next_free = nullptr;
    s->buffered.store(0, std::memory_order_relaxed);
    return s;
}

void WsHub::retire(WsSlot *s) { s->gen.fetch_add(1, std::memory_order_acq_rel); }

void WsHub::release(WsSlot *s) {
    // Past closing too: an id is open (gen), closing (gen + 1) or gone.
    s->gen.fetch_add(1, std::memory_order_acq_rel);
    s->conn = nullptr;
    s->next_free = free_;
    free_ = s;
}

WsSlot *WsHub::lookup(uint32_t slot) const {
    if (slot >= count_.load(std::memory_order_acquire)) return nullptr;
    return std::atomic_ref<WsSlot *>(slots_[slot]).load(std::memory_order_acquire);
}

void WsHub::on_op(WsOp &op) {
    if (op.kind == WsOp::Publish) {
        publish(op.text, op.frame, op.exclude);
        return;
    }
    WsSlot *s = lookup(op.slot);
    if (op.kind == WsOp::Cut) {  // open or closing: the socket whose id it was, if still here
        if (s && s->conn && static_cast<uint32_t>(s->conn->id()) == op.gen) s->conn->cut();
        return;
    }
    if (!s || s->gen.load(std::memory_order_acquire) != op.gen || !s->conn) return;  // closed since
    WsConn *c = s->conn;
    switch (op.kind) {
    case WsOp::Send: c->send_frame(op.frame, true, op.code != 0); break;
    case WsOp::ArmDrain: c->arm_drain(); break;
    case WsOp::Resume: c->resume_reading(); break;
    case WsOp::Close: c->close(op.code, op.text); break;
    case WsOp::Subscribe: subscribe(c, op.text); break;
    case WsOp::Unsubscribe: unsubscribe(c, op.text); break;
    default: break;
    }
}

bool WsHub::subscribe(WsConn *c, std::string_view topic) {
    auto &mine = c->topics();
    for (const std::string &t : mine)
        if (t == topic) return false;
    mine.emplace_back(topic);
    topics_[mine.back()].push_back(c);
    w_.server.pubsub.add(topic, c->id(), w_.index, w_.server.worker_count());
    return true;
}

bool WsHub::unsubscribe(WsConn *c, std::string_view topic) {
    if (!c->has_topics()) return false;
    auto &mine = c->topics();
    size_t i = 0;
    while (i < mine.size() && mine[i] != topic) ++i;
    if (i == mine.size()) return false;
    auto it = topics_.find(mine[i]);
    if (it != topics_.end()) {
        auto &v = it->second;
        for (size_t k = 0; k < v.size(); ++k) {
            if (v[k] == c) {
                v[k] = v.back();
                v.pop_back();
                break;
            }
        }
        if (v.empty()) topics_.erase(it);
    }
    w_.server.pubsub.remove(topic, c->id(), w_.index);
    mine[i] = std::move(mine.back());
    mine.pop_back();
    return true;
}

void WsHub::leave_all(WsConn *c) {
    while (c->has_topics()) {
        std::string t = c->topics().back();
        unsubscribe(c, t);
    }
}

void WsHub::publish(std::string_view topic, const Frame &f, ql_ws_id exclude) {
    std::string key(topic);
    if (auto s = sse_topics_.find(key); s != sse_topics_.end() && ((*f)[0] & 0x0F) == kWsText) {
        // EventSource framing, once for every client of this loop.
        std::string ev = sse_event(ws_frame_payload(*f));
        uint64_t now = w_.now_ms();
        std::vector<SseSub *> subs = s->second;  // a write may end a stream
        for (SseSub *sub : subs)
            if (sub->buffered <= sub->max_backpressure) sub->write(ev, now);
    }
    auto it = topics_.find(key);
    if (it == topics_.end()) return;
    // A subscriber's callbacks (a close on backpressure) may change the list:
    // iterate over a copy.
    std::vector<WsConn *> members = it->second;
    Frame compressed;  // made once, for the first subscriber that takes it
    for (WsConn *c : members)
        if (c->id() != exclude) c->send_published(f, compressed);
}

void WsHub::undirty(WsConn *c) {
    for (auto *v : {&dirty_, &flushing_})
        for (WsConn *&d : *v)
            if (d == c) d = nullptr;
}

void WsHub::flush() {
    if (dirty_.empty()) return;
    flushing_.swap(dirty_);
    for (WsConn *c : flushing_)
        if (c) c->flush();  // may close a socket (undirty clears it here)
    flushing_.clear();
}

// ---- event streams ---------------------------------------------------------

void WsHub::add_event_stream(std::unique_ptr<SseSub> sub) {
    sub->hub = this;
    for (const std::string &t : sub->topics) {
        sse_topics_[t].push_back(sub.get());
        w_.server.pubsub.add(t, sub->id, w_.index, w_.server.worker_count(), true);
    }
    sse_.push_back(std::move(sub));
}

void WsHub::remove_event_stream(SseSub *sub) {
    for (const std::string &t : sub->topics) {
        auto it = sse_topics_.find(t);
        if (it != sse_topics_.end()) {
            auto &v = it->second;
            for (size_t k = 0; k < v.size(); ++k)
                if (v[k] == sub) {
                    v[k] = v.back();
                    v.pop_back();
                    break;
                }
            if (v.empty()) sse_topics_.erase(it);
        }
        w_.server.pubsub.remove(t, sub->id, w_.index, true);
    }
    for (size_t k = 0; k < sse_.size(); ++k)
        if (sse_[k].get() == sub) {
            sse_[k] = std::move(sse_.back());
            sse_.pop_back();
            break;
        }
}

void WsHub::tick(uint64_t now) {
    for (size_t k = 0; k < sse_.size(); ++k) {
        SseSub *s = sse_[k].get();
        if (now - s->last_write_ms >= s->keepalive_ms && s->buffered <= s->max_backpressure)
            s->write(": keep-alive\n\n", now);
    }
}

void WsHub::end_event_streams() {
    while (!sse_.empty()) {
        SseSub *s = sse_.back().get();
        ql_req_id id = s->id;
        Server &srv = *s->server;
        remove_event_stream(s);  // frees s
        std::string err;
        srv.respond_write(id, nullptr, 0, true, nullptr, &err);  // the last chunk; the stop closes it
    }
}

// ---- PubSub --------------------------------------------------------------

void PubSub::add(std::string_view topic, ql_ws_id id, uint32_t worker, uint32_t workers, bool sse) {
    std::lock_guard lk(mu_);
    Topic &t = topics_[std::string(topic)];
    if (t.per_loop.size() < workers) t.per_loop.resize(workers);
    if ((sse ? t.sse_members : t.members).insert(id).second) ++t.per_loop[worker];
}

void PubSub::remove(std::string_view topic, ql_ws_id id, uint32_t worker, bool sse) {
    std::lock_guard lk(mu_);
    auto it = topics_.find(std::string(topic));
    if (it == topics_.end()) return;
    if ((sse ? it->second.sse_members : it->second.members).erase(id)) --it->second.per_loop[worker];
    if (it->second.members.empty() && it->second.sse_members.empty()) topics_.erase(it);
}

size_t PubSub::targets(std::string_view topic, ql_ws_id exclude, std::vector<uint32_t> &loops) {
    loops.clear();
    std::lock_guard lk(mu_);
    auto it = topics_.find(std::string(topic));
    if (it == topics_.end()) return 0;
    const Topic &t = it->second;
    for (uint32_t i = 0; i < t.per_loop.size(); ++i)
        if (t.per_loop[i]) loops.push_back(i);
    return t.members.size() + t.sse_members.size() - (exclude && t.members.count(exclude) ? 1 : 0);
}

}  // namespace ql
