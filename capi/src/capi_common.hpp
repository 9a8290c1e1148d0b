// What the C ABI's translation units share: the opaque types' definitions
// and the guard every call runs in (no exception crosses the door).
#pragma once

#include <memory>
#include <string>

#include "quicklane.h"
#include "queue.hpp"
#include "router.hpp"
#include "server.hpp"

struct ql_error {
    ql_status code;
    std::string message;
};

struct ql_app {
    std::unique_ptr<ql::Router> router = std::make_unique<ql::Router>();
};

struct ql_queue {
    std::shared_ptr<ql::Queue> q;
};

struct ql_server : ql::Server {
    ql_server(std::shared_ptr<const ql::Router> r, ql::Limits l) : ql::Server(std::move(r), std::move(l)) {}
    ql::Server &impl = *this;
};

namespace ql_capi {

inline ql_status fail(ql_error **out, ql_status code, std::string msg) {
    if (out) {
        try {
            *out = new ql_error{code, std::move(msg)};
        } catch (...) {
            *out = nullptr;
        }
    }
    return code;
}

// Runs one C ABI call: catches every exception, and turns a failure the
// core reported through `msg` into the caller's error object.
template <class F>
inline ql_status guarded(ql_error **out, F &&f) {
    if (out) *out = nullptr;
    try {
        std::string msg;
        ql_status st = f(msg);
        if (st < QL_OK && out && !*out) fail(out, st, std::move(msg));  // > 0: a result, not an error
        return st;
    } catch (const std::bad_alloc &) {
        return fail(out, QL_E_NOMEM, "out of memory");
    } catch (const std::exception &e) {
        return fail(out, QL_E_INTERNAL, std::string("internal error: ") + e.what());
    } catch (...) {
        return fail(out, QL_E_INTERNAL, "internal error");
    }
}

}  // namespace ql_capi
