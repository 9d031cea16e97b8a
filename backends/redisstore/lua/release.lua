-- release.lua removes the claim a token holds on one entity, so that a
-- redelivery can claim the revision again at once. Another token's claim, or
-- none, is left alone. prelude.lua comes first.
--
-- KEYS[1]  the entity's hash (see prelude.lua): reads rev and claim, deletes
--          claim
-- ARGV[1]  the token, hex
--
-- Reply: 1 released, 0 nothing to release.
-- Error "CORRUPT 1 <what>" when the key holds something this script did not write.

local e, what = load(1)
if not e then return redis.error_reply('CORRUPT 1 ' .. what) end
-- An ended claim is a record of a commit, not something to release.
if not e[CLAIM] or e[TOKEN] ~= ARGV[1] then return 0 end
-- A key that held only this claim is left empty, and Redis deletes it.
redis.call('HDEL', KEYS[1], 'claim')
return 1
