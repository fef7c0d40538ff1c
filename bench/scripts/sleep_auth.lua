-- sleep_auth.lua: lets every client in after exhook.sleep($SUSPEND_SECONDS),
-- so that calls pile up suspended: bench/compare.sh's suspend scenario
-- measures the memory each suspended call holds.

local auth = require "auth_common"

local seconds = assert(tonumber(auth.env("SUSPEND_SECONDS")), "SUSPEND_SECONDS must be a number")

local M = {}

function M.on_client_authenticate()
  exhook.sleep(seconds)
  return true
end

return M
