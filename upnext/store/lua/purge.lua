-- purge: cancel up to a batch of a task's waiting jobs (undelivered stream entries, scheduled
-- jobs) in one atomic step, so a job a worker starts meanwhile is never cancelled and no pending
-- entry is deleted. Undelivered entries are those after the group's last-delivered id.
-- KEYS[1] stream (normal; KEYS[1]:high and KEYS[1]:low too, same slot)   KEYS[2] scheduled zset;
-- when stats are on, KEYS[3..5] stats minute, hour and total hashes
-- ARGV[1] the task's key tag 'P:{fn}' (its job, logs, dedup, history and notify keys and done
-- channels are built from it: same hash slot)   ARGV[2] ttl_s   ARGV[3] max jobs to look at in this call
-- Returns {jobs cancelled, jobs looked at}: call again while the second is ARGV[3].
local tag, ttl_s, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local cancelled, seen = 0, 0
local acc = stats_new()

local function cancel_waiting(job_id)
  local job = tag .. ':job:' .. job_id
  local status, key, root_id = unpack(redis.call('HMGET', job, 'status', 'key', 'root_id'))
  if status == 'queued' or status == 'retrying' then
    if root_id == job_id then root_id = '' end
    local h = {ended = tag .. ':ended', attempts = tag .. ':attempts:' .. job_id,
      key_key = tag .. ':ended:key:' .. (key or ''), tree = tag .. ':tree:' .. (root_id or ''), root_id = root_id or '',
      notify = tag .. ':notify:' .. job_id}
    cancel_job(job, KEYS[2], tag .. ':logs:' .. job_id, tag .. ':dedup:' .. (key or ''), job_id, ttl_s,
      tag .. ':done:' .. job_id, h, acc)
    cancelled = cancelled + 1
  end
end

for _, stream in ipairs({KEYS[1] .. ':high', KEYS[1], KEYS[1] .. ':low'}) do  -- every priority's stream
  if seen < limit and redis.call('EXISTS', stream) == 1 then
    local delivered = last_delivered(stream)
    local after = delivered and '(' .. delivered or '-'
    for _, entry in ipairs(redis.call('XRANGE', stream, after, '+', 'COUNT', limit - seen)) do
      local job_id = ''
      for j = 1, #entry[2], 2 do
        if entry[2][j] == 'id' then job_id = entry[2][j + 1] end
      end
      if job_id ~= '' then cancel_waiting(job_id) end
      redis.call('XDEL', stream, entry[1])
      seen = seen + 1
    end
  end
end
if seen < limit then
  for _, job_id in ipairs(redis.call('ZRANGE', KEYS[2], 0, limit - seen - 1)) do
    cancel_waiting(job_id)
    redis.call('ZREM', KEYS[2], job_id)
    seen = seen + 1
  end
end
if #KEYS >= 5 then stats_write(acc, {KEYS[3], KEYS[4], KEYS[5]}) end
return {cancelled, seen}
