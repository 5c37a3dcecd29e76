-- Chained refresh rotations: POST /api/auth/token/refresh/ with {"refresh": TOKEN},
-- then the next request presents the successor that came back.
--
-- Run with `wrk -t N -c N`, so each thread owns one connection and the chain is never
-- raced. BENCH_REFRESH_TOKENS names a generated Lua file that returns a list of at
-- least N refresh tokens, one per thread, each from its own login.
--
-- Every status other than 200, and a 200 without a refresh token, counts as failed.
-- After a failure the thread keeps presenting its last token, so the failures of a
-- broken chain go on counting instead of hiding.

local summary = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "summary.lua")

local tokens_file = os.getenv("BENCH_REFRESH_TOKENS")
local tokens = nil
local threads = {}
local next_index = 1

function setup(thread)
   tokens = tokens or dofile(tokens_file)
   local token = tokens[next_index]
   if token == nil then
      error("BENCH_REFRESH_TOKENS has " .. #tokens .. " tokens; wrk started more threads than that")
   end
   thread:set("refresh", token)
   next_index = next_index + 1
   table.insert(threads, thread)
end

function init(args)
   rotations = 0
   failed = 0
   statuses = ""
end

function request()
   local body = '{"refresh":"' .. refresh .. '"}'
   return wrk.format("POST", "/api/auth/token/refresh/", {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
   local successor = nil
   if status == 200 then
      successor = body:match('"refresh"%s*:%s*"([^"]+)"')
   end
   if successor then
      refresh = successor
      rotations = rotations + 1
      return
   end
   failed = failed + 1
   -- Keep the first failure of each thread, for the report.
   if statuses == "" then
      statuses = status .. " " .. body:sub(1, 120)
   end
end

function done(result, latency, requests)
   summary.print(result, latency, summary.sum(threads, "failed"))
   for index, thread in ipairs(threads) do
      local first = thread:get("statuses")
      if first ~= nil and first ~= "" then
         io.write(string.format("BENCH_FIRST_FAILURE thread=%d %s\n", index, first))
      end
   end
end
