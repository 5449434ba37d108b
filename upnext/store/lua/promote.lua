-- promote: move due jobs from the scheduled zset into the stream, each exactly once.
-- KEYS[1] scheduled zset   KEYS[2] stream (normal; a job of another priority goes to its own)
-- ARGV[1] max due jobs to move (unused with ARGV[4..])   ARGV[2] stream maxlen (0: none)
-- ARGV[3] job key prefix 'P:{fn}:job:' (each job's record names its priority)
-- ARGV[4..] (optional) job ids to move now whatever their run-at time, instead of the due ones
--   (a test's drain(retries=True)); an id no longer in the zset is skipped, so none moves twice.
-- Returns {moved count, seconds until the next scheduled job is due (by Redis's clock) or false}:
-- the caller never compares Redis times with its own clock.
if redis.call('ZCARD', KEYS[1]) == 0 then return {0, false} end  -- an idle worker's usual look: one call
local now = now_s()
local due = {}
if #ARGV > 3 then
  for i = 4, #ARGV do
    if redis.call('ZSCORE', KEYS[1], ARGV[i]) then due[#due + 1] = ARGV[i] end
  end
else
  due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
end
for _, job_id in ipairs(due) do
  add_entry(job_stream(KEYS[2], ARGV[3] .. job_id), job_id, ARGV[2])
  redis.call('ZREM', KEYS[1], job_id)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if not nxt[2] then return {#due, false} end
return {#due, tostring(math.max(tonumber(nxt[2]) - now, 0))}
