-- set.lua makes a revision one entity's applied revision, lower or higher
-- than before, and drops any claim: the repair for a poisoned entity.
--
-- KEYS[1]  the entity's hash (see prelude.lua): writes rev, deletes the other
--          five fields
-- ARGV[1]  the revision, canonical decimal
-- ARGV[2]  milliseconds an applied revision lives, "0" for ever (WithTTL)
--
-- Reply: 1.
-- Error "CORRUPT 1 <what>" when the key holds something this script did not
-- write; it is then left as it was.

local r = redis.pcall('HSET', KEYS[1], 'rev', ARGV[1])
if type(r) == 'table' and r.err then return redis.error_reply('CORRUPT 1 is not a hash') end
-- The claim goes too: a claim on the new revision would read as committed.
-- So does a payload, which belongs to a recording Set replaces.
redis.call('HDEL', KEYS[1], 'last', 'prior', 'claim', 'payload', 'payload_of')
if ARGV[2] ~= '0' then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
else
  redis.call('PERSIST', KEYS[1])
end
return 1
