-- shared_limits.lua: limits that hold across every worker (and, with a
-- Redis-backed dictionary, across every exhookd instance), counted in the
-- shared dictionary `limits`. Declare it in exhook.ini:
--
--   [shared]
--   limits = 10MB
--   [lua]
--   init_module = password_check, shared_limits
--
-- * at most MAX_CONNECTIONS connections per user name at once: the next
--   one is refused until one of them disconnects;
-- * at most RATE publishes per second per client: the rest of that second's
--   messages are dropped.
--
-- Put this module last in init_module: the modules before it refuse bad
-- credentials (false) and have no opinion (nil) on good ones, so this one
-- gives the final word. A slot is taken at authentication, in one atomic
-- incr, so that two clients of one user authenticating at the same moment
-- on two workers cannot both take the last slot; it is given back when the
-- client disconnects. A dictionary of 10MB holds about 160,000 counters.

local limits = assert(exhook.shared.limits, "declare [shared] limits = 10MB in exhook.ini")

local MAX_CONNECTIONS = 2
local RATE = 10

local M = {}

function M.on_client_authenticate(clientinfo, result, meta)
  local key = "conn:" .. clientinfo.username
  local n, err = limits:incr(key, 1, 0)
  if not n then
    exhook.log("warn", "connection count of", clientinfo.username, "failed:", err)
    return false
  end
  if n > MAX_CONNECTIONS then
    limits:incr(key, -1)   -- not taken after all
    return false
  end
  return true
end

function M.on_client_disconnected(clientinfo, reason, meta)
  limits:incr("conn:" .. clientinfo.username, -1)
end

-- One counter per client and second, gone two seconds later: every worker
-- counts in the same one, so exactly RATE messages of a second get through.
function M.on_message_publish(message, meta)
  local key = "rate:" .. message.from .. ":" .. os.time()
  local n, err = limits:incr(key, 1, 0, 2)
  if not n then
    exhook.log("warn", "publish rate of", message.from, "failed:", err)
    return nil
  end
  if n > RATE then
    return false
  end
end

return M
