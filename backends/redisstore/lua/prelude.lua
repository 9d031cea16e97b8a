-- prelude.lua is put before claim.lua, commit.lua, renew.lua and
-- release.lua when they are embedded (scripts.go), so that every script that
-- meets a claim reads an entity and its claim, checks them and reads the
-- clock alike. It defines helpers only; each script's own header says what
-- it takes and replies.
--
-- An entity is one hash with these six fields, all plain strings; each
-- script's header names the ones it reads and writes:
--   rev    the applied revision, canonical decimal (absent: nothing applied)
--   last   the token that recorded rev, hex
--   prior  "<token>:<revision>" of the three advances before it, newest
--          first, so that an advance overtaken before go-redis sent it
--          again still answers as it first did (absent until then)
--   claim  the last claim taken: "<revision> <token> <until>", until being
--          when its lease ends, Unix milliseconds on the server's clock.
--          A claim whose revision is rev has been committed: it has ended,
--          and stays only as a record, so that a commit costs one write.
--          Nothing else sets rev to a claim's revision (an advance and Set
--          delete the claim field).
--   payload     what CommitPayload stored with a revision, any bytes
--   payload_of  "<revision> <token>": the recording payload belongs to. It
--          is read only while rev and last are that revision and token;
--          whatever records a revision otherwise leaves it unread, to be
--          replaced, deleted by Set, Forget or an advance that ends a
--          claim, or expired with the key.

local now
-- clock returns the server's time in milliseconds, read once per call.
local function clock()
  if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return now
end

-- isrev accepts a revision in canonical decimal (no sign, no leading zero)
-- up to 2^64-1. Lua numbers are doubles, exact only up to 2^53, so twenty
-- digits are compared as two halves of ten.
local function isrev(s)
  local n = #s
  if n > 20 or not string.find(s, '^[1-9]%d*$') then return s == '0' end
  if n < 20 then return true end
  local hi = tonumber(string.sub(s, 1, 10))
  return hi < 1844674407 or (hi == 1844674407 and tonumber(string.sub(s, 11)) <= 3709551615)
end

-- parse takes a claim field apart: its revision, token and lease end, or
-- nil when revguard did not write it.
local function parse(c)
  local r, t, u = string.match(c, '^(%d+) (%x+) (%d+)$')
  if not r or not isrev(r) or #u > 15 then return nil end
  return r, t, tonumber(u)
end

-- Positions in the table load returns: the fields it read, then the claim
-- taken apart.
local REV, FIELD, LAST, PRIOR, CLAIM, TOKEN, UNTIL = 1, 2, 3, 4, 5, 6, 7

-- load reads and checks KEYS[i]. It returns the entity as the table HMGET
-- replied, [REV] the applied revision (false: none) and [FIELD] the claim
-- field (false: none), with [LAST] and [PRIOR] too when withPrior is set
-- (an advance writes them from what it read, so it reads them here, in the
-- same call), to which it adds, only when a claim is in force (not ended),
-- [CLAIM] its revision, [TOKEN] its token and [UNTIL] its lease end. For a
-- key revguard did not write it returns nil and what is wrong.
local function load(i, withPrior)
  local e
  if withPrior then
    e = redis.pcall('HMGET', KEYS[i], 'rev', 'claim', 'last', 'prior')
  else
    e = redis.pcall('HMGET', KEYS[i], 'rev', 'claim')
  end
  if e.err then return nil, 'is not a hash' end
  local rev, c = e[REV], e[FIELD]
  if rev and not isrev(rev) then return nil, 'field rev' end
  -- The usual case in a claim: the last claim has ended, which its prefix
  -- alone tells, without taking the field apart.
  if c and not (rev and string.sub(c, 1, #rev + 1) == rev .. ' ') then
    e[CLAIM], e[TOKEN], e[UNTIL] = parse(c)
    if not e[CLAIM] then return nil, 'field claim' end
  end
  return e
end
