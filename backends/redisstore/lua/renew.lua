-- renew.lua extends the lease of the claim a token holds on one entity.
--
-- KEYS[1]  the entity's hash (fields rev, last, claim, token, until;
--          until "0" means the claim has ended)
-- ARGV[1]  the token, hex
-- ARGV[2]  the new lease in milliseconds, from now on the server's clock
-- ARGV[3]  milliseconds an applied revision lives, "0" for ever (WithTTL)
--
-- Reply: 1 renewed, 2 no claim, 3 the claim is another token's, 4 the claim
-- expired (the lease is lost in the last three cases).
-- Error "CORRUPT 1 <what>" when the key holds something this script did not write.

local key, token, lease, ttl = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local f = redis.pcall('HMGET', key, 'rev', 'claim', 'token', 'until')
if f.err then return redis.error_reply('CORRUPT 1 is not a hash') end
if not f[2] or f[4] == '0' then return 2 end -- until 0: the claim was committed
if f[3] ~= token then return 3 end
if not f[4] or #f[4] > 15 or not string.find(f[4], '^%d+$') then
  return redis.error_reply('CORRUPT 1 field until')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if tonumber(f[4]) <= now then return 4 end

local u = string.format('%.0f', now + tonumber(lease))
redis.call('HSET', key, 'until', u)
if not f[1] then
  redis.call('PEXPIREAT', key, u) -- the key is only this claim
elseif ttl ~= '0' then
  local left = redis.call('PTTL', key)
  if left >= 0 and left < tonumber(lease) then redis.call('PEXPIRE', key, lease) end
end
return 1
