-- table_users.lua: the user file of scripts/shared_users.lua read by
-- every worker into a Lua table of its own in init(): the layout the
-- shared dictionary replaces, kept to measure what it costs (RSS with
-- many workers). Same file, same check.

local auth = require "auth_common"

local FILE = auth.env("EXHOOKD_USERS_FILE")
local users = {}

local M = {}

function M.init()
  local f = assert(io.open(FILE))
  for line in f:lines() do
    local name, hash, salt = line:match("^([^,]+),(%x+),([^,]*)")
    if name and name ~= "user_id" then
      users[name] = {hash = hash, salt = salt}
    end
  end
  f:close()
end

function M.on_client_authenticate(clientinfo)
  local u = users[clientinfo.username]
  return u ~= nil and exhook.crypto.check_password(clientinfo.password, u.hash,
    {name = "sha256", salt = u.salt, salt_position = "suffix"}) == true
end

return M
