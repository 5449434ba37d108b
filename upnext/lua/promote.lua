-- promote: move due jobs from the scheduled zset into the stream, each exactly once.
-- KEYS[1] scheduled zset   KEYS[2] stream
-- ARGV[1] max jobs to move   ARGV[2] stream maxlen (0: none)
-- Returns {moved count, score of the next scheduled job or false}.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_s(), 'LIMIT', 0, tonumber(ARGV[1]))
for _, job_id in ipairs(due) do
  add_entry(KEYS[2], job_id, ARGV[2])
  redis.call('ZREM', KEYS[1], job_id)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {#due, nxt[2] or false}
