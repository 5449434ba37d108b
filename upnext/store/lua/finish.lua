-- finish: record the outcome of a batch of runs of one task, ack and trim their entries, and
-- write its history and stats in the same call.
-- KEYS[1] stream   KEYS[2] leases zset   KEYS[3] failed-jobs index (zset)   KEYS[4] ended stream
-- then for job i: KEYS[7i-2] .. KEYS[7i+4]: job hash, logs list, dedup key, attempts list,
-- ended:key of its idempotency key, its workflow tree zset, its notify list
-- then, when stats are on, the last three: stats minute, hour and total hashes
-- ARGV[1] consumer   ARGV[2] ttl_s of failed and cancelled jobs   ARGV[3] ttl_s of completed jobs
-- then 11 values per job i, from ARGV[4]: entry id, job id, status, result, error, traceback,
-- failure_reason, done channel, idempotency key ('' none), root id ('' unknown), run seconds
-- ('' unknown)
-- Empty fields are deleted, not stored: an ended record keeps only what it has.
-- Returns one word per job: 'ok'; 'stale' (fenced: our delivery was reclaimed, nothing
-- written); 'terminal' (already finished or cancelled: acked, record untouched); 'missing'.
local PER_JOB_ARGV, PER_JOB_KEYS, HEAD = 11, 7, 4
local out = {}
local consumer, ttl_s, completed_ttl_s = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local jobs = (#ARGV - 3) / PER_JOB_ARGV
local stat_keys = nil
if #KEYS > HEAD + PER_JOB_KEYS * jobs then stat_keys = {KEYS[#KEYS - 2], KEYS[#KEYS - 1], KEYS[#KEYS]} end
local acc = stats_new()
local now = now_s()
local longest = math.max(ttl_s, completed_ttl_s)  -- the ended stream keeps entries this long

local function set_or_drop(job, fields)
  local set, drop = {}, {}
  for i = 1, #fields, 2 do
    if fields[i + 1] == '' then drop[#drop + 1] = fields[i]
    else set[#set + 1] = fields[i]; set[#set + 1] = fields[i + 1] end
  end
  if #set > 0 then redis.call('HSET', job, unpack(set)) end
  if #drop > 0 then redis.call('HDEL', job, unpack(drop)) end
end

local function finish_job(k, a)
  local job, job_id, status = KEYS[k], ARGV[a + 1], ARGV[a + 2]
  local ttl = status == 'complete' and completed_ttl_s or ttl_s
  local at = history_add(KEYS[4], job_id, status, now, longest, KEYS[k + 4], ARGV[a + 8], KEYS[k + 5], ARGV[a + 9], ttl)
  set_or_drop(job, {'status', status, 'result', ARGV[a + 3], 'error', ARGV[a + 4], 'traceback', ARGV[a + 5],
    'failure_reason', ARGV[a + 6], 'completed_at', at, 'lease', '', 'deliveries', ''})
  redis.call('EXPIRE', KEYS[k + 3], ttl)
  settle(job, KEYS[k + 1], KEYS[k + 2], job_id, ttl, ARGV[a + 7], status, KEYS[k + 6])
  if status == 'failed' then redis.call('ZADD', KEYS[3], at, job_id) end
  stats_count(acc, status == 'complete' and 'completed' or status)
end

for i = 1, jobs do
  local k, a = HEAD + 1 + (i - 1) * PER_JOB_KEYS, 4 + (i - 1) * PER_JOB_ARGV
  local entry_id, job_id = ARGV[a], ARGV[a + 1]
  if not holds(KEYS[1], entry_id, consumer) then
    out[i] = 'stale'
  else
    ack(KEYS[1], entry_id)
    redis.call('ZREM', KEYS[2], job_id)
    local current = redis.call('HGET', KEYS[k], 'status')
    if not current then
      out[i] = 'missing'
    else
      if stat_keys then stats_run(acc, KEYS[k], ARGV[a + 10]) end  -- a run cancelled midway ran too
      if is_terminal(current) then
        out[i] = 'terminal'
      else
        finish_job(k, a)
        out[i] = 'ok'
      end
    end
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - ttl_s)
stats_write(acc, stat_keys)
return out
