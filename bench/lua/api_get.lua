-- wrk script for the API benchmark: GET one address of the API with a machine client's key.
--
-- Arguments (after --): <key>   the whole key (plk_...), sent as "Authorization: Bearer <key>"
-- done() prints the summary line (bench/lua/summary.lua's format).

-- json_object, write_summary and done, from summary.lua next to this file (wrk runs one script, so this one loads it).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "summary.lua")

function init(args)
   if not args[1] or args[1] == "" then
      error("api_get.lua needs the key as its argument")
   end
   wrk.headers["Authorization"] = "Bearer " .. args[1]
end
