-- start: mark a batch of delivered entries of one task as running, atomically per job.
-- KEYS[1] stream   KEYS[1+i] job hash of entry i
-- ARGV[1] consumer   ARGV[2] worker id   ARGV[3] max_deliveries   ARGV[3+i] entry id i
-- Returns one reply per entry:
--   {'run', attempts, args, kwargs, parent_id, root_id, key, checkpoint}  start it
--   {'poison', deliveries}    delivered too often: the caller fails it through finish
--   {'stale'}                 no longer ours (reclaimed elsewhere or acked): skip
--   {'missing'} / {'terminal', status}   acked and dropped: nothing to run
local out = {}
local max_deliveries = tonumber(ARGV[3])
local started_at = now_s()
for i = 2, #KEYS do
  local entry_id, job = ARGV[2 + i], KEYS[i]
  local mine, deliveries = holds(KEYS[1], entry_id, ARGV[1])
  local status = redis.call('HGET', job, 'status')
  if not mine then
    out[#out + 1] = {'stale'}
  elseif not status then
    ack(KEYS[1], entry_id)
    out[#out + 1] = {'missing'}
  elseif is_terminal(status) then
    ack(KEYS[1], entry_id)
    out[#out + 1] = {'terminal', status}
  elseif deliveries > max_deliveries then
    out[#out + 1] = {'poison', deliveries}
  else
    local attempts = redis.call('HINCRBY', job, 'attempts', 1)
    redis.call('HSET', job, 'status', 'active', 'worker', ARGV[2], 'started_at', started_at,
      'lease', entry_id, 'failure_reason', '', 'error', '', 'traceback', '')
    local f = redis.call('HMGET', job, 'args', 'kwargs', 'parent_id', 'root_id', 'key', 'checkpoint')
    out[#out + 1] = {'run', attempts, f[1], f[2], f[3], f[4], f[5], f[6]}
  end
end
return out
