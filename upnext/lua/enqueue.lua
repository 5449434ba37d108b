-- enqueue: write a new job and make it runnable (stream) or scheduled (zset), with dedup.
-- KEYS[1] job hash   KEYS[2] stream   KEYS[3] scheduled zset   KEYS[4] dedup key
-- ARGV[1] job id     ARGV[2] delay_s (<= 0: run now)   ARGV[3] stream maxlen (0: none)
-- ARGV[4] idempotency key ('' for none)   ARGV[5..] field, value pairs of the record
-- Returns the id of the job now holding the work: ARGV[1], or the live job that already
-- holds the idempotency key (then nothing is written).
if ARGV[4] ~= '' then
  local live = redis.call('GET', KEYS[4])
  if live then return live end
  redis.call('SET', KEYS[4], ARGV[1])
end
local fields = {}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], 'status', 'queued', 'attempts', 0, 'enqueued_at', now_s(), unpack(fields))
local run_at = requeue(KEYS[2], KEYS[3], ARGV[1], tonumber(ARGV[2]), ARGV[3])
redis.call('HSET', KEYS[1], 'run_at', run_at)
return ARGV[1]
