-- wrk script for `SOAK_MODE=fastpath make soak`: the fastpath contract's
-- native rules under load (examples/c/fastpath.c): valid and invalid POST
-- /items, typed GET /items/{id} (good and bad ids), cache hits and misses over
-- a rolling set of keys, the rate limiter (mostly 429s), API keys (200, 401,
-- 403), CORS preflights, static files with gzip, ranges and conditional GETs,
-- an 8 MiB file sent with sendfile, /metrics, and ~1% of requests closing the
-- connection. Formatted in init(), where wrk.format has the Host header.
local reqs = {}
local json = {["Content-Type"] = "application/json"}
init = function(args)
  reqs = {
    wrk.format("POST", "/items", json, '{"name":"pen","price":1.5,"tags":["office"]}'),
    wrk.format("POST", "/items", json, '{"name":"","price":-1,"tags":["a",1],"extra":true}'),
    wrk.format("POST", "/items", json, '{"name":'),
    wrk.format("POST", "/items", {["Content-Type"] = "text/plain"}, '{"name":"pen","price":1}'),
    wrk.format("GET", "/items/7"),
    wrk.format("GET", "/items/0"),
    wrk.format("GET", "/limited"),
    wrk.format("GET", "/private", {["X-API-Key"] = "secret-key"}),
    wrk.format("GET", "/private"),
    wrk.format("GET", "/private", {["X-API-Key"] = "wrong"}),
    wrk.format("OPTIONS", "/items", {["Origin"] = "https://app.example", ["Access-Control-Request-Method"] = "POST"}),
    wrk.format("GET", "/static/big.txt", {["Accept-Encoding"] = "gzip"}),
    wrk.format("GET", "/static/big.txt", {["Range"] = "bytes=100-199"}),
    wrk.format("GET", "/static/big.txt", {["If-None-Match"] = "*"}),
    wrk.format("GET", "/static/../secret"),
    wrk.format("GET", "/ping"),
    wrk.format("GET", "/healthz"),
  }
end
local n = 0
request = function()
  n = n + 1
  if n % 100 == 0 then return wrk.format("GET", "/ping", {["Connection"] = "close"}) end
  if n % 997 == 0 then return wrk.format("GET", "/metrics") end
  if n % 499 == 0 then return wrk.format("GET", "/static/large.bin") end             -- 8 MiB, sendfile
  if n % 101 == 0 then return wrk.format("GET", "/static/large.bin", {["Range"] = "bytes=4000000-4099999"}) end
  if n % 5 == 0 then return wrk.format("GET", "/cached/k" .. (n % 500)) end          -- misses roll over 2 s
  return reqs[(n % #reqs) + 1]
end
