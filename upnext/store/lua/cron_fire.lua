-- cron_fire: enqueue the runs of a cron's due instants and advance its cursor, exactly once.
-- KEYS[1] cron cursor hash   KEYS[2] stream   KEYS[3] the cron's pause flag   KEYS[4..] job hash of each run
-- ARGV[1] cursor value the caller planned from ('' when none yet)   ARGV[2] new cursor
-- ARGV[3] schedule expression   ARGV[4] stream maxlen   ARGV[5] function name
-- then 2 values per run, in KEYS order: job id, scheduled instant
-- Returns 1 when this call advanced the cursor, 0 when another worker already had or the cron is
-- paused (nothing written: a paused cron's cursor stays, so its instants wait for the resume).
local current = redis.call('HGET', KEYS[1], 'next_at') or ''
if current ~= ARGV[1] or redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
for i = 4, #KEYS do
  local job_id, instant = ARGV[6 + (i - 4) * 2], ARGV[7 + (i - 4) * 2]
  redis.call('HSET', KEYS[i], 'status', 'queued', 'attempts', 0, 'enqueued_at', now_s(), 'run_at', instant,
    'function', ARGV[5], 'args', '[]', 'kwargs', '{}', 'key', '', 'parent_id', '', 'root_id', job_id,
    'cron_at', instant, 'v', FORMAT)
  add_entry(KEYS[2], job_id, ARGV[4])
end
redis.call('HSET', KEYS[1], 'next_at', ARGV[2], 'schedule', ARGV[3])
return 1
