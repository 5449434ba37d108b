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

-- Priorities (upnext/store/keys.py): a task's normal stream is `stream`; its high and low ones
-- are `stream:high` and `stream:low`, same hash slot. A delivery names its entry with a token:
-- the entry id in the normal stream, '<level>/<id>' in another. (stream, token) -> (its stream, id).
local function entry_of(stream, token)
  local level, id = string.match(token, '^(%a+)/(.+)$')
  if level then return stream .. ':' .. level, id end
  return stream, token
end

local function token_of(level, entry_id)
  if level == 'normal' then return entry_id end
  return level .. '/' .. entry_id
end

-- The stream a job is queued in: by its record's priority (absent: normal).
local function job_stream(stream, job)
  local level = redis.call('HGET', job, 'priority')
  if level == 'high' or level == 'low' then return stream .. ':' .. level end
  return stream
end

-- The fencing check: true while stream entry `token` is still pending with `consumer`.
-- Once another worker reclaims it (XAUTOCLAIM) or it was acked, the old holder is fenced off.
local function holds(stream, token, consumer)
  local s, entry_id = entry_of(stream, token)
  local ok, pending = pcall(redis.call, 'XPENDING', s, GROUP, entry_id, entry_id, 1)
  if not ok or #pending == 0 then return false, 0 end
  return pending[1][2] == consumer, pending[1][4]
end

-- True while entry `token` is pending with any consumer (a run that has not stopped).
local function is_pending(stream, token)
  local s, entry_id = entry_of(stream, token)
  local ok, pending = pcall(redis.call, 'XPENDING', s, GROUP, entry_id, entry_id, 1)
  return ok and #pending > 0
end

local function ack(stream, token)
  local s, entry_id = entry_of(stream, token)
  redis.call('XACK', s, GROUP, entry_id)
  redis.call('XDEL', s, entry_id)
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
-- Its waiters are told: the one that submitted it with ``wait()`` (its record holds 'notify')
-- blocks on its notify list, which gets one message; the done channel gets one always, the
-- message when NUMSUB counts a subscriber, else only the status (NUMSUB counts neither pattern
-- subscribers nor, on Redis Cluster, those of other nodes: such a waiter reads the record after
-- the word). The message (settle_message) is the whole record (JSON [field, value, ...]) when it
-- is small, so the waiter needs no read after it; else only the status, which the caller passes.
-- A large record is never published: a message over the pubsub output-buffer limit makes Redis
-- close the waiter's connection.
local PUBLISH_RECORD_MAX_BYTES = 65536
local BULKY_FIELDS = {'result', 'error', 'traceback', 'args', 'kwargs', 'checkpoint', 'progress_message'}

local function settle_message(job, status)
  local bulk = 0
  for _, name in ipairs(BULKY_FIELDS) do bulk = bulk + redis.call('HSTRLEN', job, name) end
  if bulk <= PUBLISH_RECORD_MAX_BYTES then return cjson.encode(redis.call('HGETALL', job)) end
  return status
end

-- notified: whether the record holds 'notify', if the caller read it already (nil: read here).
local function settle(job, logs, dedup, job_id, ttl_s, channel, status, notify, notified)
  local message = nil
  if notified == nil then notified = redis.call('HEXISTS', job, 'notify') == 1 end
  if notified then
    message = settle_message(job, status)
    redis.call('RPUSH', notify, message)
    redis.call('EXPIRE', notify, ttl_s)
  end
  redis.call('EXPIRE', job, ttl_s)
  redis.call('EXPIRE', logs, ttl_s)
  if dedup and redis.call('GET', dedup) == job_id then redis.call('DEL', dedup) end  -- nil: the job has no key
  if redis.call('PUBSUB', 'NUMSUB', channel)[2] > 0 then
    redis.call('PUBLISH', channel, message or settle_message(job, status))
  else
    redis.call('PUBLISH', channel, status)
  end
end

-- Stats (upnext/store/keys.py): counters and run/wait histograms of a batch, summed here and
-- written once per stats key at the end of the call. STAT_BOUNDS is keys.STAT_BUCKETS_S without
-- its last bound (inf): a value above 1800 s lands in bucket 15.
local STAT_BOUNDS = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800}
local STATS_MINUTE_TTL_S, STATS_HOUR_TTL_S = 90000, 31 * 24 * 3600

local function stat_bucket(seconds)
  for i, bound in ipairs(STAT_BOUNDS) do
    if seconds <= bound then return i - 1 end
  end
  return #STAT_BOUNDS
end

local function stats_count(acc, field)
  acc.counts[field] = (acc.counts[field] or 0) + 1
end

local function stats_time(acc, name, seconds)
  if seconds < 0 then seconds = 0 end
  stats_count(acc, name .. '_n')
  stats_count(acc, name .. '_' .. stat_bucket(seconds))
  acc.sums[name .. '_sum'] = (acc.sums[name .. '_sum'] or 0) + seconds
end

-- A run that ended: its run time (run_s, '' when unknown: a poison job's run died unmeasured)
-- and its queue wait, from when it was due (enqueued, or its delay's or retry's run-at) to started.
-- times: the job's {started_at, run_at, enqueued_at} as HMGET returns them, if the caller read
-- them already (nil: read here).
local function stats_run(acc, job, run_s, times)
  if run_s == '' then return end
  stats_time(acc, 'run', tonumber(run_s))
  local started, run_at, enqueued = unpack(times or redis.call('HMGET', job, 'started_at', 'run_at', 'enqueued_at'))
  if started then
    stats_time(acc, 'wait', tonumber(started) - math.max(tonumber(run_at) or 0, tonumber(enqueued) or 0))
  end
end

-- Write the batch's sums into the minute, hour and total hashes (stat_keys: those three names,
-- or nil when the stats setting is off).
local function stats_write(acc, stat_keys)
  if not stat_keys then return end
  for _, key in ipairs(stat_keys) do
    for field, n in pairs(acc.counts) do redis.call('HINCRBY', key, field, n) end
    for field, s in pairs(acc.sums) do redis.call('HINCRBYFLOAT', key, field, s) end
  end
  if next(acc.counts) then
    redis.call('EXPIRE', stat_keys[1], STATS_MINUTE_TTL_S)
    redis.call('EXPIRE', stat_keys[2], STATS_HOUR_TTL_S)
  end
end

local function stats_new()
  return {counts = {}, sums = {}}
end

-- History (upnext/store/keys.py): an ended job gets an entry in its function's ended stream
-- (fields j: its id without the function, s: its status; entries older than keep_s trimmed, a
-- stream node at a time, by the same XADD), the latest holder of its idempotency key, and its
-- workflow tree. The entry's id is <the ms of now>-<seq>, so a listing tells the entry of the
-- job's latest end (the ms of its completed_at) from an older one. Returns completed_at: now, or
-- when the server clock went back behind the stream's last entry, that entry's later instant.
local function history_add(ended, job_id, status, now, keep_s, key_key, key, tree_key, root_id, ttl_s)
  local trim, fields = math.floor((now - keep_s) * 1000), {'j', string.match(job_id, '[^:]+$'), 's', status}
  local at = now
  local ok = pcall(redis.call, 'XADD', ended, 'MINID', '~', trim, math.floor(now * 1000) .. '-*', unpack(fields))
  if not ok then
    local entry = redis.call('XADD', ended, 'MINID', '~', trim, '*', unpack(fields))
    at = tonumber(string.match(entry, '^%d+')) / 1000
  end
  if key ~= '' then redis.call('SET', key_key, job_id, 'EX', ttl_s) end
  if root_id ~= '' then
    redis.call('ZADD', tree_key, at, job_id)
    if redis.call('TTL', tree_key) < ttl_s then redis.call('EXPIRE', tree_key, ttl_s) end
  end
  return at
end

-- One ended run of a job that runs again (retry, hand-back) as a JSON entry of its attempts
-- list; the newest 100 are kept. The last run of a job is its record's own fields.
local ATTEMPTS_KEPT = 100
local function attempt_push(attempts, job, ended_at, outcome)
  local f = redis.call('HMGET', job, 'attempts', 'started_at', 'worker', 'error')
  -- Instants as text: cjson would round a unix time to 14 digits (a tenth of a millisecond).
  redis.call('RPUSH', attempts, cjson.encode({attempt = tonumber(f[1]), started_at = f[2] or '',
    ended_at = string.format('%.6f', ended_at or 0), worker = f[3] or '', outcome = outcome, error = f[4] or ''}))
  redis.call('LTRIM', attempts, -ATTEMPTS_KEPT, -1)
end

-- Cancel a job that has not ended (cancel, purge): terminal at once, its data then expires.
-- h: the history keys of the job's function and the job: ended (stream), attempts, key_key (its
-- idempotency key's ended:key), tree (its workflow tree's), root_id ('' when none); and notify,
-- its notify list (see settle).
-- reason and error: its failure_reason and error (default 'cancelled'; start.lua's expiry: 'expired').
local function cancel_job(job, scheduled, logs, dedup, job_id, ttl_s, channel, h, acc, reason, error)
  redis.call('ZREM', scheduled, job_id)
  local key = redis.call('HGET', job, 'key') or ''
  local at = history_add(h.ended, job_id, 'cancelled', now_s(), ttl_s, h.key_key, key, h.tree, h.root_id, ttl_s)
  redis.call('HSET', job, 'status', 'cancelled', 'failure_reason', reason or 'cancelled', 'error', error or 'cancelled',
    'completed_at', at)
  redis.call('HDEL', job, 'deliveries', 'traceback')
  redis.call('EXPIRE', h.attempts, ttl_s)
  stats_count(acc, 'cancelled')
  settle(job, logs, dedup, job_id, ttl_s, channel, 'cancelled', h.notify)
end
