-- finish: record the outcome of a batch of runs of one task, ack and trim their entries.
-- KEYS[1] stream   KEYS[2] leases zset   KEYS[3] failed-jobs index (zset)
-- then for job i: KEYS[3i+1] job hash, KEYS[3i+2] logs list, KEYS[3i+3] dedup key
-- ARGV[1] consumer   ARGV[2] ttl_s of terminal jobs
-- then 8 values per job i, from ARGV[3]: entry id, job id, status, result, error, traceback,
-- failure_reason, done channel.
-- Returns one word per job: 'ok'; 'stale' (fenced: our delivery was reclaimed, nothing
-- written); 'terminal' (already finished or cancelled: acked, record untouched); 'missing'.
local out = {}
local ttl_s, consumer = tonumber(ARGV[2]), ARGV[1]
local completed_at = now_s()
for i = 1, (#KEYS - 3) / 3 do
  local job, logs, dedup = KEYS[3 * i + 1], KEYS[3 * i + 2], KEYS[3 * i + 3]
  local a = 3 + (i - 1) * 8
  local entry_id, job_id, status = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  if not holds(KEYS[1], entry_id, consumer) then
    out[i] = 'stale'
  else
    ack(KEYS[1], entry_id)
    redis.call('ZREM', KEYS[2], job_id)
    local current = redis.call('HGET', job, 'status')
    if not current then
      out[i] = 'missing'
    elseif is_terminal(current) then
      out[i] = 'terminal'
    else
      redis.call('HSET', job, 'status', status, 'result', ARGV[a + 3], 'error', ARGV[a + 4],
        'traceback', ARGV[a + 5], 'failure_reason', ARGV[a + 6], 'completed_at', completed_at, 'lease', '')
      settle(job, logs, dedup, job_id, ttl_s, ARGV[a + 7], status)
      if status == 'failed' then
        redis.call('ZADD', KEYS[3], completed_at, job_id)
        redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', completed_at - ttl_s)
      end
      out[i] = 'ok'
    end
  end
end
return out
