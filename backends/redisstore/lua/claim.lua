-- claim.lua decides one or more requests against their entities' applied
-- revisions and, for each one granted, takes a claim with a lease or (with
-- the advance flag) records its revision as applied at once. Claim runs it
-- with one key, ClaimBatch with every key of one hash slot whose requests
-- share the values ARGV[2] to ARGV[5]. prelude.lua comes first.
--
-- KEYS[i]    the hash of entity i (see prelude.lua): reads rev and claim, and
--            last and prior for an advance; a claim writes claim; an advance
--            writes rev, last and prior and, when there is a claim field,
--            deletes it with payload and payload_of
-- ARGV[1]    milliseconds an applied revision lives, "0" for ever (WithTTL)
-- ARGV[2]    the claims' lease in milliseconds
-- ARGV[3]    flags: 1 = advance instead of claim, + 2 = sequential ordering
-- ARGV[4]    the first revision of a sequential entity, canonical decimal
-- ARGV[5]    refuse revisions more than this above the applied one, "0" for no bound
-- then two values per entity i, from ARGV[4 + 2*i]:
--   rev      the revision, canonical decimal (no sign, no leading zero)
--   token    the request's token, hex
--
-- Reply: an array of two values per entity, in KEYS order: the verdict
-- (1 granted, 2 duplicate, 3 stale, 4 busy, 5 gap, 6 too far) and the
-- applied revision before the call ("" when nothing is applied).
-- Error "CORRUPT <i> <what>" when KEYS[i] holds something this script did not
-- write; every key is read and checked before anything is written, so an
-- error leaves every entity as it was.

local GRANTED, DUP, OLD, BUSY, GAP, TOOFAR = 1, 2, 3, 4, 5, 6

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

-- Read and check every entity first. An entity named twice is read once and
-- its state carried from one request to the next, so a batch behaves as its
-- requests run one after another; requests name distinct entities in all
-- but a faulty batch, so the state is kept up to date only then, which
-- spares growing each entity's table.
local ttl, lease, flags, first, maxstep = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local advance, seq = flags == '1' or flags == '3', flags == '2' or flags == '3'
local state, repeated = {}, false
for i, key in ipairs(KEYS) do
  if state[key] then
    repeated = true
  else
    local e, what = load(i, advance)
    if not e then return redis.error_reply('CORRUPT ' .. i .. ' ' .. what) end
    state[key] = e
  end
end

local bounded = seq or maxstep ~= '0'
local deadline, ends -- the end of the lease of every claim this call takes
local out = {}
for i, key in ipairs(KEYS) do
  local rev, token = ARGV[4 + 2 * i], ARGV[5 + 2 * i]
  local e = state[key]
  local applied = e[REV]
  -- This is revguard's Request.DecideClaim (Decide, then the claim
  -- rules), which memstore and sqlstore call, and the retries prior names.
  local v, retried = GRANTED, false
  if not applied then
    if seq and rev ~= first then
      v = GAP
      if cmp(rev, first) < 0 then v = OLD end
    end
  else
    local c = cmp(rev, applied)
    if c == 0 then
      v = DUP
      -- An advance whose token recorded the applied revision is a retry
      -- that has already taken effect.
      if advance and e[LAST] == token then v, retried = GRANTED, true end
    elseif c < 0 then
      v = OLD
      -- An advance overtaken since it took effect, sent again after its
      -- reply was lost: prior names it, so it answers as it first did.
      if advance then
        local p = e[PRIOR]
        if p and string.find(' ' .. p .. ' ', ' ' .. token .. ':' .. rev .. ' ', 1, true) then
          v, retried = GRANTED, true
        end
      end
    elseif bounded then
      v = step(applied, rev, seq, maxstep)
    end
  end
  -- The clock is read only past the drop path, and only for a live claim.
  if v == GRANTED and not retried and e[CLAIM] and (e[TOKEN] ~= token or e[CLAIM] ~= rev)
    and e[UNTIL] > clock() then
    v = BUSY
  end
  if v ~= GRANTED or retried then
    -- nothing to write
  elseif advance then
    local last, p = e[LAST], e[PRIOR]
    if applied and last then
      -- The recording it replaces moves to prior, the last three kept:
      -- prior's first two, cut with plain finds, which cost a third of a
      -- pattern match.
      local p2 = p and string.find(p, ' ', (string.find(p, ' ', 1, true) or #p) + 1, true)
      if p2 then p = string.sub(p, 1, p2 - 1) end
      p = last .. ':' .. applied .. (p and ' ' .. p or '')
      redis.call('HSET', key, 'rev', rev, 'last', token, 'prior', p)
    else
      redis.call('HSET', key, 'rev', rev, 'last', token)
    end
    if e[FIELD] then
      -- A claim on another revision would come back in force once rev
      -- moves past it: an advance ends any claim by deleting it, and an
      -- earlier payload with it, which the advance's recording leaves
      -- unread anyway (see prelude.lua).
      redis.call('HDEL', key, 'claim', 'payload', 'payload_of')
    end
    if ttl ~= '0' then
      redis.call('PEXPIRE', key, ttl)
    elseif e[FIELD] and not applied then
      redis.call('PERSIST', key) -- the key lived only as long as its claim
    end
    if repeated then e[REV], e[FIELD], e[LAST], e[PRIOR], e[CLAIM] = rev, false, token, p, nil end
  else
    -- A new claim, or the same token's retry extending its lease.
    if not deadline then
      deadline = clock() + tonumber(lease)
      ends = string.format('%.0f', deadline)
    end
    local field = rev .. ' ' .. token .. ' ' .. ends
    redis.call('HSET', key, 'claim', field)
    if not applied then
      -- Nothing applied: the key is only this claim, and an abandoned
      -- claim should not outlive its lease.
      redis.call('PEXPIREAT', key, ends)
    elseif ttl ~= '0' then
      local left = redis.call('PTTL', key)
      if left >= 0 and left < tonumber(lease) then redis.call('PEXPIRE', key, lease) end
    end
    if repeated then e[FIELD], e[CLAIM], e[TOKEN], e[UNTIL] = field, rev, token, deadline end
  end
  out[2 * i - 1] = v
  out[2 * i] = applied or ''
end
return out
