-- release: hand a delivered job back to the stream at once (graceful stop, or an entry
-- fetched beyond free capacity), so another worker runs it without waiting for a reclaim.
-- KEYS[1] stream   KEYS[2] job hash   KEYS[3] leases zset   KEYS[4] attempts list
-- ARGV[1] consumer   ARGV[2] entry id   ARGV[3] job id   ARGV[4] stream maxlen
-- ARGV[5] '1' when the job was marked started by this delivery: its attempt is given back, it
-- is queued again with no progress (nothing of it runs now) and its run counts as ended (not a
-- death): an attempt entry with outcome 'released'. '0': the status and progress are left as they were (queued, retrying, or active under
-- another entry).
-- Returns 'ok', 'stale' or 'terminal' (then the entry is only acked).
if not holds(KEYS[1], ARGV[2], ARGV[1]) then return 'stale' end
ack(KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[3])
local current = redis.call('HGET', KEYS[2], 'status')
if not current or is_terminal(current) then return 'terminal' end
if ARGV[5] == '1' then
  attempt_push(KEYS[4], KEYS[2], now_s(), 'released')
  redis.call('HINCRBY', KEYS[2], 'attempts', -1)
  redis.call('HSET', KEYS[2], 'status', 'queued', 'deliveries', 0)
  redis.call('HDEL', KEYS[2], 'lease')
  redis.call('HDEL', KEYS[2], 'progress', 'progress_message')
end
add_entry(job_stream(KEYS[1], KEYS[2]), ARGV[3], ARGV[4])  -- back into its priority's stream
return 'ok'
