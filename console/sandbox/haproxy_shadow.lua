-- Rewind's shadow mirror for HAProxy 2.6: after the baseline server answers a request, send the
-- request and that answer to the shadow server in the background. The client never waits for it.
--
-- Which backend mirrors to which server is an entry of the runtime map shadow.map, read into
-- txn.shadow by the backend's config: "<shadow server> <baseline server> <percent>". Rewind sets and
-- deletes entries over the admin socket (add map / del map), so the mirror changes with no reload.
-- At most MAX_INFLIGHT copies are in flight; beyond that a copy is shed (the shadow's coverage shows it).

local MAX_INFLIGHT = 16
local TIMEOUT_MS = 1000
local inflight = 0

local function send(address, baseline, payload)
  pcall(function()
    core.httpclient():post{
      url = "http://" .. address .. "/shadow",
      body = payload,
      headers = {["content-type"] = {"application/json"}, ["content-length"] = {tostring(#payload)},
                 ["x-rewind-baseline"] = {baseline}},
      timeout = TIMEOUT_MS,
    }
  end)
  inflight = inflight - 1
end

local function copy(txn)
  local shadow, baseline, percent = string.match(txn:get_var("txn.shadow") or "", "^(%S+)%s+(%S+)%s+(%d+)$")
  if shadow == nil or txn.sf:srv_name() ~= baseline or tonumber(txn.sf:status()) ~= 200 then
    return
  end
  if tonumber(percent) < 100 and math.random(100) > tonumber(percent) then
    return
  end
  if inflight >= MAX_INFLIGHT then
    return
  end
  local backend = core.backends[txn.sf:be_name()]
  local server = backend and backend.servers[shadow]
  if server == nil then
    return
  end
  local payload = '{"request":' .. (txn:get_var("txn.reqbody") or "null") ..
                  ',"primary":' .. (txn.sf:res_body() or "null") .. '}'
  local address = server:get_addr()
  inflight = inflight + 1
  core.register_task(function() send(address, baseline, payload) end)
end

-- Any error stays inside: the served answer is never affected by the mirror.
core.register_action("shadow_copy", {"http-res"}, function(txn) pcall(copy, txn) end)
