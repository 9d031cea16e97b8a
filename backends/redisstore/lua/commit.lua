-- commit.lua records the claimed revision of one or more entities as applied
-- and ends their claims, each if its token holds a live claim there.
-- Commit runs it with one key, CommitBatch with every key of one hash slot.
--
-- KEYS[i]      the hash of entity i (fields rev, last, claim, token, until;
--              until "0" means the claim has ended)
-- ARGV[1]      milliseconds an applied revision lives, "0" for ever (WithTTL)
-- ARGV[1 + i]  the token committing entity i, hex
--
-- Reply: an array of one integer per entity, in KEYS order: 1 committed (or
-- already committed by this token: a retry), 2 no claim, 3 the claim is
-- another token's, 4 the claim expired.
-- Error "CORRUPT <i> <what>" when KEYS[i] holds something this script did not
-- write; every key is read and checked before anything is written.

local COMMITTED, NOCLAIM, OTHER, EXPIRED = 1, 2, 3, 4
-- Positions in an entity's HMGET reply, which the script keeps as the
-- entity's state; LIVE says whether the claim's lease runs.
local REV, LAST, CLAIM, TOKEN, UNTIL, LIVE = 1, 2, 3, 4, 5, 6

local now
local function clock()
  if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return now
end

local state = {}
for i, key in ipairs(KEYS) do
  if not state[key] then
    local e = redis.pcall('HMGET', key, 'rev', 'last', 'claim', 'token', 'until')
    if e.err then return redis.error_reply('CORRUPT ' .. i .. ' is not a hash') end
    if e[UNTIL] == '0' then
      e[CLAIM] = false -- a committed claim
    elseif e[CLAIM] then
      if not string.find(e[CLAIM], '^%d+$') then return redis.error_reply('CORRUPT ' .. i .. ' field claim') end
      local u = e[UNTIL]
      if not u or #u > 15 or not string.find(u, '^%d+$') then
        return redis.error_reply('CORRUPT ' .. i .. ' field until')
      end
      e[LIVE] = tonumber(u) > clock()
    end
    state[key] = e
  end
end

local ttl = ARGV[1]
local out = {}
for i, key in ipairs(KEYS) do
  local token = ARGV[1 + i]
  local e = state[key]
  local r
  if e[LIVE] and e[TOKEN] == token then
    -- until 0 ends the claim in the same write that records it: an HDEL of
    -- the claim's fields would cost a second command per entity.
    redis.call('HSET', key, 'rev', e[CLAIM], 'last', token, 'until', '0')
    if ttl ~= '0' then
      redis.call('PEXPIRE', key, ttl)
    elseif not e[REV] then
      redis.call('PERSIST', key) -- the key lived only as long as its claim
    end
    e[REV], e[LAST], e[LIVE] = e[CLAIM], token, false
    r = COMMITTED
  elseif e[REV] and e[LAST] == token then
    r = COMMITTED -- a retry: this token recorded the applied revision
  elseif not e[CLAIM] then
    r = NOCLAIM
  elseif e[TOKEN] ~= token then
    r = OTHER
  else
    r = EXPIRED
  end
  out[i] = r
end
return out
