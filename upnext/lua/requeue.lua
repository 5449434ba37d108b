-- requeue: run a failed or cancelled job again under the same id (operator `retry`).
-- KEYS[1] job hash   KEYS[2] stream   KEYS[3] logs list   KEYS[4] failed-jobs index
-- ARGV[1] job id   ARGV[2] stream maxlen
-- Attempts start again from zero; the record and its logs lose their TTL until it ends again.
-- A job cancelled while it ran is refused until its worker has stopped it (its entry is acked):
-- that run's late finish would otherwise overwrite the new one, and both would run at once.
-- Returns {'queued'}, {'missing'} or {'not_ended', status}.
local status, lease = unpack(redis.call('HMGET', KEYS[1], 'status', 'lease'))
if not status then return {'missing'} end
if status ~= 'failed' and status ~= 'cancelled' then return {'not_ended', status} end
if lease and lease ~= '' then
  local ok, pending = pcall(redis.call, 'XPENDING', KEYS[2], GROUP, lease, lease, 1)
  if ok and #pending > 0 then return {'not_ended', status .. ', its run has not stopped yet'} end
end
redis.call('PERSIST', KEYS[1])
redis.call('PERSIST', KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('HSET', KEYS[1], 'status', 'queued', 'attempts', 0, 'error', '', 'traceback', '',
  'failure_reason', '', 'result', '', 'completed_at', '', 'run_at', now_s())
redis.call('HDEL', KEYS[1], 'rate_reserved')
add_entry(KEYS[2], ARGV[1], ARGV[2])
return {'queued'}
