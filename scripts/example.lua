-- example.lua: the module exhookd ships with ([lua] init_module = example).
--
-- It shows the three kinds of hook:
--   * a verdict (client.authenticate, client.authorize): return true or
--     false to decide, nil to leave the decision to the broker;
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

-- Authentication: baduser is refused, gooduser is let in without asking the
-- broker's other authenticators, everyone else is left to the broker.
function M.on_client_authenticate(clientinfo, result, meta)
  if clientinfo.username == "baduser" then
    return false
  elseif clientinfo.username == "gooduser" then
    return true
  end
  return nil
end

-- Authorization: only superusers may publish to system topics ($SYS/...).
-- Everything else is left to the broker's own rules.
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
