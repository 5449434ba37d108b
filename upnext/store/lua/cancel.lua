-- cancel: make a job terminal 'cancelled' unless it already ended.
-- KEYS[1] job hash   KEYS[2] scheduled zset   KEYS[3] logs list   KEYS[4] dedup key
-- ARGV[1] job id   ARGV[2] ttl_s   ARGV[3] done channel
-- A queued job's stream entry is left for the fetcher, which acks it unrun (start.lua);
-- a running job keeps its entry until its worker notices, stops it and finishes (fenced).
-- Returns {'cancelled', previous status}, {'terminal', status} or {'missing'}.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing'} end
if is_terminal(status) then return {'terminal', status} end
cancel_job(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], tonumber(ARGV[2]), ARGV[3])
return {'cancelled', status}
