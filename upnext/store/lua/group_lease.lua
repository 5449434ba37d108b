-- group_lease: take, give back or refresh leases of one routing group's cluster-wide cap
-- (group_max_concurrency, shared by every task of the group). Always a call of its own: the
-- group's zset lives under the group's own hash tag, so no call may also touch a task's keys
-- (Redis Cluster: one slot per call). A lease is a member (job id @ stream entry id, or a
-- placeholder reserved before a fetch-and-start) whose score is its expiry: a dead worker's
-- leases lapse after lease ms unless the worker's keeper refreshes them.
-- KEYS[1] the group's leases zset (member -> expiry, ms of Redis time)
-- ARGV[1] the group's cap (0: refresh only, no new lease is granted)   ARGV[2] lease ms   ARGV[3] n: how many members to give back first
-- ARGV[4 .. 3+n] members to give back   ARGV[4+n ..] members to take or refresh, in order
-- Returns {free, held_1, held_2, ...}: the leases still free afterwards, then per member to take
-- 1 if it holds a lease now (a member that held one keeps it, with a new expiry) or 0 (none free).
local key, cap, lease_ms, n = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local now_ms = now_s() * 1000
for i = 4, 3 + n do redis.call('ZREM', key, ARGV[i]) end
redis.call('ZREMRANGEBYSCORE', key, '-inf', now_ms)
local held = redis.call('ZCARD', key)
local out = {0}
for i = 4 + n, #ARGV do
  local member = ARGV[i]
  if redis.call('ZSCORE', key, member) then
    redis.call('ZADD', key, now_ms + lease_ms, member)
    out[#out + 1] = 1
  elseif held < cap then
    redis.call('ZADD', key, now_ms + lease_ms, member)
    held = held + 1
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
out[1] = math.max(cap - held, 0)
return out
