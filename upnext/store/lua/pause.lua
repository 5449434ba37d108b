-- pause: mark a task paused (start.lua hands its entries back unstarted while this flag is set;
-- cron_fire.lua moves no cursor of it). The registry set of paused tasks lives in another slot:
-- the caller adds the name there after this call.
-- KEYS[1] the task's pause flag
-- Returns 1 when this call paused it, 0 when it was paused already (its pause time is kept).
if redis.call('SET', KEYS[1], tostring(now_s()), 'NX') then return 1 end
return 0
