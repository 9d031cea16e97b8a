-- claim.lua decides one or more requests against their entities' applied
-- revisions and, for each one granted, takes a claim with a lease or (with
-- the advance flag) records its revision as applied at once. Claim runs it
-- with one key, ClaimBatch with every key of one hash slot.
--
-- KEYS[i]    the hash of entity i (fields rev, last, claim, token, until;
--            until "0" means the claim has ended)
-- ARGV[1]    milliseconds an applied revision lives, "0" for ever (WithTTL)
-- then six values per entity i, from ARGV[2 + 6*(i-1)]:
--   rev      the revision, canonical decimal (no sign, no leading zero)
--   token    the request's token, hex
--   lease    the claim's lease in milliseconds
--   flags    1 = advance instead of claim, + 2 = sequential ordering
--   first    the first revision of a sequential entity, canonical decimal
--   maxstep  refuse revisions more than this above the applied one, "0" for no bound
--
-- Reply: an array of two values per entity, in KEYS order: the verdict
-- (1 granted, 2 duplicate, 3 stale, 4 busy, 5 gap, 6 too far) and the
-- applied revision before the call ("" when nothing is applied).
-- Error "CORRUPT <i> <what>" when KEYS[i] holds something this script did not
-- write; every key is read and checked before anything is written, so an
-- error leaves every entity as it was.

local GRANTED, DUP, OLD, BUSY, GAP, TOOFAR = 1, 2, 3, 4, 5, 6
-- Positions in an entity's HMGET reply, which the script keeps as the
-- entity's state; DEADLINE holds until as a number.
local REV, LAST, CLAIM, TOKEN, UNTIL, DEADLINE = 1, 2, 3, 4, 5, 6

-- Lua numbers are doubles, exact only up to 2^53, so a long revision is
-- never converted whole: split cuts it into its last ten decimal digits and
-- the digits above them, two numbers below 2^35 that compare and add
-- exactly.
local function split(s)
  local n = #s
  if n <= 10 then return 0, tonumber(s) end
  return tonumber(string.sub(s, 1, n - 10)), tonumber(string.sub(s, n - 9))
end

-- cmp orders two canonical decimals (-1, 0, 1). Of two canonical decimals
-- the longer is the larger, and one of at most 15 digits is below 2^53, so
-- only equal lengths above 15 digits need split.
local function cmp(a, b)
  if a == b then return 0 end
  local n = #a
  if n ~= #b then
    if n < #b then return -1 end
    return 1
  end
  if n <= 15 then
    if tonumber(a) < tonumber(b) then return -1 end
    return 1
  end
  local ah, al = split(a)
  local bh, bl = split(b)
  if ah < bh or (ah == bh and al < bl) then return -1 end
  return 1
end

local function isrev(s)
  if #s > 20 or not string.find(s, '^[1-9]%d*$') then return s == '0' end
  return #s < 20 or cmp(s, '18446744073709551615') <= 0
end

-- step decides a revision above the applied one under Sequential ordering
-- (only applied+1) and WithMaxStep (at most applied+maxstep), adding in
-- split halves so that nothing rounds.
local function step(applied, rev, seq, maxstep)
  local rh, rl = split(rev)
  local ah, al = split(applied)
  if seq then
    local nh, nl = ah, al + 1
    if nl == 1e10 then nh, nl = nh + 1, 0 end
    if rh ~= nh or rl ~= nl then return GAP end
  end
  if maxstep ~= '0' then
    local mh, ml = split(maxstep)
    local lh, ll = ah + mh, al + ml
    if ll >= 1e10 then lh, ll = lh + 1, ll - 1e10 end
    if lh < rh or (lh == rh and ll < rl) then return TOOFAR end
  end
  return GRANTED
end

local now
local function clock()
  if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return now
end

-- Read and check every entity first. An entity named twice is read once and
-- its state carried from one request to the next, so a batch behaves as its
-- requests run one after another.
local state = {}
for i, key in ipairs(KEYS) do
  if not state[key] then
    local e = redis.pcall('HMGET', key, 'rev', 'last', 'claim', 'token', 'until')
    if e.err then return redis.error_reply('CORRUPT ' .. i .. ' is not a hash') end
    if e[REV] and not isrev(e[REV]) then return redis.error_reply('CORRUPT ' .. i .. ' field rev') end
    if e[UNTIL] == '0' then
      e[CLAIM] = false -- a committed claim
    elseif e[CLAIM] then
      if not isrev(e[CLAIM]) then return redis.error_reply('CORRUPT ' .. i .. ' field claim') end
      if not e[TOKEN] then return redis.error_reply('CORRUPT ' .. i .. ' field token') end
      local u = e[UNTIL]
      if not u or #u > 15 or not string.find(u, '^%d+$') then
        return redis.error_reply('CORRUPT ' .. i .. ' field until')
      end
      e[DEADLINE] = tonumber(u)
    end
    state[key] = e
  end
end

local ttl = ARGV[1]
local deadlines -- by lease: a batch's claims share one deadline
local out = {}
for i, key in ipairs(KEYS) do
  local a = 6 * i - 4
  local rev, token, flags = ARGV[a], ARGV[a + 1], ARGV[a + 3]
  local advance, seq = flags == '1' or flags == '3', flags == '2' or flags == '3'
  local e = state[key]
  local applied = e[REV]
  -- This is revguard's Request.Decide, then the claim rules.
  local v
  local retried = advance and applied == rev and e[LAST] == token
  if retried then
    v = GRANTED -- a retried advance: it has already taken effect
  elseif not applied then
    v = GRANTED
    if seq and rev ~= ARGV[a + 4] then
      v = GAP
      if cmp(rev, ARGV[a + 4]) < 0 then v = OLD end
    end
  else
    local c = cmp(rev, applied)
    if c == 0 then
      v = DUP
    elseif c < 0 then
      v = OLD
    elseif seq or ARGV[a + 5] ~= '0' then
      v = step(applied, rev, seq, ARGV[a + 5])
    else
      v = GRANTED
    end
  end
  -- The clock is read only past the drop path, and only for a claim.
  if v == GRANTED and not retried and e[CLAIM] and (e[TOKEN] ~= token or e[CLAIM] ~= rev)
    and e[DEADLINE] > clock() then
    v = BUSY
  end
  if v ~= GRANTED or retried then
    -- nothing to write
  elseif advance then
    if e[CLAIM] then
      redis.call('HSET', key, 'rev', rev, 'last', token, 'until', '0')
    else
      redis.call('HSET', key, 'rev', rev, 'last', token)
    end
    if ttl ~= '0' then
      redis.call('PEXPIRE', key, ttl)
    elseif e[CLAIM] and not applied then
      redis.call('PERSIST', key) -- the key lived only as long as its claim
    end
    e[REV], e[LAST], e[CLAIM] = rev, token, false
  else
    -- A new claim, or the same token's retry extending its lease.
    local lease = ARGV[a + 2]
    deadlines = deadlines or {}
    local d = deadlines[lease]
    if not d then
      d = {clock() + tonumber(lease)}
      d[2] = string.format('%.0f', d[1])
      deadlines[lease] = d
    end
    redis.call('HSET', key, 'claim', rev, 'token', token, 'until', d[2])
    if not applied then
      -- Nothing applied: the key is only this claim, and an abandoned
      -- claim should not outlive its lease.
      redis.call('PEXPIREAT', key, d[2])
    elseif ttl ~= '0' then
      local left = redis.call('PTTL', key)
      if left >= 0 and left < tonumber(lease) then redis.call('PEXPIRE', key, lease) end
    end
    e[CLAIM], e[TOKEN], e[DEADLINE] = rev, token, d[1]
  end
  out[2 * i - 1] = v
  out[2 * i] = applied or ''
end
return out
