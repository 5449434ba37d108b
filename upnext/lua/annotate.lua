-- annotate: progress, checkpoint and log writes from a running job, only while it is active,
-- so a late write can never resurrect an expired record or touch a finished one. The log list
-- keeps only the newest entries, so a chatty job cannot grow Redis without bound.
-- KEYS[1] job hash   KEYS[2] logs list
-- ARGV[1] most log entries kept (max_log_entries)   ARGV[2] log entry JSON ('' for none)
-- ARGV[3..] field, value pairs for the job hash
-- Returns 1 when written, 0 when the job is no longer active.
if redis.call('HGET', KEYS[1], 'status') ~= 'active' then return 0 end
if ARGV[2] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[1]), -1)
end
if #ARGV > 2 then
  local fields = {}
  for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
  redis.call('HSET', KEYS[1], unpack(fields))
end
return 1
