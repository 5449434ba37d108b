-- stamp_format: record that a worker writing data format ARGV[1] runs on this Redis. The stored
-- format only ever rises, and a value that is not a whole number is left for the caller to report.
-- KEYS[1] the format key (P:format)   ARGV[1] the caller's format version (a whole number)
-- Returns the value stored before the call (nil when absent).
local stored = redis.call('GET', KEYS[1])
if not stored or (string.match(stored, '^%d+$') and tonumber(stored) < tonumber(ARGV[1])) then
  redis.call('SET', KEYS[1], ARGV[1])
end
return stored
