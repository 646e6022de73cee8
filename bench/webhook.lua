-- wrk script for the expensebot ingest benchmark.
--
--   wrk -t2 -c8 -d10s --latency -s bench/webhook.lua http://127.0.0.1:PORT/webhook -- BODIES_FILE NTHREADS
--
-- BODIES_FILE holds one request per line: "sha256=<hex>\t<json body>".
-- Thread n (0-based) of NTHREADS sends lines n, n+NTHREADS, n+2*NTHREADS, ... once each, so no
-- two requests in a run share a body (and therefore a mid). If a thread runs out of lines it
-- stops early and reports "exhausted" > 0: generate more bodies.
-- ("sent" counts request() calls; wrk calls it once before starting, to check pipelining, so
-- thread 0's first body is never sent.)
-- done() prints one line "WRK_RESULT {json}" with the figures the orchestrator reads.

local threads = {}
local counter = 0

function setup(thread)
   thread:set("id", counter)
   table.insert(threads, thread)
   counter = counter + 1
end

local requests_ = {}
local nextreq = 1
sent = 0
exhausted = 0
status_2xx = 0
status_other = 0
statuses = {}

function init(args)
   local path = args[1] or error("usage: -- BODIES_FILE NTHREADS")
   local nthreads = tonumber(args[2] or "1")
   local headers = {["Content-Type"] = "application/json"}
   local i = 0
   for line in io.lines(path) do
      if i % nthreads == id then
         local tab = line:find("\t", 1, true)
         headers["X-Hub-Signature-256"] = line:sub(1, tab - 1)
         -- Preformat now (before wrk starts its clock) so request() costs nothing per call.
         requests_[#requests_ + 1] = wrk.format("POST", "/webhook", headers, line:sub(tab + 1))
      end
      i = i + 1
   end
   loaded = #requests_
end

function request()
   local r = requests_[nextreq]
   if r == nil then
      -- Never resend a body: a duplicate mid would be acked without a new row.
      exhausted = exhausted + 1
      wrk.thread:stop()
      return requests_[#requests_]
   end
   nextreq = nextreq + 1
   sent = sent + 1
   return r
end

function response(status, headers, body)
   if status >= 200 and status < 300 then
      status_2xx = status_2xx + 1
   else
      status_other = status_other + 1
      local key = tostring(status)
      statuses[key] = (statuses[key] or 0) + 1
   end
end

local function json_object(t)
   local parts = {}
   for k, v in pairs(t) do
      local value
      if type(v) == "table" then
         value = json_object(v)
      else
         value = tostring(v)
      end
      parts[#parts + 1] = string.format("%q:%s", k, value)
   end
   return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
   local sent_total, exhausted_total, ok_total, other_total, loaded_total = 0, 0, 0, 0, 0
   local non2xx = {}
   for _, thread in ipairs(threads) do
      sent_total = sent_total + thread:get("sent")
      exhausted_total = exhausted_total + thread:get("exhausted")
      ok_total = ok_total + thread:get("status_2xx")
      other_total = other_total + thread:get("status_other")
      loaded_total = loaded_total + thread:get("loaded")
      for code, n in pairs(thread:get("statuses")) do
         non2xx[code] = (non2xx[code] or 0) + n
      end
   end
   local e = summary.errors
   local result = {
      requests = summary.requests,
      duration_us = summary.duration,
      requests_per_s = string.format("%.2f", summary.requests / (summary.duration / 1e6)),
      bytes = summary.bytes,
      latency_mean_us = string.format("%.1f", latency.mean),
      latency_p50_us = latency:percentile(50),
      latency_p90_us = latency:percentile(90),
      latency_p99_us = latency:percentile(99),
      latency_p999_us = latency:percentile(99.9),
      latency_max_us = latency.max,
      errors_connect = e.connect,
      errors_read = e.read,
      errors_write = e.write,
      errors_timeout = e.timeout,
      errors_status = e.status,
      status_2xx = ok_total,
      status_non2xx = other_total,
      non2xx_by_status = non2xx,
      sent = sent_total,
      loaded = loaded_total,
      exhausted = exhausted_total,
   }
   io.write("WRK_RESULT ", json_object(result), "\n")
end
