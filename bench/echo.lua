-- wrk script of bench/run's POST /echo scenario: every request posts the same
-- 1 KB JSON document (bench/echo-1k.json, or $ECHO_BODY) with its content type.
local f = assert(io.open(os.getenv("ECHO_BODY") or "bench/echo-1k.json", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
