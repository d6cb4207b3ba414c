-- wrk script: plain requests, and a machine-readable summary line with the 50th, 95th and 99th latency
-- percentiles (wrk --latency prints no 95th). Read by bench.harness.parse_wrk_summary.

local function json_value(value)
   if type(value) == "number" then
      return string.format("%.17g", value)
   end
   return '"' .. tostring(value):gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
end

local function json_object(pairs_list)
   local parts = {}
   for _, pair in ipairs(pairs_list) do
      parts[#parts + 1] = json_value(pair[1]) .. ":" .. (pair.raw or json_value(pair[2]))
   end
   return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write("BENCH-WRK " .. json_object({
      {"requests", summary.requests},
      {"duration_us", summary.duration},
      {"bytes", summary.bytes},
      {"errors", raw = json_object({{"connect", e.connect}, {"read", e.read}, {"write", e.write},
                                    {"timeout", e.timeout}, {"status", e.status}})},
      {"latency_us", raw = json_object({{"p50", latency:percentile(50)}, {"p95", latency:percentile(95)},
                                        {"p99", latency:percentile(99)}, {"max", latency.max},
                                        {"mean", latency.mean}})},
   }) .. "\n")
end
