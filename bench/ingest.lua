-- wrk script: POST usage events (single), batches of 1,000 (batch), ceiling debits (ceiling)
-- or raw-SQL batches of 1,000 (rawbatch).
-- args: mode, api key, run prefix, key cycle (0: a new key every request; n: each thread
-- cycles over n keys, so after the first n requests every request is a replay).
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

local paths = {
  single = "/api/v1/usage-events",
  batch = "/api/v1/usage-events/batch",
  ceiling = "/bench/ceiling",
  rawbatch = "/bench/raw-batch",
}

function init(args)
  mode, key, prefix = args[1], args[2], args[3]
  cycle = tonumber(args[4] or "0")
  counter, created, replayed = 0, 0, 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. key
  wrk.path = paths[mode]
end

local function event()
  counter = counter + 1
  local n = counter
  if cycle > 0 then n = (counter - 1) % cycle end
  return string.format(
    '{"idempotency_key":"%s-%d-%d","action":"chat","quantity":1,'
      .. '"input_tokens":1200,"output_tokens":300,"labels":{"project":"bench"}}',
    prefix, tid, n)
end

function request()
  local body
  if mode == "batch" or mode == "rawbatch" then
    local events = {}
    for i = 1, 1000 do events[i] = event() end
    body = '{"events":[' .. table.concat(events, ",") .. ']}'
  else
    body = event()
  end
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status == 201 then
    created = created + 1
  elseif status == 200 then
    replayed = replayed + 1
  end
end

function done(summary, latency, requests)
  local created_n, replayed_n = 0, 0
  for _, thread in ipairs(threads) do
    created_n = created_n + thread:get("created")
    replayed_n = replayed_n + thread:get("replayed")
  end
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d errors_status=%d errors_other=%d"
      .. " created=%d replayed=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout, created_n, replayed_n))
end
