-- sweep: delete the consumers that dead workers left in a task's group: those with no pending
-- entry that have been idle for at least ARGV[1] ms. Checked and deleted in one step, so a
-- consumer that holds an entry is never deleted (that would drop its entry from the group).
-- KEYS[1] stream
-- ARGV[1] minimum idle ms
-- Returns the names of the consumers deleted.
local deleted = {}
if redis.call('EXISTS', KEYS[1]) == 0 then return deleted end
local ok, consumers = pcall(redis.call, 'XINFO', 'CONSUMERS', KEYS[1], GROUP)
if not ok then return deleted end
for _, consumer in ipairs(consumers) do
  local info = {}
  for j = 1, #consumer, 2 do info[consumer[j]] = consumer[j + 1] end
  if info['pending'] == 0 and info['idle'] >= tonumber(ARGV[1]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], GROUP, info['name'])
    deleted[#deleted + 1] = info['name']
  end
end
return deleted
