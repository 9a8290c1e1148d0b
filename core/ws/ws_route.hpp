// A WebSocket route's handler: it checks the upgrade (400/426 natively),
// then asks the host (on_upgrade) or accepts. The route keeps `route` too
// (Route::ws), for the connection that switches after the 101.
#pragma once

#include <memory>

#include "router.hpp"
#include "ws/ws_conn.hpp"

namespace ql {

std::shared_ptr<HandlerRef> ws_route_handler(const std::shared_ptr<const WsRoute> &route);

}  // namespace ql
