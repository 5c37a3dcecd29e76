-- A GET of BENCH_PATH (default /healthz), with `Authorization: Bearer` when
-- BENCH_ACCESS_TOKEN is set. The request never changes, so wrk builds it once.

local summary = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "summary.lua")

wrk.method = "GET"
wrk.path = os.getenv("BENCH_PATH") or "/healthz"
local token = os.getenv("BENCH_ACCESS_TOKEN")
if token and token ~= "" then
   wrk.headers["Authorization"] = "Bearer " .. token
end

function done(result, latency, requests)
   summary.print(result, latency, nil)
end
