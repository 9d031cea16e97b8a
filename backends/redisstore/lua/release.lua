-- release.lua removes the claim a token holds on one entity, so that a
-- redelivery can claim the revision again at once. Another token's claim, or
-- none, is left alone.
--
-- KEYS[1]  the entity's hash (fields rev, last, claim, token, until;
--          until "0" means the claim has ended)
-- ARGV[1]  the token, hex
--
-- Reply: 1 released, 0 nothing to release.
-- Error "CORRUPT 1 <what>" when the key holds something this script did not write.

local f = redis.pcall('HMGET', KEYS[1], 'claim', 'token', 'until')
if f.err then return redis.error_reply('CORRUPT 1 is not a hash') end
-- until 0: the claim was committed, nothing to release.
if not f[1] or f[2] ~= ARGV[1] or f[3] == '0' then return 0 end
-- A key that held only this claim is left empty, and Redis deletes it.
redis.call('HDEL', KEYS[1], 'claim', 'token', 'until')
return 1
