-- wrk script for the checkout benchmark: one-tap redemption, POST /rewards/<id>/redeem/.
--
-- Arguments (after --): <credentials file> <run id> <order ids file> <threads>
--   credentials file: one signed-in member a line, "<Cookie header value><TAB><csrfmiddlewaretoken>";
--   thread t of n takes lines t, t+n, t+2n, ... and rotates through them request by request, so its
--   connections act as different members;
--   each request posts quantity=1 and a checkout key "<run id>-<thread>-<n>" used once;
--   a success is a 302 to /rewards/orders/<id>/: the ids go to the order ids file, one a line.
-- done() prints the summary line (bench/lua/summary.lua's format) with the success and failure counts.

local threads = {}
local setup_count = 0

function setup(thread)
   thread:set("tid", setup_count)
   setup_count = setup_count + 1
   threads[#threads + 1] = thread
end

function init(args)
   local credentials_path, thread_count = args[1], tonumber(args[4])
   run, ids_path = args[2], args[3]
   credentials = {}
   local line_number = 0
   for line in io.lines(credentials_path) do
      local cookie, token = line:match("^([^\t]+)\t([^\t]+)$")
      if cookie then
         if line_number % thread_count == tid then
            credentials[#credentials + 1] = {cookie = cookie, token = token}
         end
         line_number = line_number + 1
      end
   end
   if #credentials == 0 then
      error("no credentials for thread " .. tid .. " in " .. credentials_path)
   end
   issued, answered, ok = 0, 0, 0
   order_ids, failures, failure_sample = {}, {}, ""
   host = wrk.headers["Host"]
end

function request()
   issued = issued + 1
   local who = credentials[(issued - 1) % #credentials + 1]
   local body = "quantity=1&checkout_key=" .. run .. "-" .. tid .. "-" .. issued
      .. "&csrfmiddlewaretoken=" .. who.token
   local headers = {
      ["Host"] = host,
      ["Cookie"] = who.cookie,
      ["Content-Type"] = "application/x-www-form-urlencoded",
   }
   return wrk.format("POST", wrk.path, headers, body)
end

function response(status, headers, body)
   answered = answered + 1
   local location = headers["Location"] or headers["location"] or ""
   local order_id = status == 302 and location:match("^/rewards/orders/(%d+)/$")
   if order_id then
      ok = ok + 1
      order_ids[#order_ids + 1] = order_id
   else
      local key = tostring(status)
      failures[key] = (failures[key] or 0) + 1
      if failure_sample == "" then
         failure_sample = status .. " " .. location .. " " .. (body or ""):sub(1, 300)
      end
   end
end

-- the summary helpers of summary.lua, repeated: wrk runs one script
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
   local total = {issued = 0, answered = 0, ok = 0}
   local failed, sample, path = {}, "", nil
   local ids_file = nil
   for _, thread in ipairs(threads) do
      for name, _ in pairs(total) do
         total[name] = total[name] + thread:get(name)
      end
      for status, count in pairs(thread:get("failures")) do
         failed[#failed + 1] = {status, count}
      end
      if sample == "" then
         sample = thread:get("failure_sample")
      end
      ids_file = ids_file or io.open(thread:get("ids_path"), "w")
      for _, order_id in ipairs(thread:get("order_ids")) do
         ids_file:write(order_id, "\n")
      end
   end
   if ids_file then
      ids_file:close()
   end
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
      {"issued", total.issued},
      {"answered", total.answered},
      {"ok", total.ok},
      {"failures", raw = json_object(failed)},
      {"failure_sample", sample},
   }) .. "\n")
end
