-- retry: end a failed attempt and queue the next one, fenced like finish.
-- KEYS[1] stream   KEYS[2] scheduled zset   KEYS[3] job hash   KEYS[4] leases zset
-- KEYS[5] attempts list; when stats are on, KEYS[6..8] stats minute, hour and total hashes
-- ARGV[1] consumer   ARGV[2] entry id   ARGV[3] job id   ARGV[4] delay_s
-- ARGV[5] error   ARGV[6] traceback   ARGV[7] failure_reason   ARGV[8] stream maxlen
-- ARGV[9] run seconds ('' unknown)
-- The failed attempt's progress is cleared: a retrying job has none until its next attempt reports.
-- The attempt that ended goes to the attempts list; the run counts as 'retried'.
-- Returns 'ok', 'stale' (fenced off, nothing written) or 'terminal' (cancelled meanwhile).
if not holds(KEYS[1], ARGV[2], ARGV[1]) then return 'stale' end
ack(KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[4], ARGV[3])
local current = redis.call('HGET', KEYS[3], 'status')
if not current or is_terminal(current) then return 'terminal' end
local acc, now, stat_keys = stats_new(), now_s(), nil
if #KEYS >= 8 then stat_keys = {KEYS[6], KEYS[7], KEYS[8]} end
if stat_keys then
  stats_run(acc, KEYS[3], ARGV[9])
  stats_count(acc, 'retried')
end
redis.call('HSET', KEYS[3], 'status', 'retrying', 'error', ARGV[5], 'traceback', ARGV[6],
  'failure_reason', ARGV[7], 'deliveries', 0)
redis.call('HDEL', KEYS[3], 'progress', 'progress_message', 'lease')
attempt_push(KEYS[5], KEYS[3], now, 'retry')
local run_at = requeue(job_stream(KEYS[1], KEYS[3]), KEYS[2], ARGV[3], tonumber(ARGV[4]), ARGV[8], now)
redis.call('HSET', KEYS[3], 'run_at', run_at)
stats_write(acc, stat_keys)
return 'ok'
