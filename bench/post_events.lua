-- wrk script: POST /api/events with realistic, varied CRM events.
-- Usage: TOKEN=... wrk -t2 -c16 -d30s -s bench/post_events.lua --latency http://127.0.0.1:8080
-- Leads are spread over 20,000 ids so shards and caches see a realistic mix.
local token = os.getenv("TOKEN") or ""
local types = {"page_view", "property_view", "property_view", "property_save", "email_open",
               "email_click", "sms_in", "sms_out", "call_out", "tour_request", "form_submit"}
local counter = 0

function setup(thread)
  thread:set("thread_id", counter)
  counter = counter + 1
end

function init(args)
  math.randomseed(os.time() + (thread_id or 0) * 7919)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. token
end

function request()
  local t = types[math.random(#types)]
  local lead = math.random(20000)
  local body
  if t == "property_view" or t == "property_save" or t == "tour_request" then
    body = string.format('{"contact_id":"load-%d","type":"%s","property_id":"ames-%04d","value":%d}',
                         lead, t, math.random(2930), 100000 + math.random(300000))
  else
    body = string.format('{"contact_id":"load-%d","type":"%s"}', lead, t)
  end
  return wrk.format(nil, "/api/events", nil, body)
end
