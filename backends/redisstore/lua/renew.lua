-- renew.lua extends the lease of the claim a token holds on one entity.
-- prelude.lua comes first.
--
-- KEYS[1]  the entity's hash (see prelude.lua): reads rev and claim, writes
--          claim
-- ARGV[1]  the token, hex
-- ARGV[2]  the new lease in milliseconds, from now on the server's clock
-- ARGV[3]  milliseconds an applied revision lives, "0" for ever (WithTTL)
--
-- Reply: 1 renewed, 2 no claim, 3 the claim is another token's, 4 the claim
-- expired (the lease is lost in the last three cases).
-- Error "CORRUPT 1 <what>" when the key holds something this script did not write.

local key, token, lease, ttl = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local e, what = load(1)
if not e then return redis.error_reply('CORRUPT 1 ' .. what) end
local applied, claim = e[REV], e[CLAIM]
if not claim then return 2 end
if e[TOKEN] ~= token then return 3 end
if e[UNTIL] <= clock() then return 4 end

local u = string.format('%.0f', clock() + tonumber(lease))
redis.call('HSET', key, 'claim', claim .. ' ' .. token .. ' ' .. u)
if not applied then
  redis.call('PEXPIREAT', key, u) -- the key is only this claim
elseif ttl ~= '0' then
  local left = redis.call('PTTL', key)
  if left >= 0 and left < tonumber(lease) then redis.call('PEXPIRE', key, lease) end
end
return 1
