-- example.lua: the module exhookd ships with ([lua] init_module = example).
--
-- It shows the three kinds of hook:
--   * a verdict (client.authenticate, client.authorize): return true or
--     false to decide, nil for no opinion (what the broker does with "no
--     opinion" depends on its generation: see on_client_authenticate);
--   * a message rewrite (message.publish): return the changed message, false
--     to drop it, nil to leave it alone;
--   * a notification (client.connected, client.disconnected): the return
--     value is ignored.
--
-- Copy it, rename it, and name your module in etc/exhook.ini.

local M = {}

-- Only messages on these topics reach on_message_publish; the broker is told
-- so at load time and does not even send the others.
M.topics = {
  ["message.publish"] = { "demo/#" },
}

-- Authentication. baduser is refused and gooduser let in by every broker;
-- a plain false or true also means "ask no one after exhookd".
--
-- Every other client gets the answer that lets it in on a broker without an
-- authenticator of its own, and that answer differs by generation:
--   * EMQX 4.x (meta.interface "v1"): nil. The broker keeps the result it
--     had (allow_anonymous, the auth plugins that ran before exhookd) and
--     its later auth plugins still run.
--   * EMQX 5.x and later ("v2", "v3"): nil would refuse the client. The broker
--     passes `result` = false until something has authenticated the client,
--     and keeps that false when exhookd has no opinion. So answer true, and
--     "continue": the client is in, and a hook after exhookd (another ExHook
--     server, a plugin) may still refuse it.
-- The broker's own authenticators run before exhookd; a client they accept
-- or refuse never reaches this handler. If your broker has authenticators
-- and must keep refusing the clients they do not know, return false instead
-- of true, "continue" below.
function M.on_client_authenticate(clientinfo, result, meta)
  if clientinfo.username == "baduser" then
    return false
  elseif clientinfo.username == "gooduser" then
    return true
  elseif meta.interface == "v1" then
    return nil
  end
  return true, "continue"
end

-- Authorization: only superusers may publish to system topics ($SYS/...).
-- Everything else is left to the broker (nil): it then applies its own
-- default, `authorization.no_match` (allow) on EMQX 5.
-- The broker's own authorization sources run before exhookd, and EMQX 5's
-- default ACL file decides everything (it ends with {allow, all}): this
-- handler is called only when no source decides, e.g. with
-- `authorization.sources = []` in emqx.conf.
function M.on_client_authorize(clientinfo, action, topic, result, meta)
  if action == "publish" and not clientinfo.is_superuser
      and exhook.topic_match("$SYS/#", topic) then
    exhook.log("warn", "denied publish to", topic, "for", clientinfo.clientid)
    return false
  end
  return nil
end

-- Messages published to demo/in are moved to demo/out and stamped with a
-- header; messages to demo/drop are dropped. Other demo/ topics pass as sent.
function M.on_message_publish(message, meta)
  if message.topic == "demo/in" then
    message.topic = "demo/out"
    message.headers["x-exhookd"] = "rewritten"
    return message
  elseif message.topic == "demo/drop" then
    return false
  end
  return nil
end

function M.on_client_connected(clientinfo, meta)
  exhook.log("info", "client connected:", clientinfo.clientid, "user",
             clientinfo.username, "from", clientinfo.peerhost)
end

function M.on_client_disconnected(clientinfo, reason, meta)
  exhook.log("info", "client disconnected:", clientinfo.clientid, "reason", reason)
end

return M
