-- wrk script: POST /api/events with realistic, varied CRM events.
-- Usage: TOKEN=... wrk -t2 -c16 -d30s -s bench/post_events.lua --latency http://127.0.0.1:8080
-- Leads are spread over 20,000 ids (env LEADS) so shards and caches see a
-- realistic mix.
-- Each wrk thread formats a pool of 4,096 requests once and cycles through
-- it, so the generator spends its CPU on sending, not on string formatting
-- (wrk and the server share the machine's cores).
local token = os.getenv("TOKEN") or ""
local types = {"page_view", "property_view", "property_view", "property_save", "email_open",
               "email_click", "sms_in", "sms_out", "call_out", "tour_request", "form_submit"}
local counter = 0
local pool = {}
local pool_size = 4096
local leads = tonumber(os.getenv("LEADS") or "20000")
local next_index = 0

function setup(thread)
  thread:set("thread_id", counter)
  counter = counter + 1
end

local function event_body()
  local t = types[math.random(#types)]
  local lead = math.random(leads)
  if t == "property_view" or t == "property_save" or t == "tour_request" then
    return string.format('{"contact_id":"load-%d","type":"%s","property_id":"ames-%04d","value":%d}',
                         lead, t, math.random(2930), 100000 + math.random(300000))
  end
  return string.format('{"contact_id":"load-%d","type":"%s"}', lead, t)
end

function init(args)
  math.randomseed(os.time() + (thread_id or 0) * 7919)
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}
  for i = 1, pool_size do
    pool[i] = wrk.format("POST", "/api/events", headers, event_body())
  end
end

function request()
  next_index = next_index % pool_size + 1
  return pool[next_index]
end
