-- wrk script: plain requests, and a machine-readable summary line with the 50th, 95th and 99th latency
-- percentiles (wrk --latency prints no 95th). Read by bench.harness.parse_wrk_summary.
-- Other scripts load this file (wrk runs one script) for json_object and write_summary, and replace done().

local function json_value(value)
   if type(value) == "number" then
      return string.format("%.17g", value)
   end
   return '"' .. tostring(value):gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
end

function json_object(pairs_list)
   local parts = {}
   for _, pair in ipairs(pairs_list) do
      parts[#parts + 1] = json_value(pair[1]) .. ":" .. (pair.raw or json_value(pair[2]))
   end
   return "{" .. table.concat(parts, ",") .. "}"
end

-- The summary line: wrk's counts and latency percentiles, then the script's own figures (`extra`: pairs as
-- json_object takes them).
function write_summary(summary, latency, extra)
   local e = summary.errors
   local fields = {
      {"requests", summary.requests},
      {"duration_us", summary.duration},
      {"bytes", summary.bytes},
      {"errors", raw = json_object({{"connect", e.connect}, {"read", e.read}, {"write", e.write},
                                    {"timeout", e.timeout}, {"status", e.status}})},
      {"latency_us", raw = json_object({{"p50", latency:percentile(50)}, {"p95", latency:percentile(95)},
                                        {"p99", latency:percentile(99)}, {"max", latency.max},
                                        {"mean", latency.mean}})},
   }
   for _, pair in ipairs(extra or {}) do
      fields[#fields + 1] = pair
   end
   io.write("BENCH-WRK " .. json_object(fields) .. "\n")
end

function done(summary, latency, requests)
   write_summary(summary, latency)
end
