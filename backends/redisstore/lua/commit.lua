-- commit.lua records the claimed revision of one or more entities as applied
-- and ends their claims, each if its token holds a live claim there.
-- Commit runs it with one key, CommitBatch with every key of one hash slot,
-- CommitPayload with one key and its payload. prelude.lua comes first.
--
-- KEYS[i]      the hash of entity i (see prelude.lua): reads claim, rev and
--              last; writes rev and last, and with a payload payload and
--              payload_of (prior is left: it names advances only)
-- ARGV[1]      milliseconds an applied revision lives, "0" for ever (WithTTL)
-- ARGV[1 + i]  the token committing entity i, hex
-- then, only when committing with payloads, one per entity:
-- ARGV[1 + #KEYS + i]  the payload of entity i, any bytes
--
-- Reply: an array of one integer per entity, in KEYS order: 1 committed (or
-- already committed by this token: a retry), 2 no claim, 3 the claim is
-- another token's, 4 the claim expired.
-- Error "CORRUPT <i> <what>" when KEYS[i] holds something this script did not
-- write; every key is read and checked before anything is written.

local COMMITTED, NOCLAIM, OTHER, EXPIRED = 1, 2, 3, 4

-- A commit reads the claim field alone, not rev: a claim of this token
-- whose lease runs is recorded the same whether or not it was committed
-- already (a retry), because whatever else records a revision deletes or
-- replaces the claim first.
local state = {}
for i, key in ipairs(KEYS) do
  if not state[key] then
    local c = redis.pcall('HGET', key, 'claim')
    if type(c) == 'table' then return redis.error_reply('CORRUPT ' .. i .. ' is not a hash') end
    local e = {}
    if c then
      e[CLAIM], e[TOKEN], e[UNTIL] = parse(c)
      if not e[CLAIM] then return redis.error_reply('CORRUPT ' .. i .. ' field claim') end
    end
    state[key] = e
  end
end

local ttl, payloads = ARGV[1], #ARGV == 1 + 2 * #KEYS
local out = {}
for i, key in ipairs(KEYS) do
  local token = ARGV[1 + i]
  local e = state[key]
  local r
  if e[TOKEN] == token and e[UNTIL] > clock() then
    -- Setting rev to the claim's revision is what ends the claim. A
    -- payload is stored with the recording it belongs to, so that one left
    -- by an earlier recording is never read with this one: a commit
    -- without a payload has nothing more to write. A retry, which finds
    -- its recording made, keeps the payload the first call stored.
    local added
    local f = payloads and redis.call('HMGET', key, 'rev', 'last')
    if f and not (f[1] == e[CLAIM] and f[2] == token) then
      added = redis.call('HSET', key, 'rev', e[CLAIM], 'last', token,
        'payload', ARGV[1 + #KEYS + i], 'payload_of', e[CLAIM] .. ' ' .. token)
    else
      added = redis.call('HSET', key, 'rev', e[CLAIM], 'last', token)
    end
    if ttl ~= '0' then
      redis.call('PEXPIRE', key, ttl)
    elseif added > 0 then
      -- A new field: rev, on a key that lived only as long as its claim
      -- (or last, after Set, on a key that has no expiry to remove).
      redis.call('PERSIST', key)
    end
    r = COMMITTED
  else
    -- No live claim of this token's: what the entity holds says why.
    local f = redis.call('HMGET', key, 'rev', 'last')
    if f[1] and f[2] == token then
      r = COMMITTED -- a retry: this token recorded the applied revision
    elseif not e[CLAIM] or e[CLAIM] == f[1] then
      r = NOCLAIM -- none, or it has ended
    elseif e[TOKEN] ~= token then
      r = OTHER
    else
      r = EXPIRED
    end
  end
  out[i] = r
end
return out
