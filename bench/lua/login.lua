-- POST /api/auth/token/ with the right password, cycling through the seeded users
-- seed-user-1 .. seed-user-BENCH_USERS, all sharing the password BENCH_PASSWORD.
-- Every status other than 200 counts as failed, 429 (throttled) among them.

local summary = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "summary.lua")

local users = tonumber(os.getenv("BENCH_USERS") or "1")
local password = os.getenv("BENCH_PASSWORD") or ""
local threads = {}
local next_index = 0

function setup(thread)
   thread:set("thread_index", next_index)
   next_index = next_index + 1
   table.insert(threads, thread)
end

function init(args)
   sent = 0
   failed = 0
   throttled = 0
end

function request()
   -- Threads start at different users, so they do not all sign in the same one.
   local user = (thread_index * 7919 + sent) % users + 1
   sent = sent + 1
   local body = '{"username":"seed-user-' .. user .. '","password":"' .. password .. '"}'
   return wrk.format("POST", "/api/auth/token/", {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
   if status ~= 200 then
      failed = failed + 1
      if status == 429 then
         throttled = throttled + 1
      end
   end
end

function done(result, latency, requests)
   summary.print(result, latency, summary.sum(threads, "failed"))
   io.write(string.format("BENCH_LOGIN throttled=%d\n", summary.sum(threads, "throttled")))
end
