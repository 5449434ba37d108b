-- annotate: progress, checkpoint and log writes from a running job, only while this run holds
-- it (active, its stream entry still pending with its worker: fenced like finish), so a late
-- write can never resurrect an expired record, touch a finished one, or overwrite what the run
-- of a worker that reclaimed the job wrote. The log list keeps only the newest entries, so a
-- chatty job cannot grow Redis without bound.
-- KEYS[1] job hash   KEYS[2] logs list   KEYS[3] stream
-- ARGV[1] the run's stream entry id ('' skips the fencing check)   ARGV[2] the run's consumer
-- ARGV[3] most log entries kept (max_log_entries)   ARGV[4] log entry JSON ('' for none)
-- ARGV[5..] field, value pairs for the job hash
-- Returns 1 when written, 0 when the job is no longer this run's.
if redis.call('HGET', KEYS[1], 'status') ~= 'active' then return 0 end
if ARGV[1] ~= '' and not holds(KEYS[3], ARGV[1], ARGV[2]) then return 0 end
if ARGV[4] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[4])
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
end
if #ARGV > 4 then
  local fields = {}
  for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
  redis.call('HSET', KEYS[1], unpack(fields))
end
return 1
