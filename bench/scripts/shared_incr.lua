-- shared_incr.lua: each authenticate call does $SHARED_INCR_N incr on the
-- shared dictionary `counters` ([shared] counters = 16MB), then lets the
-- client in. $SHARED_KEYS = hot: every incr of every worker on one key;
-- distinct: each worker on keys of its own (w<worker>:<i>), so only the
-- dictionary's lock is shared. The figure is calls/s times N.

local auth = require "auth_common"

local counters = assert(exhook.shared.counters, "declare [shared] counters = 16MB")
local N = assert(tonumber(auth.env("SHARED_INCR_N")), "SHARED_INCR_N: a number")
local HOT = auth.env("SHARED_KEYS") == "hot"

-- The keys are made once, so that both cases time the incr alone.
local keys = {}
for i = 1, N do
  keys[i] = HOT and "hot" or "w" .. exhook.worker_id .. ":" .. i
end

local M = {}

function M.on_client_authenticate(clientinfo)
  for i = 1, N do
    local n, err = counters:incr(keys[i], 1, 0)
    if not n then
      error("incr: " .. err, 0)
    end
  end
  return true
end

return M
