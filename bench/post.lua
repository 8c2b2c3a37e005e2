-- wrk script of tokenmint's harness. POST when BODY is set (a form-encoded token request),
-- GET with AUTHORIZATION otherwise; prints one machine-readable RESULT line at the end:
-- requests/s, p50 and p99 latency in ms, failed requests (non-2xx, socket errors), requests.
local body = os.getenv("BODY")
local authorization = os.getenv("AUTHORIZATION")
if body and body ~= "" then
  wrk.method = "POST"
  wrk.body = body
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
if authorization and authorization ~= "" then
  wrk.headers["Authorization"] = authorization
end

done = function(summary, latency, requests)
  local e = summary.errors
  local failed = e.status + e.connect + e.read + e.write + e.timeout
  io.write(string.format("RESULT rps=%.1f p50_ms=%.3f p99_ms=%.3f failed=%d requests=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    failed, summary.requests))
end
