-- redis_auth.lua: authenticate each client with one GET user:<username> on
-- the Redis server at $REDIS_URL, with exhook.redis (a connection pool per
-- worker; the call waits without holding its worker). A value lets the
-- client in, no value refuses it; a Redis error fails the call.

local auth = require "auth_common"

local red = exhook.redis.connect(auth.env("REDIS_URL"))

local M = {}

function M.on_client_authenticate(clientinfo)
  local v, err = red:call("GET", "user:" .. clientinfo.username)
  if v == nil and err ~= nil then
    error("redis GET: " .. tostring(err), 0)
  end
  return v ~= nil
end

return M
