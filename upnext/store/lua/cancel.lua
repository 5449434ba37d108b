-- cancel: make a job terminal 'cancelled' unless it already ended.
-- KEYS[1] job hash   KEYS[2] scheduled zset   KEYS[3] logs list   KEYS[4] dedup key
-- KEYS[5] ended stream   KEYS[6] attempts list   KEYS[7] ended:key of its idempotency key
-- KEYS[8] its workflow tree zset   KEYS[9] its notify list; when stats are on, KEYS[10..12] stats
-- minute, hour and total hashes
-- ARGV[1] job id   ARGV[2] ttl_s   ARGV[3] done channel   ARGV[4] root id ('' none)
-- A queued job's stream entry is left for the fetcher, which acks it unrun (start.lua);
-- a running job keeps its entry until its worker notices, stops it and finishes (fenced).
-- Returns {'cancelled', previous status}, {'terminal', status} or {'missing'}.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing'} end
if is_terminal(status) then return {'terminal', status} end
local acc = stats_new()
cancel_job(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], tonumber(ARGV[2]), ARGV[3],
  {ended = KEYS[5], attempts = KEYS[6], key_key = KEYS[7], tree = KEYS[8], root_id = ARGV[4], notify = KEYS[9]}, acc)
if #KEYS >= 12 then stats_write(acc, {KEYS[10], KEYS[11], KEYS[12]}) end
return {'cancelled', status}
