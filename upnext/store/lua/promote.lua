-- promote: move due jobs from the scheduled zset into the stream, each exactly once.
-- KEYS[1] scheduled zset   KEYS[2] stream
-- ARGV[1] max due jobs to move (unused with ARGV[3..])   ARGV[2] stream maxlen (0: none)
-- ARGV[3..] (optional) job ids to move now whatever their run-at time, instead of the due ones
--   (a test's drain(retries=True)); an id no longer in the zset is skipped, so none moves twice.
-- Returns {moved count, seconds until the next scheduled job is due (by Redis's clock) or false}:
-- the caller never compares Redis times with its own clock.
local now = now_s()
local due = {}
if #ARGV > 2 then
  for i = 3, #ARGV do
    if redis.call('ZSCORE', KEYS[1], ARGV[i]) then due[#due + 1] = ARGV[i] end
  end
else
  due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
end
for _, job_id in ipairs(due) do
  add_entry(KEYS[2], job_id, ARGV[2])
  redis.call('ZREM', KEYS[1], job_id)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if not nxt[2] then return {#due, false} end
return {#due, tostring(math.max(tonumber(nxt[2]) - now, 0))}
