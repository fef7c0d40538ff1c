-- shared_incr.lua: the cost of exhook.shared's incr, whatever the backend
-- of the dictionary `bench` ([shared] bench = 1m, or = redis://...): each
-- authenticate call does $INCR_PER_CALL incr (10 by default), all on one
-- hot key (SHARED_KEYS=hot, the default) or each on a key of its own
-- (SHARED_KEYS=distinct: the client id and the step), and lets the client
-- in; a failed incr fails the call.

local dict = exhook.shared.bench
local per_call = math.tointeger(tonumber(os.getenv("INCR_PER_CALL") or "10"))
local distinct = os.getenv("SHARED_KEYS") == "distinct"
if not per_call or per_call < 1 then
  error("INCR_PER_CALL must be a whole number, 1 or more", 0)
end

local M = {}

function M.on_client_authenticate(clientinfo)
  for i = 1, per_call do
    local key = distinct and (clientinfo.clientid .. ":" .. i) or "hot"
    local n, err = dict:incr(key, 1, 0)
    if not n then
      error("incr " .. key .. ": " .. err, 0)
    end
  end
  return true
end

return M
