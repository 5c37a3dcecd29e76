-- Shared by the other scripts in this folder, which load it by their own path (wrk
-- runs a script by path, so its `source` is "@path/to/script.lua"). It prints one
-- `BENCH key=value ...` line that bench/load.sh parses. wrk reports latencies in
-- microseconds, and the line gives them in milliseconds.
--
-- `failed` is the number of failed responses. Scripts that define response() count
-- every status other than 200 themselves. The plain GET scripts pass nil, and then
-- wrk's own count is used, which covers only statuses of 400 and above.

local summary = {}

function summary.print(result, latency, failed)
   local errors = result.errors
   local socket_errors = errors.connect + errors.read + errors.write + errors.timeout
   if failed == nil then
      failed = errors.status
   end
   local seconds = result.duration / 1e6
   io.write(string.format(
      "BENCH requests=%d succeeded=%d seconds=%.3f rate=%.1f p50_ms=%.3f p99_ms=%.3f"
         .. " failed=%d socket_errors=%d timeouts=%d\n",
      result.requests, result.requests - failed, seconds, (result.requests - failed) / seconds,
      latency:percentile(50) / 1000, latency:percentile(99) / 1000,
      failed, socket_errors, errors.timeout))
end

-- Sums the global `name` over every wrk thread.
function summary.sum(threads, name)
   local total = 0
   for _, thread in ipairs(threads) do
      total = total + (thread:get(name) or 0)
   end
   return total
end

return summary
