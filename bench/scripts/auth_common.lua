-- auth_common.lua: what the authenticate scripts of bench/compare.sh's io
-- scenario share: where the user store is, how a username goes into a URL,
-- and the decision an HTTP auth service's answer means. The same decisions
-- as bench/peer-node and bench/peer-aio.

local cjson = require "cjson"

local M = {}

-- The value of an environment variable of exhookd's, which compare.sh sets.
function M.env(name)
  local v = os.getenv(name)
  if v == nil or v == "" then
    error(name .. " is not set in exhookd's environment", 2)
  end
  return v
end

-- A username as one URL path segment (RFC 3986 unreserved characters kept).
function M.escape(s)
  return (s:gsub("[^%w%-._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

-- An HTTP auth service's answer as a verdict: 200 with a JSON body
-- {"allow": true} lets the client in, 403 or 404 refuses it; any other
-- answer fails the call (the broker then applies its failed_action).
function M.decide(status, body, url)
  if status == 200 then
    local ok, v = pcall(cjson.decode, body)
    return ok and type(v) == "table" and v.allow == true
  elseif status == 403 or status == 404 then
    return false
  end
  error(string.format("GET %s: status %s", url, tostring(status)), 0)
end

return M
