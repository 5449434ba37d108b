-- enqueue: write a batch of new jobs of one task and make each runnable (stream) or scheduled
-- (zset), with dedup by idempotency key, refusing the whole batch when the task's queue is full.
-- KEYS[1] stream   KEYS[2] scheduled zset; then per job i: KEYS[1+2i] job hash, KEYS[2+2i] dedup key
-- ARGV[1] stream maxlen (0: none)   ARGV[2] the task's max_queued (0: no cap)
-- ARGV[3] job key prefix 'P:{fn}:job:'
-- then 10 values per job i, from ARGV[4]: job id, delay_s (<= 0: run now), idempotency key
-- ('' for none), args, kwargs, parent_id, root_id, expires_s (<= 0: never; else the job gets
-- expires_at = now + expires_s, which start.lua checks), priority ('high', 'normal', 'low': the
-- stream KEYS[1], or KEYS[1]:high / KEYS[1]:low in the same slot; stored when not normal), notify
-- ('1': its submitter waits on its notify list, which its end fills: see settle in _lib.lua)
-- Returns, per job, the id of the job now holding the work: its own, or the live job that
-- already holds its idempotency key (then nothing is written for it). A key whose holder's record
-- is gone (evicted, deleted by hand) is free again.
-- With a cap: {'full', queued} and nothing written when the jobs this batch adds (live duplicates
-- add none) would take the queued count past it. Queued = entries waiting in the stream (not yet
-- delivered: XLEN minus the pending ones; acked entries are deleted) + scheduled jobs (delayed,
-- retrying): the backlog, not the running jobs, which the fleet's concurrency bounds already.
local PER_JOB = 10
local out = {}
local now = now_s()
local cap = tonumber(ARGV[2])

-- The live job holding idempotency key `key` (via its dedup key), or false.
local function holder(dedup, key)
  local live = key ~= '' and redis.call('GET', dedup)
  if live and redis.call('EXISTS', ARGV[3] .. live) == 0 then live = false end
  return live
end

local function waiting(stream)
  if redis.call('EXISTS', stream) == 0 then return 0 end
  local ok, pending = pcall(redis.call, 'XPENDING', stream, GROUP)
  return redis.call('XLEN', stream) - (ok and pending[1] or 0)
end

local function level_stream(level)
  if level == 'high' or level == 'low' then return KEYS[1] .. ':' .. level end
  return KEYS[1]
end

-- How many jobs this batch would add: those whose key no live job holds, a key once.
local function adding()
  local n, seen = 0, {}
  for i = 1, (#KEYS - 2) / 2 do
    local key = ARGV[4 + (i - 1) * PER_JOB + 2]
    if key == '' or (not seen[key] and not holder(KEYS[2 + 2 * i], key)) then n = n + 1 end
    seen[key] = true
  end
  return n
end

if cap > 0 then
  local n = adding()
  local queued = waiting(KEYS[1]) + waiting(KEYS[1] .. ':high') + waiting(KEYS[1] .. ':low')
    + redis.call('ZCARD', KEYS[2])
  if n > 0 and queued + n > cap then return {'full', queued} end
end
for i = 1, (#KEYS - 2) / 2 do
  local job, dedup, a = KEYS[1 + 2 * i], KEYS[2 + 2 * i], 4 + (i - 1) * PER_JOB
  local job_id, key = ARGV[a], ARGV[a + 2]
  local live = holder(dedup, key)
  if live then
    out[i] = live
  else
    if key ~= '' then redis.call('SET', dedup, job_id) end
    local run_at = requeue(level_stream(ARGV[a + 8]), KEYS[2], job_id, tonumber(ARGV[a + 1]), ARGV[1], now)
    redis.call('HSET', job, 'status', 'queued', 'attempts', 0, 'enqueued_at', now, 'v', FORMAT)
    -- Only what a job has is stored: its function is in its id; no arguments ('[]', '{}'), no
    -- delay (run_at = enqueued_at), no key, no parent, its own root are absent fields.
    if ARGV[a + 3] ~= '[]' then redis.call('HSET', job, 'args', ARGV[a + 3]) end
    if ARGV[a + 4] ~= '{}' then redis.call('HSET', job, 'kwargs', ARGV[a + 4]) end
    if run_at ~= now then redis.call('HSET', job, 'run_at', run_at) end
    if key ~= '' then redis.call('HSET', job, 'key', key) end
    if ARGV[a + 5] ~= '' then redis.call('HSET', job, 'parent_id', ARGV[a + 5]) end
    if ARGV[a + 6] ~= '' and ARGV[a + 6] ~= job_id then redis.call('HSET', job, 'root_id', ARGV[a + 6]) end
    if tonumber(ARGV[a + 7]) > 0 then redis.call('HSET', job, 'expires_at', now + tonumber(ARGV[a + 7])) end
    if level_stream(ARGV[a + 8]) ~= KEYS[1] then redis.call('HSET', job, 'priority', ARGV[a + 8]) end
    if ARGV[a + 9] == '1' then redis.call('HSET', job, 'notify', '1') end
    out[i] = job_id
  end
end
return out
