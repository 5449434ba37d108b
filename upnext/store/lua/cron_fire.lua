-- cron_fire: enqueue the runs of a cron's due instants and advance its cursor, exactly once.
-- KEYS[1] cron cursor hash   KEYS[2] stream   KEYS[3] the cron's pause flag
-- KEYS[4] job hash of the cron's previous run (its cursor's last_job), or KEYS[1] again when it has none
-- KEYS[5..] job hash of each run
-- ARGV[1] cursor value the caller planned from ('' when none yet)   ARGV[2] new cursor
-- ARGV[3] schedule (expression and zone)   ARGV[4] stream maxlen   ARGV[5] function name
-- ARGV[6] args JSON   ARGV[7] kwargs JSON   ARGV[8] '0': overlap=False (an instant is skipped while
-- the previous run has not ended), '1': runs may overlap
-- ARGV[9] '1' for a run-time cron: it fires only while its cursor hash holds its 'function' (removal
-- deletes the hash, so a worker that read the definition just before cannot bring it back)
-- then 2 values per run, in KEYS order: job id, scheduled instant
-- Returns 0 when nothing was written (another worker already advanced the cursor, the cron is
-- paused: its cursor stays, so its instants wait for the resume, or it was removed); otherwise
-- {1, id of the unfinished run the skipped instants waited on ('' when none was skipped), the
-- skipped instants...}. The cursor hash keeps last_job, and counts skipped and last_skipped_at.
local current = redis.call('HGET', KEYS[1], 'next_at') or ''
if current ~= ARGV[1] or redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
if ARGV[9] == '1' and redis.call('HEXISTS', KEYS[1], 'function') == 0 then return 0 end
local reply = {1, ''}
local busy, blocker = false, ''
local last = redis.call('HGET', KEYS[1], 'last_job') or ''
if ARGV[8] == '0' and KEYS[4] ~= KEYS[1] then
  if last == '' or string.sub(KEYS[4], -#last) ~= last then return 0 end  -- planned from another state
  local status = redis.call('HGET', KEYS[4], 'status')
  busy = status == 'queued' or status == 'active' or status == 'retrying'
  if busy then blocker = last end
end
for i = 5, #KEYS do
  local job_id, instant = ARGV[10 + (i - 5) * 2], ARGV[11 + (i - 5) * 2]
  if busy then
    reply[#reply + 1] = instant
  else
    redis.call('HSET', KEYS[i], 'status', 'queued', 'attempts', 0, 'enqueued_at', now_s(), 'run_at', instant,
      'function', ARGV[5], 'args', ARGV[6], 'kwargs', ARGV[7], 'key', '', 'parent_id', '', 'root_id', job_id,
      'cron_at', instant, 'v', FORMAT)
    add_entry(KEYS[2], job_id, ARGV[4])
    redis.call('HSET', KEYS[1], 'last_job', job_id)
    busy, blocker = ARGV[8] == '0', job_id
  end
end
redis.call('HSET', KEYS[1], 'next_at', ARGV[2], 'schedule', ARGV[3])
if #reply > 2 then
  reply[2] = blocker
  redis.call('HINCRBY', KEYS[1], 'skipped', #reply - 2)
  redis.call('HSET', KEYS[1], 'last_skipped_at', reply[#reply])
end
return reply
