-- resume: clear a task's pause flag and, for a cron, note when it resumed: its instants before
-- then passed while it was paused, so they count as missed (its missed_run_policy decides), not
-- as on time. The caller removes the name from the registry set of paused tasks first.
-- KEYS[1] the task's pause flag   KEYS[2] the task's cron cursor hash (absent for a plain task)
-- Returns 1 when this call resumed it, 0 when it was not paused.
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], 'resumed_at', tostring(now_s()))
end
return 1
