-- The 'completed' and 'failed' counters of stats hashes of one function (the dashboard's charts):
-- one call per function instead of one HMGET reply per hash, so the client parses 100 replies
-- for 100 functions, not 8,400.
-- KEYS[1..n]  stats hashes of one function (minutes or hours), in the order wanted
-- Reply: {completed of KEYS[1], failed of KEYS[1], completed of KEYS[2], ...}, 0 where absent
local out = {}
for i, key in ipairs(KEYS) do
  local counts = redis.call('HMGET', key, 'completed', 'failed')
  out[2 * i - 1] = tonumber(counts[1]) or 0
  out[2 * i] = tonumber(counts[2]) or 0
end
return out
