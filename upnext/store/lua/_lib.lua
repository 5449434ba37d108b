-- Shared helpers, prepended to every script by upnext/scripts.py (never run alone).
-- Group name is fixed: 'workers'. Times are Redis server time, in unix seconds.

local GROUP = 'workers'

local function now_s()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

local function is_terminal(status)
  return status == 'complete' or status == 'failed' or status == 'cancelled'
end

-- A stream that does not exist yet (or vanished with a FLUSHALL or a restart without
-- persistence) gets its group at id 0, so every entry added afterwards is delivered.
local function ensure_group(stream)
  if redis.call('EXISTS', stream) == 0 then
    redis.call('XGROUP', 'CREATE', stream, GROUP, '0', 'MKSTREAM')
  end
end

-- The version of the job record format (upnext/dataformat.py FORMAT_VERSION), stamped in each job.
local FORMAT = '2'

-- The id right after `id` ('5-3' -> '5-4'): the first one a MINID trim keeps.
local function next_id(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return ms .. '-' .. (tonumber(seq) + 1)
end

-- stream_maxlen: trim only acknowledged entries, never one that is undelivered or running.
-- Everything below both the oldest pending entry and the first undelivered one was acked.
-- The id of the last entry the group delivered (nil when the stream has no group).
local function last_delivered(stream)
  for _, group in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    for j = 1, #group, 2 do
      if group[j] == 'last-delivered-id' then return group[j + 1] end
    end
  end
  return nil
end

local function trim_acked(stream)
  local delivered = last_delivered(stream)
  if not delivered then return end
  local keep = next_id(delivered)
  local oldest = redis.call('XPENDING', stream, GROUP)[2]
  if oldest then keep = oldest end
  redis.call('XTRIM', stream, 'MINID', keep)
end

local function add_entry(stream, job_id, maxlen)
  ensure_group(stream)
  local entry_id = redis.call('XADD', stream, '*', 'id', job_id)
  if tonumber(maxlen) > 0 and redis.call('XLEN', stream) > tonumber(maxlen) then trim_acked(stream) end
  return entry_id
end

-- The fencing check: true while stream entry `entry_id` is still pending with `consumer`.
-- Once another worker reclaims it (XAUTOCLAIM) or it was acked, the old holder is fenced off.
local function holds(stream, entry_id, consumer)
  local ok, pending = pcall(redis.call, 'XPENDING', stream, GROUP, entry_id, entry_id, 1)
  if not ok or #pending == 0 then return false, 0 end
  return pending[1][2] == consumer, pending[1][4]
end

local function ack(stream, entry_id)
  redis.call('XACK', stream, GROUP, entry_id)
  redis.call('XDEL', stream, entry_id)
end

-- Queue a job again: into the scheduled zset when it has to wait, else straight to the stream.
-- Returns when it runs: ``now`` (the caller's now_s(), read once per script) plus the delay.
local function requeue(stream, scheduled, job_id, delay_s, maxlen, now)
  if delay_s > 0 then
    redis.call('ZADD', scheduled, now + delay_s, job_id)
    return now + delay_s
  end
  add_entry(stream, job_id, maxlen)
  return now
end

-- A job reaches a terminal state: its data now expires after ttl_s and its key is free again.
-- Its done channel gets the whole record (JSON [field, value, ...]) when a waiter is subscribed
-- here and the record is small, so the waiter needs no read after the message; else only the
-- status, which the caller passes (NUMSUB counts neither pattern subscribers nor, on Redis
-- Cluster, those of other nodes: such a waiter reads the record after the word). A large record
-- is never published: a message over the pubsub output-buffer limit makes Redis close the
-- waiter's connection.
local PUBLISH_RECORD_MAX_BYTES = 65536
local BULKY_FIELDS = {'result', 'error', 'traceback', 'args', 'kwargs', 'checkpoint', 'progress_message'}

local function settle(job, logs, dedup, job_id, ttl_s, channel, status)
  redis.call('EXPIRE', job, ttl_s)
  redis.call('EXPIRE', logs, ttl_s)
  if redis.call('GET', dedup) == job_id then redis.call('DEL', dedup) end
  if redis.call('PUBSUB', 'NUMSUB', channel)[2] > 0 then
    local bulk = 0
    for _, name in ipairs(BULKY_FIELDS) do bulk = bulk + redis.call('HSTRLEN', job, name) end
    if bulk <= PUBLISH_RECORD_MAX_BYTES then
      redis.call('PUBLISH', channel, cjson.encode(redis.call('HGETALL', job)))
      return
    end
  end
  redis.call('PUBLISH', channel, status)
end

-- Cancel a job that has not ended (cancel, purge): terminal at once, its data then expires.
local function cancel_job(job, scheduled, logs, dedup, job_id, ttl_s, channel)
  redis.call('ZREM', scheduled, job_id)
  redis.call('HSET', job, 'status', 'cancelled', 'failure_reason', 'cancelled',
    'error', 'cancelled', 'completed_at', now_s())
  settle(job, logs, dedup, job_id, ttl_s, channel, 'cancelled')
end
