-- odd.lua: the fuzzer's second module (fuzz/fuzz_dispatch.c loads it next
-- to scripts/example.lua, before or after it). Its handlers return what a
-- script might return by mistake or by malice: wrong types, proxies and
-- metatables, NUL bytes, huge, deep and cyclic tables, errors of every
-- kind, endless loops, memory bombs, coroutines.
--
-- The harness sets the global fuzz_recipe to four bytes of each input:
--   byte 1    what a handler returns first (an entry of `first`)
--   byte 2    what it returns second (an entry of `second`)
--   bytes 3-4 a number n (0..65535) the recipes use as a size, a choice
--             or a bit mask.
--             Bit 15 of n makes the handler wait (exhook.sleep(0)) first,
--             so that the chain also goes on from where it was suspended.
-- One function answers every handler, so this file covers every rpc.
--
-- A __gc that never ends and a backtracking pattern are beyond the time
-- limit (Lua runs finalizers with hooks off, and hooks do not run inside C
-- functions); the sandbox refuses both, and the recipes below check that it
-- does: should it let one through, the input hangs until libFuzzer's
-- -timeout, which reports it.

local M = {}

local function pick(list, i)
  return list[i % #list + 1]
end

-- A string from the request, so that the fuzzer's bytes reach what the
-- handler returns.
local function request_string(args, n)
  local found = {}
  for i = 1, args.n do
    local a = args[i]
    if type(a) == "string" then
      found[#found + 1] = a
    elseif type(a) == "table" then
      for _, v in next, a do
        if type(v) == "string" then found[#found + 1] = v end
      end
    end
  end
  return #found > 0 and pick(found, n) or "fuzz"
end

-- A value of any type, odd ones first; `n` chooses.
local function odd_value(args, n)
  local values = {
    42, -1, 1.5, 2 ^ 63, math.huge, 0 / 0, "", "#", "a/+", "+/#", "a\0b",
    "demo/out", "$SYS/x", true, false, {}, print, coroutine.create(print),
    io.stdout, setmetatable({}, { __index = function() error("odd __index") end }),
    string.rep("x", n % 4096), request_string(args, n),
  }
  return pick(values, n)
end

-- The message emptied into a hidden table, with a metatable: every read
-- goes through __index and every write through __newindex. n is a bit
-- mask over reads: read k (from 1, modulo 16) answers an odd value if bit
-- k-1 is set, else what the hidden table holds; so two reads of one field
-- can disagree, as a checker and a packer reading one after the other.
local function shifty(args, t, n)
  if type(t) ~= "table" then return t end
  local hidden = {}
  for k, v in next, t do hidden[k] = v end
  for k in next, hidden do t[k] = nil end
  local reads = 0
  return setmetatable(t, {
    __index = function(_, k)
      reads = reads + 1
      if (n >> ((reads - 1) % 16)) & 1 == 1 then return odd_value(args, reads) end
      return hidden[k]
    end,
    __newindex = function(_, k, v) hidden[k] = v end,
  })
end

local function copy(t)
  local c = {}
  if type(t) == "table" then
    for k, v in next, t do c[k] = v end
  end
  return c
end

local function big_table(n)
  local t = {}
  for i = 1, n do t["k" .. i] = "v" .. i end
  return t
end

local function deep_table(n)
  local t = {}
  for _ = 1, n % 300 do t = { headers = t, [1] = t } end
  return t
end

local function spin()
  while true do end
end

-- What a handler returns first: each entry gets the handler's arguments
-- (packed) and n.
local first = {
  function() return nil end,
  function() return true end,
  function() return false end,
  function(a) return a[1] end,
  function(_, n) return n end,
  function(a, n) return odd_value(a, n) end,
  function(a, n) return "\0" .. request_string(a, n) .. "\0" end,
  function() return print end,
  function() return coroutine.create(spin) end,
  function() return io.stdout end,
  function() return {} end,
  -- a message built from odd parts
  function(a, n)
    return { topic = odd_value(a, n), qos = odd_value(a, n >> 3), payload = odd_value(a, n >> 6),
             headers = odd_value(a, n >> 9) }
  end,
  -- the message with one field changed to an odd value
  function(a, n)
    local m = a[1]
    if type(m) == "table" then m[pick({ "topic", "qos", "payload", "headers" }, n)] = odd_value(a, n >> 2) end
    return m
  end,
  -- a valid change, topic from the request
  function(a, n)
    local m = copy(a[1])
    m.topic, m.qos = request_string(a, n), n % 3
    return m
  end,
  function(a, n) return shifty(a, a[1], n) end,
  function(a, n) return shifty(a, copy(a[1]), n) end,
  -- an empty proxy reading through to the message
  function(a) return setmetatable({}, { __index = a[1] }) end,
  -- writes to fields the message lacks raise
  function(a, n)
    local m = a[1]
    if type(m) == "table" then
      m[pick({ "topic", "qos", "payload", "headers" }, n)] = nil
      setmetatable(m, { __newindex = function() error("read-only message") end })
    end
    return m
  end,
  -- headers behind a metatable
  function(a, n)
    local m = a[1]
    if type(m) == "table" then
      m.headers = setmetatable({}, {
        __index = function(_, k) return odd_value(a, n + #tostring(k)) end,
        __newindex = function() error("read-only headers") end,
        __pairs = function() return function() return "x", {} end end,
        __len = function() return n end,
      })
    end
    return m
  end,
  function(a, n)
    local m = copy(a[1])
    m.headers = shifty(a, copy(m.headers), n)
    return m
  end,
  -- headers with keys and values of the wrong type
  function(a, n)
    local m = copy(a[1])
    m.headers = { [n] = "v", [true] = "w", k = {}, ["a\0b"] = "c\0d", [1.5] = odd_value(a, n) }
    return m
  end,
  function(a, n)
    local m = copy(a[1])
    m.headers = big_table(n)
    return m
  end,
  function(a, n)
    local m = copy(a[1])
    m.headers, m.props = deep_table(n), deep_table(n)
    return m
  end,
  -- cyclic
  function(a)
    local m = copy(a[1])
    m.self, m.headers = m, m
    return m
  end,
  function(a)
    local h = copy(type(a[1]) == "table" and a[1].headers)
    h.self = h
    local m = copy(a[1])
    m.headers = h
    return m
  end,
  -- a payload as large as the memory limit allows
  function(a, n)
    local m = copy(a[1])
    m.payload = string.rep("\0p", n * 16)
    return m
  end,
  -- errors
  function(_, n) error("odd error " .. n) end,
  function(_, n) error({ code = n }) end,
  function() error(nil) end,
  function(_, n) error(setmetatable({}, { __tostring = function() return n end })) end,
  function() error(setmetatable({}, { __tostring = function() error("again") end })) end,
  function(a, n) error(string.rep("line\n\0", n % 1000) .. request_string(a, n)) end,
  function() return nil + 1 end,
  -- loops and recursion
  function() spin() end,
  function() while true do pcall(spin) end end,
  function() local function f() return 1 + f() end return f() end,
  function() return coroutine.wrap(spin)() end,
  function(a) return select(2, coroutine.resume(coroutine.create(function() return a[1] end))) end,
  function() return coroutine.yield(1) end,
  -- memory
  function() return string.rep("x", 1 << 30) end,
  function() local t = {} for i = 1, math.huge do t[i] = {} end return t end,
  function() return coroutine.wrap(function() local s = "x" while true do s = s .. s end end)() end,
  function(_, n) return table.unpack({}, 1, n % 300) end,
  -- finalizers and to-be-closed variables
  function() return setmetatable({}, { __gc = function() error("odd __gc") end }) end,
  function() return setmetatable({}, { __gc = spin }) end,
  function(_, n) return string.find(string.rep("a", 3000 + n), ".-.-.-.-b") end,
  function()
    local _ <close> = setmetatable({}, { __close = function() error("odd __close") end })
    return true
  end,
  -- the exhook module with odd arguments
  function(a, n)
    exhook.log(pick({ "debug", "info", "warn", "error" }, n), request_string(a, n), a[1],
               odd_value(a, n))
    return nil
  end,
  function(a, n) return exhook.topic_match(request_string(a, n), request_string(a, n + 1)) end,
  function(a, n) return pcall(exhook.topic_match, odd_value(a, n), odd_value(a, n + 1)) end,
  function(a, n) return exhook.log(request_string(a, n)) end,
  -- arguments damaged in place, then nil: the next module must not see it
  function(a)
    for i = 1, a.n do
      if type(a[i]) == "table" then
        a[i].topic, a[i].headers, a[i].qos = nil, 5, "x"
      end
    end
    return nil
  end,
  -- a returned table whose reads never end or exhaust memory: its
  -- metamethods run after the handler has returned
  function() return setmetatable({}, { __index = spin }) end,
  function()
    return setmetatable({}, { __index = function() local s = "x" while true do s = s .. s end end })
  end,
}

local second = {
  function() return nil end,
  function() return "continue" end,
  function() return "stop" end,
  function() return "" end,
  function() return "stop\0" end,
  function(a, n) return odd_value(a, n) end,
}

local function handler(...)
  local args = table.pack(...)
  local r = fuzz_recipe or ""
  local b1, b2, b3, b4 = r:byte(1, 4)
  local n = (b3 or 0) * 256 + (b4 or 0)
  if n >= 32768 then exhook.sleep(0) end
  return pick(first, b1 or 0)(args, n), pick(second, b2 or 0)(args, n)
end

-- Every handler name is defined, the 4.x names too: exhookd reads a
-- module's table raw, so handlers offered through __index would not count.
for _, name in ipairs({
  "on_provider_loaded", "on_provider_unloaded", "on_client_connect", "on_client_connack",
  "on_client_connected", "on_client_disconnected", "on_client_authenticate",
  "on_client_authorize", "on_client_check_acl", "on_client_subscribe", "on_client_unsubscribe",
  "on_session_created", "on_session_subscribed", "on_session_unsubscribed", "on_session_resumed",
  "on_session_discarded", "on_session_takenover", "on_session_takeovered",
  "on_session_terminated", "on_message_publish", "on_message_delivered", "on_message_acked",
  "on_message_dropped",
}) do
  M[name] = handler
end

return M
