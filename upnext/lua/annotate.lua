-- annotate: progress, checkpoint and log writes from a running job, only while it is active,
-- so a late write can never resurrect an expired record or touch a finished one.
-- KEYS[1] job hash   KEYS[2] logs list
-- ARGV[1] log entry JSON ('' for none)   ARGV[2..] field, value pairs for the job hash
-- Returns 1 when written, 0 when the job is no longer active.
if redis.call('HGET', KEYS[1], 'status') ~= 'active' then return 0 end
if ARGV[1] ~= '' then redis.call('RPUSH', KEYS[2], ARGV[1]) end
if #ARGV > 1 then
  local fields = {}
  for i = 2, #ARGV do fields[#fields + 1] = ARGV[i] end
  redis.call('HSET', KEYS[1], unpack(fields))
end
return 1
