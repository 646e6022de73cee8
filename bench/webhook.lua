-- wrk script of bench_throughput.py: each request POSTs the next pre-signed body, none twice
-- (a mid seen before is acknowledged without being written: no work to measure).
--
--   wrk -t1 -c8 -d10s --latency -s bench/webhook.lua http://127.0.0.1:PORT/webhook -- BODIES_FILE
--
-- BODIES_FILE holds one request a line, "sha256=<hex>\t<body>". One thread (-t1) sends the lines
-- in turn and stops when they run out. done() prints one line, "WRK_RESULT {json}".

local requests, sent = {}, 0

function init(args)
   for line in io.lines(args[1]) do
      local tab = line:find("\t", 1, true)
      -- Formatted now, before wrk's clock starts, so that request() costs nothing.
      requests[#requests + 1] = wrk.format("POST", nil, {["Content-Type"] = "application/json",
         ["X-Hub-Signature-256"] = line:sub(1, tab - 1)}, line:sub(tab + 1))
   end
end

function request()
   if sent == #requests then
      wrk.thread:stop()
      return requests[sent]
   end
   sent = sent + 1
   return requests[sent]
end

function done(summary, latency)
   local e = summary.errors
   io.write(string.format('WRK_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
      .. '"max_us": %d, "connect": %d, "read": %d, "write": %d, "timeout": %d, "non2xx": %d}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
      e.connect, e.read, e.write, e.timeout, e.status))
end
