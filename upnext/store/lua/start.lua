-- start: mark a batch of entries of one task as running, atomically per job, enforcing the
-- task's cluster-wide limits (max_concurrency leases, rate-limit tokens). With a read count it
-- first reads up to that many new entries itself (XREADGROUP, never blocking), so the hot path
-- fetches and starts a batch in one round trip.
-- KEYS[1] stream (normal priority; its high and low streams are KEYS[1]:high and KEYS[1]:low, same
-- slot, read in that order: high, normal, low; an entry is named by its token, see entry_of)
-- KEYS[2] scheduled zset   KEYS[3] leases zset   KEYS[4] rate bucket hash
-- KEYS[5] the task's pause flag   KEYS[5+i] job hash of listed entry i (none when reading)
-- ARGV[1] consumer   ARGV[2] worker id   ARGV[3] max_deliveries   ARGV[4] max_concurrency (0: none)
-- ARGV[5] lease ms   ARGV[6] rate count (0: none)   ARGV[7] rate period s   ARGV[8] stream maxlen
-- ARGV[9] read count (0: start the listed entries)   ARGV[10] job key prefix 'P:{fn}:job:'
-- ARGV[11] the task's name   ARGV[12] ttl_s of a job that ends expired   ARGV[13] '1' when stats are
-- on (an expired job counts as cancelled); then per listed entry i: ARGV[12+2i] entry id, ARGV[13+2i] job id;
-- when reading, ARGV[14] '1' asks for the cursor (below)
-- Keys built from ARGV[10]'s tag 'P:{fn}' (same hash slot, as in purge.lua): when reading, the job
-- hashes; for an expired job its logs, dedup, done channel, history (ended, attempts, ended:key,
-- tree), notify and stats keys.
-- Returns one reply per listed entry; when reading, one {entry id, job id, reply} per entry read
-- (none while the task is paused: nothing is read):
--   {'run', attempts, args, kwargs, parent_id, root_id, key, checkpoint}  start it
--   {'poison', deliveries, key}   started max_deliveries times without its run ending (its worker
--                             died each time; counted per job, across every entry it had): the
--                             caller fails it through finish
--   {'busy'}                  no concurrency lease free: handed back to the stream, not started
--   {'paused'}                the task is paused (the pause landed after this entry was read):
--                             handed back to the stream, not started, no delivery counted
--   {'deferred', run_at}      no rate token now: scheduled at the instant its reserved token
--                             arrives (then it starts without taking another), not started
--   {'stale'}                 no longer ours (reclaimed elsewhere or acked): skip
--   {'duplicate'}             a second entry of a job another entry is running (the job was
--                             queued again while its old entry still waited): acked, not run
--   {'missing'} / {'terminal', status}   acked and dropped: nothing to run
--   {'expired', key}          never started and its expires_at has passed: acked and ended
--                             cancelled with failure_reason 'expired' here, never run (a job that
--                             started once, then retries or was handed back mid-run, never expires)
--   {'garbage'}               (reading only) the entry names no job of this task (no 'id' field, or
--                             not '<task>:<lowercase hex>'): acked, deleted
-- and when ARGV[14] is '1', last: {'cursor', high, normal, low}, the id of the last entry the group
-- was given of each priority's stream after this read ('0-0': none; '' when this call did not read
-- that stream: it had no entry, or the read was filled before it). An XREAD from those ids returns
-- as soon as the task has an entry no worker has read (the fetch loop's wake-up).
local out = {}
local max_deliveries, max_concurrency = tonumber(ARGV[3]), tonumber(ARGV[4])
local lease_ms, rate_count, rate_period = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local now = now_s()
local paused = redis.call('EXISTS', KEYS[5]) == 1
local tag = string.sub(ARGV[10], 1, -6)  -- 'P:{fn}:job:' without ':job:'
local expired_acc = stats_new()

-- Decided here, where the job would start, in the same atomic call: a job never both expires and runs.
local function expires_now(expires_at, attempts)
  return expires_at and tonumber(expires_at) <= now and (tonumber(attempts) or 0) == 0
end

local function expire(job, job_id, expires_at)
  local key, root_id = unpack(redis.call('HMGET', job, 'key', 'root_id'))
  key, root_id = key or '', root_id or ''
  local h = {ended = tag .. ':ended', attempts = tag .. ':attempts:' .. job_id, key_key = tag .. ':ended:key:' .. key,
    tree = tag .. ':tree:' .. root_id, root_id = root_id, notify = tag .. ':notify:' .. job_id}
  cancel_job(job, KEYS[2], tag .. ':logs:' .. job_id, tag .. ':dedup:' .. key, job_id, tonumber(ARGV[12]),
    tag .. ':done:' .. job_id, h, expired_acc, 'expired',
    'job ' .. job_id .. ' expired: not started by its expires_at ' .. expires_at .. ' (unix s), so never run')
  return key
end

local function write_expired_stats()
  if ARGV[13] ~= '1' or not next(expired_acc.counts) then return end
  stats_write(expired_acc, {tag .. ':stats:m:' .. math.floor(now / 60), tag .. ':stats:h:' .. math.floor(now / 3600),
    tag .. ':stats:total'})
end

local function take_lease(job_id)
  if max_concurrency == 0 then return true end
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now * 1000)
  if redis.call('ZCARD', KEYS[3]) >= max_concurrency then return false end
  redis.call('ZADD', KEYS[3], now * 1000 + lease_ms, job_id)
  return true
end

-- Seconds until this job's token arrives (0: now). A token is always taken, borrowing from the
-- future when the bucket is empty, so a deferred job keeps its turn.
local function take_token()
  local rate = rate_count / rate_period
  local b = redis.call('HMGET', KEYS[4], 'tokens', 'ts')
  local tokens = math.min(rate_count, (tonumber(b[1]) or rate_count) + (now - (tonumber(b[2]) or now)) * rate) - 1
  redis.call('HSET', KEYS[4], 'tokens', tostring(tokens), 'ts', tostring(now))
  local wait = tokens < 0 and -tokens / rate or 0
  redis.call('PEXPIRE', KEYS[4], math.ceil((2 * rate_period + wait) * 1000))
  return wait
end

-- The job is active under another entry that is still pending: that run owns it. (A job
-- re-queued by an operator while its old entry still waited has two entries; the lease of a
-- run whose entry is gone, handed back or deferred, is not pending and blocks nothing.)
local function running_elsewhere(status, lease, entry_id)
  if status ~= 'active' or not lease or lease == '' or lease == entry_id then return false end
  return is_pending(KEYS[1], lease)
end

local function start_entry(entry_id, job_id, job, fresh)
  local mine, deliveries = true, 1
  if not fresh then mine, deliveries = holds(KEYS[1], entry_id, ARGV[1]) end
  local f = redis.call('HMGET', job, 'status', 'rate_reserved', 'lease', 'deliveries', 'expires_at', 'attempts')
  local status = f[1]
  -- Runs that never ended (their worker died), counted in the job: its entries change when it is
  -- handed back, made busy or deferred. The entry's own count covers records written before it.
  deliveries = math.max(deliveries, (tonumber(f[4]) or 0) + 1)
  if not mine then
    return {'stale'}
  elseif not status then
    ack(KEYS[1], entry_id)
    return {'missing'}
  elseif is_terminal(status) then
    ack(KEYS[1], entry_id)
    return {'terminal', status}
  elseif running_elsewhere(status, f[3], entry_id) then
    ack(KEYS[1], entry_id)
    return {'duplicate'}
  elseif expires_now(f[5], f[6]) then
    ack(KEYS[1], entry_id)
    return {'expired', expire(job, job_id, f[5])}
  elseif paused then
    ack(KEYS[1], entry_id)
    add_entry(job_stream(KEYS[1], job), job_id, ARGV[8])
    return {'paused'}
  elseif deliveries > max_deliveries then
    return {'poison', deliveries, redis.call('HGET', job, 'key') or ''}
  elseif not take_lease(job_id) then
    ack(KEYS[1], entry_id)
    add_entry(job_stream(KEYS[1], job), job_id, ARGV[8])
    return {'busy'}
  end
  local wait = 0
  if rate_count > 0 and not f[2] then wait = take_token() end
  if wait > 0 then
    redis.call('ZREM', KEYS[3], job_id)
    ack(KEYS[1], entry_id)
    redis.call('ZADD', KEYS[2], now + wait, job_id)
    redis.call('HSET', job, 'rate_reserved', '1')
    return {'deferred', tostring(now + wait)}
  end
  local attempts = redis.call('HINCRBY', job, 'attempts', 1)
  redis.call('HINCRBY', job, 'deliveries', 1)
  -- A run taken over from a dead worker starts afresh: the dead run's progress is not this one's.
  if deliveries > 1 then redis.call('HDEL', job, 'progress', 'progress_message') end
  redis.call('HDEL', job, 'rate_reserved')
  redis.call('HSET', job, 'status', 'active', 'worker', ARGV[2], 'started_at', now,
    'lease', entry_id, 'failure_reason', '', 'error', '', 'traceback', '')
  local r = redis.call('HMGET', job, 'args', 'kwargs', 'parent_id', 'root_id', 'key', 'checkpoint')
  return {'run', attempts, r[1], r[2], r[3], r[4], r[5], r[6]}
end

local read_count, prefix, own = tonumber(ARGV[9]), ARGV[10], ARGV[11] .. ':'
if read_count == 0 then
  for i = 1, #KEYS - 5 do
    out[i] = start_entry(ARGV[12 + 2 * i], ARGV[13 + 2 * i], KEYS[5 + i], false)
  end
  write_expired_stats()
  return out
end
-- The cursor (ARGV[14] '1'): per level, '' when this call did not read that stream (unknown).
local cursor = {'cursor', '', '', ''}
local function with_cursor()
  if ARGV[14] == '1' then out[#out + 1] = cursor end
  return out
end
if paused then return with_cursor() end
-- Strict priority: high entries first, then normal, then low; FIFO within each stream.
for i, level in ipairs({'high', 'normal', 'low'}) do
  local stream = level == 'normal' and KEYS[1] or KEYS[1] .. ':' .. level
  local left = read_count - #out
  if left <= 0 then break end
  if level == 'normal' then ensure_group(stream) end
  -- A high or low stream with no entry (or none at all) has nothing to read, and its cursor can
  -- stay where it was: an XREAD from there returns its next entry.
  if level == 'normal' or redis.call('XLEN', stream) > 0 then
    local read = redis.call('XREADGROUP', 'GROUP', GROUP, ARGV[1], 'COUNT', left, 'STREAMS', stream, '>')
    for _, entry in ipairs(read and read[1] and read[1][2] or {}) do
      local token, fields, job_id = token_of(level, entry[1]), entry[2], ''
      for j = 1, #fields, 2 do
        if fields[j] == 'id' then job_id = fields[j + 1] end
      end
      local reply
      if string.sub(job_id, 1, #own) ~= own or not string.find(job_id, '^[0-9a-f]+$', #own + 1) then
        ack(KEYS[1], token)
        reply = {'garbage'}
      else
        reply = start_entry(token, job_id, prefix .. job_id, true)
      end
      out[#out + 1] = {token, job_id, reply}
    end
    if ARGV[14] == '1' then cursor[i + 1] = last_delivered(stream) or '0-0' end
  end
end
write_expired_stats()
return with_cursor()
