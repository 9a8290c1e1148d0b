-- wrk script: a mix of the example contract's routes, with ~1% of requests
-- asking to close the connection (so connections churn during the soak).
-- Formatted in init(): wrk.format adds the Host header only once wrk.headers is set up.
local reqs = {}
local body = '{"name":"soak","tags":["a","b","c"],"data":"' .. string.rep("x", 900) .. '"}'
init = function(args)
reqs[1] = wrk.format("GET", "/ping")
reqs[2] = wrk.format("GET", "/hello/soak")
reqs[3] = wrk.format("POST", "/echo", {["Content-Type"] = "application/json"}, body)
reqs[4] = wrk.format("GET", "/missing/route")
reqs[5] = wrk.format("POST", "/echo", {["Content-Type"] = "application/json"}, "{not json")
reqs[6] = wrk.format("GET", "/hello/soak", {["Connection"] = "close"})
end
local n = 0
request = function()
  n = n + 1
  if n % 100 == 0 then return reqs[6] end
  if n % 7 == 0 then return reqs[4] end
  if n % 11 == 0 then return reqs[5] end
  return reqs[(n % 3) + 1]  -- ping, hello, 1 KB echo (the 404 and 400 are every 7th and 11th)
end
