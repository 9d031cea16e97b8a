-- peek.lua reads one entity's applied revision without changing anything.
--
-- KEYS[1]  the entity's hash (see prelude.lua): reads rev
--
-- Reply: the applied revision in canonical decimal, "" when nothing is applied.
-- Error "CORRUPT 1 <what>" when the key holds something this script did not write.

local r = redis.pcall('HGET', KEYS[1], 'rev')
if type(r) == 'table' and r.err then return redis.error_reply('CORRUPT 1 is not a hash') end
-- "" means nothing applied in the reply, so it may not come from the field.
if r == '' then return redis.error_reply('CORRUPT 1 field rev') end
return r or ''
