-- http_auth.lua: authenticate each client with one GET to an HTTP auth
-- service, $AUTH_URL followed by the username, with exhook.http: the call
-- waits for the answer without holding its worker, and connections are
-- kept alive and reused. Decisions: auth_common.decide (a verdict returned
-- as a plain true or false: STOP_AND_RETURN).

local auth = require "auth_common"

local url = auth.env("AUTH_URL")

local M = {}

function M.on_client_authenticate(clientinfo)
  local u = url .. auth.escape(clientinfo.username)
  local res, err = exhook.http.get(u)
  if not res then
    error("GET " .. u .. ": " .. tostring(err), 0)
  end
  return auth.decide(res.status, res.body, u)
end

return M
