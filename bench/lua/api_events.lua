-- wrk script for the API benchmark: POST /api/v1/events/, one custom event of one member a request.
--
-- Arguments (after --): <key> <run id> <members file> <event name>
--   key: the machine client's whole key (plk_...), sent as "Authorization: Bearer <key>";
--   members file: one member id a line; each thread starts at its own place in it and takes the next member
--   request by request, so concurrent requests are mostly different people;
--   each request's external id (and Idempotency-Key) is "<run id>-<thread>-<n>", used once.
-- A success is a 201; done() prints the summary line (bench/lua/summary.lua's format) with the success and
-- failure counts ("failures": status -> count) and the first failure's answer.

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
   local key, members_path = args[1], args[3]
   run, name = args[2], args[4]
   if not (key and run and members_path and name) then
      error("api_events.lua needs: <key> <run id> <members file> <event name>")
   end
   members = {}
   for line in io.lines(members_path) do
      local id = line:match("^(%d+)$")
      if id then
         members[#members + 1] = id
      end
   end
   if #members == 0 then
      error("no member ids in " .. members_path)
   end
   headers = {
      ["Host"] = wrk.headers["Host"],
      ["Authorization"] = "Bearer " .. key,
      ["Content-Type"] = "application/json",
   }
   issued, answered, ok, failed = 0, 0, 0, 0
   failures, failure_sample = {}, ""
   offset = tid * 7919 -- threads start at different members
end

-- The request body: a custom event (see loyalty/api/events.py), with a new external id.
function event_body(external_id, member)
   return '{"external_id":"' .. external_id .. '","type":"custom","member":' .. member
      .. ',"name":"' .. name .. '","facts":{"quantity":1}}'
end

function request()
   issued = issued + 1
   local external_id = run .. "-" .. tid .. "-" .. issued
   local member = members[(offset + issued - 1) % #members + 1]
   headers["Idempotency-Key"] = external_id
   return wrk.format("POST", wrk.path, headers, event_body(external_id, member))
end

function response(status, headers, body)
   answered = answered + 1
   if status == 201 then
      ok = ok + 1
   else
      failed = failed + 1
      local key = tostring(status)
      failures[key] = (failures[key] or 0) + 1
      if failure_sample == "" then
         failure_sample = status .. " " .. (body or ""):sub(1, 300)
      end
   end
end

function done(summary, latency, requests)
   local total = {issued = 0, answered = 0, ok = 0, failed = 0}
   local by_status, sample = {}, ""
   for _, thread in ipairs(threads) do
      for field, _ in pairs(total) do
         total[field] = total[field] + thread:get(field)
      end
      for status, count in pairs(thread:get("failures")) do
         by_status[status] = (by_status[status] or 0) + count
      end
      if sample == "" then
         sample = thread:get("failure_sample")
      end
   end
   local statuses = {}
   for status, count in pairs(by_status) do
      statuses[#statuses + 1] = {status, count}
   end
   write_summary(summary, latency, {
      {"issued", total.issued},
      {"answered", total.answered},
      {"ok", total.ok},
      {"wanted", 201},
      {"failed", total.failed},
      {"failures", raw = json_object(statuses)},
      {"failure_sample", sample},
   })
end
