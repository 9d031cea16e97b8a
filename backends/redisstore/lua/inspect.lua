-- inspect.lua reads one entity as it is stored, with the server's clock,
-- and changes nothing. Inspect decodes the reply as Scan decodes what HMGET
-- and TIME read, so that the two report an entity alike.
--
-- KEYS[1]  the entity's hash (see prelude.lua): reads rev and claim
--
-- Reply: {rev, claim, now}: the fields rev and claim as HMGET replies them
-- (nil when absent: HMGET's false converts to nil) and the server's time in
-- Unix milliseconds, the clock of the claim's lease.
-- Error "CORRUPT 1 is not a hash" when the key holds another type.

local f = redis.pcall('HMGET', KEYS[1], 'rev', 'claim')
if f.err then return redis.error_reply('CORRUPT 1 is not a hash') end
local t = redis.call('TIME')
return {f[1], f[2], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)}
