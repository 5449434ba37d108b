-- lock: take or keep a lock that expires unless renewed (the cron leader).
-- KEYS[1] lock key   ARGV[1] owner id   ARGV[2] ttl in ms
-- Returns 1 if ARGV[1] holds the lock now, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
