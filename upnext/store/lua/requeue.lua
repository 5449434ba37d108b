-- requeue: run a failed or cancelled job again under the same id (operator `retry`).
-- KEYS[1] job hash   KEYS[2] stream   KEYS[3] logs list   KEYS[4] failed-jobs index
-- KEYS[5] the job's dedup key (its idempotency key's; any key of the task when it has none)
-- KEYS[6] attempts list   KEYS[7] the task's ended stream (history)
-- ARGV[1] job id   ARGV[2] stream maxlen   ARGV[3] job key prefix 'P:{fn}:job:'
-- Attempts start again from zero, its expiry (expires_at) is dropped (an operator's retry of an
-- expired job means "run it now") and the last run's progress is cleared (the run that ended
-- goes to the attempts list, with the outcome it had); its entry in the ended stream is deleted
-- (found in the millisecond of its completed_at: an end of the new run in that same millisecond
-- must not be listed twice); the record and its logs
-- lose their TTL until it ends again, and it takes its idempotency key again (refused while
-- another live job holds that key).
-- A job cancelled while it ran is refused until its worker has stopped it (its entry is acked):
-- that run's late finish would otherwise overwrite the new one, and both would run at once.
-- Returns {'queued'}, {'missing'}, {'not_ended', status} or {'key_taken', holder id}.
local status, lease, key = unpack(redis.call('HMGET', KEYS[1], 'status', 'lease', 'key'))
if not status then return {'missing'} end
if status ~= 'failed' and status ~= 'cancelled' then return {'not_ended', status} end
if lease and lease ~= '' and is_pending(KEYS[2], lease) then
  return {'not_ended', status .. ', its run has not stopped yet'}
end
if key and key ~= '' then
  local holder = redis.call('GET', KEYS[5])
  if holder and holder ~= ARGV[1] then
    local held = redis.call('HGET', ARGV[3] .. holder, 'status')
    if held and not is_terminal(held) then return {'key_taken', holder} end
  end
  redis.call('SET', KEYS[5], ARGV[1])
end
local ended_at = redis.call('HGET', KEYS[1], 'completed_at')
if ended_at then
  local ms, short = math.floor(tonumber(ended_at) * 1000), string.match(ARGV[1], '[^:]+$')
  for _, entry in ipairs(redis.call('XRANGE', KEYS[7], ms, ms)) do
    local f = entry[2]
    for i = 1, #f, 2 do
      if f[i] == 'j' and f[i + 1] == short then redis.call('XDEL', KEYS[7], entry[1]) end
    end
  end
end
if redis.call('HEXISTS', KEYS[1], 'started_at') == 1 then
  attempt_push(KEYS[6], KEYS[1], tonumber(ended_at), status)
end
redis.call('PERSIST', KEYS[1])
redis.call('PERSIST', KEYS[3])
redis.call('PERSIST', KEYS[6])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('HSET', KEYS[1], 'status', 'queued', 'attempts', 0, 'run_at', now_s(), 'deliveries', 0)
redis.call('HDEL', KEYS[1], 'rate_reserved', 'progress', 'progress_message', 'error', 'traceback', 'result',
  'completed_at', 'expires_at', 'failure_reason')
add_entry(job_stream(KEYS[2], KEYS[1]), ARGV[1], ARGV[2])
return {'queued'}
