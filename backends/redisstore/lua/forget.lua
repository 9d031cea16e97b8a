-- forget.lua removes one entity: nothing applied, no claim.
--
-- KEYS[1]  the entity's hash (see prelude.lua): deletes all six fields
--
-- Reply: 1.
-- Error "CORRUPT 1 <what>" when the key holds something this script did not
-- write; it is then left as it was (a plain DEL would remove it silently).

local r = redis.pcall('HDEL', KEYS[1], 'rev', 'last', 'prior', 'claim', 'payload', 'payload_of')
if type(r) == 'table' and r.err then return redis.error_reply('CORRUPT 1 is not a hash') end
return 1
