-- blocking_auth.lua: http_auth.lua's decisions, with the HTTP client a user
-- would reach for without exhook.http: Debian's lua-socket (socket.http).
-- Every call blocks its worker until the answer is there, and opens a new
-- connection (socket.http does not keep them).

local auth = require "auth_common"
local http = require "socket.http"

http.TIMEOUT = 5 -- seconds; its default is 60
local url = auth.env("AUTH_URL")

local M = {}

function M.on_client_authenticate(clientinfo)
  local u = url .. auth.escape(clientinfo.username)
  local body, status = http.request(u)
  if not body then
    error("GET " .. u .. ": " .. tostring(status), 0)
  end
  return auth.decide(status, body, u)
end

return M
