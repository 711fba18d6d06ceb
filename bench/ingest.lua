-- wrk script: POST unique usage events (single), batches of 1,000, or ceiling debits.
-- args: mode (single | batch | ceiling), api key, run prefix.
local threads_n = 0

function setup(thread)
  threads_n = threads_n + 1
  thread:set("tid", threads_n)
end

function init(args)
  mode, key, prefix = args[1], args[2], args[3]
  counter = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. key
  if mode == "single" then
    wrk.path = "/api/v1/usage-events"
  elseif mode == "batch" then
    wrk.path = "/api/v1/usage-events/batch"
  else
    wrk.path = "/bench/ceiling"
  end
end

local function event()
  counter = counter + 1
  return string.format(
    '{"idempotency_key":"%s-%d-%d","action":"chat","quantity":1,'
      .. '"input_tokens":1200,"output_tokens":300,"labels":{"project":"bench"}}',
    prefix, tid, counter)
end

function request()
  local body
  if mode == "batch" then
    local events = {}
    for i = 1, 1000 do events[i] = event() end
    body = '{"events":[' .. table.concat(events, ",") .. ']}'
  else
    body = event()
  end
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d errors_status=%d errors_other=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout))
end
