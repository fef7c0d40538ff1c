-- shared_users.lua: authenticates clients against a user file loaded once
-- into a shared dictionary, instead of a copy of it in every worker.
--
--   [shared]
--   users = 32MB          ; about 100,000 users of EMQX's CSV layout
--   [lua]
--   init_module = shared_users
--
-- The file is EMQX's CSV import layout for its built-in database, SHA-256
-- with the salt as suffix (EMQX's default for it), one user a line:
--
--   user_id,password_hash,salt,is_superuser
--   alice,5d2a...e9,8f3a,false
--
-- Path: $EXHOOKD_USERS_FILE, else /etc/exhookd/users.csv.
--
-- Loading: every worker runs refresh() at start and then every REFRESH
-- seconds, but only the one whose add() of the marker "loaded" succeeds
-- reads the file; the marker expires after REFRESH seconds, so the file is
-- read again once per period by one worker. Entries live 3 periods: a
-- user removed from the file is gone within that time, and a file that
-- cannot be read for a while (logged) does not lock everyone out at once.
-- A reload of the scripts keeps the dictionary: nothing is read again.

local users = assert(exhook.shared.users, "declare [shared] users = 32MB in exhook.ini")

local FILE = os.getenv("EXHOOKD_USERS_FILE") or "/etc/exhookd/users.csv"
local REFRESH = 60

local M = {}

-- One "u:<name>" = "<hash>,<salt>" per user. safe_set: a dictionary too
-- small for the file must say so, not evict users already loaded.
local function load()
  local f, err = io.open(FILE)
  if not f then
    error(err, 0)
  end
  local n = 0
  for line in f:lines() do
    local name, hash, salt = line:match("^([^,]+),(%x+),([^,]*)")
    if name and name ~= "user_id" then
      local ok, why = users:safe_set("u:" .. name, hash .. "," .. salt, 3 * REFRESH)
      if not ok then
        f:close()
        error("user " .. name .. ": " .. why .. " (make [shared] users larger)", 0)
      end
      n = n + 1
    end
  end
  f:close()
  return n
end

local function refresh()
  if users:add("loaded", true, REFRESH) then
    local ok, n = pcall(load)
    if ok then
      exhook.log("info", "loaded", n, "users from", FILE)
    else
      users:delete("loaded")   -- the next worker's refresh tries again
      exhook.log("error", "users from", FILE .. ":", n)
    end
  end
  exhook.timer(REFRESH, refresh)
end

-- At start, before the worker serves: the first worker's init() reads the
-- file (the local store never waits, so this is allowed in init()).
function M.init()
  refresh()
end

function M.on_client_authenticate(clientinfo, result, meta)
  local record = users:get("u:" .. clientinfo.username)
  if not record then
    return false
  end
  local hash, salt = record:match("^(%x+),(.*)$")
  local ok, err = exhook.crypto.check_password(clientinfo.password, hash,
    {name = "sha256", salt = salt, salt_position = "suffix"})
  if err then
    exhook.log("error", "user", clientinfo.username, err)
  end
  return ok == true
end

return M
