-- peekpayload.lua reads one entity's applied revision and the payload
-- stored with it, without changing anything.
--
-- KEYS[1]  the entity's hash (see prelude.lua): reads rev, last, payload_of
--          and payload
--
-- Reply: {rev} or {rev, payload}: the applied revision in canonical decimal
-- ("" when nothing is applied) and, when CommitPayload stored one with the
-- recording of rev by last, the payload.
-- Error "CORRUPT 1 <what>" when the key holds something this script did not write.

local f = redis.pcall('HMGET', KEYS[1], 'rev', 'last', 'payload_of')
if f.err then return redis.error_reply('CORRUPT 1 is not a hash') end
local rev, last, of = f[1], f[2], f[3]
-- "" means nothing applied in the reply, so it may not come from the field.
if rev == '' then return redis.error_reply('CORRUPT 1 field rev') end
if not rev then return {''} end
-- A payload left by an earlier recording is not this one's.
if not (last and of and of == rev .. ' ' .. last) then return {rev} end
return {rev, redis.call('HGET', KEYS[1], 'payload') or ''}
