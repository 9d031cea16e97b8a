-- touch.lua makes a write that changes nothing, so that the call that runs
-- it is replicated, and WAIT right after it on the same connection counts
-- everything the master held (wait.go says why). It sets a field of
-- KEYS[1] that revguard does not use and deletes it again: a hash keeps its
-- fields and expiry, and a key that did not exist is created and deleted in
-- the same step.
--
-- KEYS[1]  an entity's hash, or any key of its slot
--
-- Reply: 1, or 0 when KEYS[1] is not a hash (which is left as it was, and
-- which the call's own script reports).

if redis.pcall('HSET', KEYS[1], 'touch', '1') ~= 1 then return 0 end
redis.call('HDEL', KEYS[1], 'touch')
return 1
