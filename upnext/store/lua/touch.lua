-- touch: reset the idle time of entries this worker is running, so no live job is reclaimed,
-- and extend their concurrency leases. Fenced like finish: an entry another worker reclaimed
-- (ours went idle past claim_timeout_ms, e.g. the process was frozen) is left with it; a plain
-- XCLAIM would take it back and fence off the worker that now runs it.
-- KEYS[1] stream (normal; an entry of another priority names its own: entry_of)   KEYS[2] leases zset
-- ARGV[1] consumer   ARGV[2] lease ms (0: the task holds no leases)
-- then per entry i: ARGV[1+2i] entry id, ARGV[2+2i] job id
-- Returns how many entries were still ours (and touched).
local consumer, lease_ms = ARGV[1], tonumber(ARGV[2])
local expiry_ms = now_s() * 1000 + lease_ms
local touched = 0
for i = 1, (#ARGV - 2) / 2 do
  local entry_id, job_id = ARGV[1 + 2 * i], ARGV[2 + 2 * i]
  if holds(KEYS[1], entry_id, consumer) then
    -- JUSTID: resets the idle time without counting a delivery (the poison counter).
    local stream, id = entry_of(KEYS[1], entry_id)
    redis.call('XCLAIM', stream, GROUP, consumer, 0, id, 'JUSTID')
    if lease_ms > 0 then redis.call('ZADD', KEYS[2], 'XX', expiry_ms, job_id) end
    touched = touched + 1
  end
end
return touched
