-- finish: record the outcome of a batch of runs of one task, ack and trim their entries, and
-- write its history and stats in the same call.
-- KEYS[1] stream   KEYS[2] leases zset   KEYS[3] failed-jobs index (zset)   KEYS[4] ended stream
-- then, when stats are on, KEYS[5..7]: stats minute, hour and total hashes
-- ARGV[1] consumer   ARGV[2] ttl_s of failed and cancelled jobs   ARGV[3] ttl_s of completed jobs
-- ARGV[4] the task's key tag (P:{fn}, keys.tag)
-- ARGV[5] the jobs, a JSON array with one array per job: its Completion as it is (records.py),
-- {delivery {function, entry id, job id, deliveries}, status, result, error, traceback,
-- failure_reason, retry delay (unused here), idempotency key ('' none), root id ('' unknown; the
-- job's own: a root), run seconds (null: unknown)}
-- (one argument, not ten per job, encoded by json in C: any per-job packing is Python work for the
-- worker, per job)
-- A job's own keys (record, logs, attempts, notify list, dedup and ended:key of its idempotency
-- key, its workflow tree) are built here from the tag, as start.lua builds them: under the same
-- {fn} hash tag, so in the declared keys' slot. Sending them would triple the bytes of a batch,
-- the largest per-job cost of a drain (bench/README.md).
-- Empty fields are deleted, not stored: an ended record keeps only what it has.
-- Returns one word per job: 'ok'; 'stale' (fenced: our delivery was reclaimed, nothing
-- written); 'terminal' (already finished or cancelled: acked, record untouched); 'missing'.
local out = {}
local consumer, ttl_s, completed_ttl_s, tag = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local jobs = cjson.decode(ARGV[5])
local stat_keys = nil
if #KEYS > 4 then stat_keys = {KEYS[5], KEYS[6], KEYS[7]} end
local acc = stats_new()
local now = now_s()
local longest = math.max(ttl_s, completed_ttl_s)  -- the ended stream keeps entries this long

local function set_or_drop(job, fields)
  local set, drop = {}, {}
  for i = 1, #fields, 2 do
    if fields[i + 1] == '' then drop[#drop + 1] = fields[i]
    else set[#set + 1] = fields[i]; set[#set + 1] = fields[i + 1] end
  end
  if #set > 0 then redis.call('HSET', job, unpack(set)) end
  if #drop > 0 then redis.call('HDEL', job, unpack(drop)) end
end

local function finish_job(job, job_id, a, notified)
  local status, key, root_id = a[2], a[8], a[9]
  if root_id == job_id then root_id = '' end  -- a root: no tree to index it under
  local ttl = status == 'complete' and completed_ttl_s or ttl_s
  local at = history_add(KEYS[4], job_id, status, now, longest, tag .. ':ended:key:' .. key, key,
    tag .. ':tree:' .. root_id, root_id, ttl)
  set_or_drop(job, {'status', status, 'result', a[3], 'error', a[4], 'traceback', a[5],
    'failure_reason', a[6], 'completed_at', at, 'lease', '', 'deliveries', ''})
  redis.call('EXPIRE', tag .. ':attempts:' .. job_id, ttl)
  settle(job, tag .. ':logs:' .. job_id, key ~= '' and tag .. ':dedup:' .. key or nil, job_id, ttl, tag .. ':done:' .. job_id, status,
    tag .. ':notify:' .. job_id, notified)
  if status == 'failed' then redis.call('ZADD', KEYS[3], at, job_id) end
  stats_count(acc, status == 'complete' and 'completed' or status)
end

for i, a in ipairs(jobs) do
  local entry_id, job_id = a[1][2], a[1][3]
  local job = tag .. ':job:' .. job_id
  if not holds(KEYS[1], entry_id, consumer) then
    out[i] = 'stale'
  else
    ack(KEYS[1], entry_id)
    redis.call('ZREM', KEYS[2], job_id)
    -- one read for what the outcome, the stats and the waiter need (HMGET gives false for a field unset)
    local f = redis.call('HMGET', job, 'status', 'started_at', 'run_at', 'enqueued_at', 'notify')
    local current = f[1]
    if not current then
      out[i] = 'missing'
    else
      if stat_keys and a[10] ~= cjson.null then stats_run(acc, job, a[10], {f[2], f[3], f[4]}) end  -- a run cancelled midway ran too
      if is_terminal(current) then
        out[i] = 'terminal'
      else
        finish_job(job, job_id, a, f[5] ~= false)
        out[i] = 'ok'
      end
    end
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - ttl_s)
stats_write(acc, stat_keys)
return out
