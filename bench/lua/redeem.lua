-- wrk script for the checkout benchmark: one-tap redemption, POST /rewards/<id>/redeem/.
--
-- Arguments (after --): <credentials file> <run id> <order ids file> <threads>
--   credentials file: one signed-in member a line, "<Cookie header value><TAB><csrfmiddlewaretoken>";
--   thread t of n takes lines t, t+n, t+2n, ... and rotates through them request by request, so its
--   connections act as different members;
--   each request posts quantity=1 and a checkout key "<run id>-<thread>-<n>" used once;
--   a success is a 302 to /rewards/orders/<id>/: the ids go to the order ids file, one a line.
-- done() prints the summary line (bench/lua/summary.lua's format) with the success and failure counts.

-- json_object and write_summary, from summary.lua next to this file (wrk runs one script, so this one loads it).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "summary.lua")

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
   write_summary(summary, latency, {
      {"issued", total.issued},
      {"answered", total.answered},
      {"ok", total.ok},
      {"failures", raw = json_object(failed)},
      {"failure_sample", sample},
   })
end
