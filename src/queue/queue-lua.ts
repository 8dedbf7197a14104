// Lua sources of the waiting room's scripts; queue-scripts.ts defines and calls them. Concert
// scripts get the seven keys of one concert (queue-keys.ts) as KEYS[1..7] (JOIN an eighth of the
// same concert), so each touches one cluster slot and runs atomically. They read the clock with
// TIME so every process agrees on "now" and on expiries.

/** Error prefix of a script that finds a registered concert's keys gone. */
export const QUEUE_STATE_LOST = "QUEUESTATELOST";

const PRELUDE = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function forget(token)
  local user = redis.call('HGET', KEYS[6], token)
  if user then
    redis.call('HDEL', KEYS[6], token)
    if redis.call('HGET', KEYS[5], user) == token then redis.call('HDEL', KEYS[5], user) end
  end
end
local function drop(token)
  redis.call('ZREM', KEYS[2], token)
  redis.call('ZREM', KEYS[3], token)
  redis.call('ZREM', KEYS[4], token)
  forget(token)
end
-- Counts slots given back (a leave, an expiry), for the wait estimate: with the slots held at
-- two steps it gives how many every process admitted in between. 'r' sums the time each had
-- left until its expiry, so the sessions' length is ACTIVE_TOKEN_TTL minus the mean of it (from the
-- admission decision; wait-estimate.ts counts them from Redis applying it).
local function released(n, remainingMs)
  if n > 0 then
    redis.call('HINCRBY', KEYS[7], 'f', n)
    redis.call('HINCRBY', KEYS[7], 'r', remainingMs)
  end
end
-- Users holding a slot at \`now\` (the active set may still hold expired ones until the next step).
local function active_count(now)
  return redis.call('ZCOUNT', KEYS[3], '(' .. now, '+inf')
end
-- A token's state, its place in line (0 unless waiting) and its slot's expiry ('0' unless active).
local function place_of(token, now)
  local rank = redis.call('ZRANK', KEYS[2], token)
  if rank then return 'WAITING', rank + 1, '0' end
  local expire = redis.call('ZSCORE', KEYS[3], token)
  if expire and tonumber(expire) > now then return 'ACTIVE', 0, expire end
  return 'EXPIRED', 0, '0'
end
local function status_of(token, now)
  local state, position, expire = place_of(token, now)
  return {state, position, redis.call('ZCARD', KEYS[2]), expire, now, active_count(now)}
end
`;

// KEYS[8]: the concert's prequeue-opened mark. ARGV: "1" when the caller has seen this
// concert's keys before, then per join: userId, fresh token, the user's prequeue place ("" if
// none). The joins of a batch run in order, each as if alone: a user's live token if any, else a
// new place: the prequeue place while the line is not marked opened (the counter is then only
// created, so the keys count as present), else at the tail. Returns {now, waiting, active, then
// per join: token, seq, state, position, active expiry}, every status read after the whole batch
// (one instant). A counter missing where the caller saw one means the keys were lost (a flush, a
// restart that kept no data, a cluster node that came back empty): the INCR below would start the
// line again at 1, ahead of everyone PostgreSQL still has waiting, so the script refuses and
// queue-mode.ts rebuilds.
export const JOIN = `${PRELUDE}
if ARGV[1] == '1' and redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('${QUEUE_STATE_LOST} concert keys missing') end
local now = now_ms()
local opened = nil
local joined = {}
for i = 2, #ARGV, 3 do
  local user, place = ARGV[i], ARGV[i + 2]
  local token = redis.call('HGET', KEYS[5], user)
  local seq
  if token then
    local status = status_of(token, now)
    if status[1] == 'EXPIRED' then
      forget(token)
      token = nil
    else
      if status[1] == 'WAITING' then redis.call('ZADD', KEYS[4], now, token) end
      seq = redis.call('ZSCORE', KEYS[2], token) or '0'
    end
  end
  if not token then
    token = ARGV[i + 1]
    if opened == nil then opened = redis.call('EXISTS', KEYS[8]) == 1 end
    if place ~= '' and not opened then
      redis.call('SETNX', KEYS[1], 0)
      seq = place
    else
      seq = redis.call('INCR', KEYS[1])
    end
    redis.call('ZADD', KEYS[2], seq, token)
    redis.call('ZADD', KEYS[4], now, token)
    redis.call('HSET', KEYS[5], user, token)
    redis.call('HSET', KEYS[6], token, user)
  end
  joined[#joined + 1] = token
  joined[#joined + 1] = tostring(seq)
end
-- One instant for the whole batch: the line's size and slots held are read once, not per join.
local out = {now, redis.call('ZCARD', KEYS[2]), active_count(now)}
for i = 1, #joined, 2 do
  local token = joined[i]
  local state, position, expire = place_of(token, now)
  out[#out + 1] = token
  out[#out + 1] = joined[i + 1]
  out[#out + 1] = state
  out[#out + 1] = position
  out[#out + 1] = expire
end
return out
`;

// ARGV: token, touch ("1" refreshes last-seen of a waiting token).
export const STATUS = `${PRELUDE}
local now = now_ms()
if ARGV[2] == '1' then redis.call('ZADD', KEYS[4], 'XX', now, ARGV[1]) end
return status_of(ARGV[1], now)
`;

// ARGV: token. Gives up the place or the slot; returns the status after it (EXPIRED).
export const LEAVE = `${PRELUDE}
local now = now_ms()
local expire = redis.call('ZSCORE', KEYS[3], ARGV[1])
if expire then released(1, tonumber(expire) - now) end
drop(ARGV[1])
return status_of(ARGV[1], now)
`;

// ARGV: waiting TTL ms, most tokens ended per step. Redis's part of an admission step, read before
// it takes PostgreSQL's concert lock: names ACTIVE tokens past their expiry and WAITING tokens not
// seen for the waiting TTL. It drops nothing: PostgreSQL records their end, and APPLY drops them
// after the commit, so a step whose transaction fails leaves them to the next (two steps naming
// the same token end it once: APPLY counts a slot given back only while it holds it).
// Returns {now, waiting, active, {expired}, {abandoned}}.
// Only registered concerts are swept, and registering follows the counter's creation (JOIN,
// MERGE): a missing counter means the concert's keys were lost, e.g. its cluster node restarted
// empty while the node of the registry kept its data. The error makes queue-mode.ts restore it.
export const SWEEP = `${PRELUDE}
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('${QUEUE_STATE_LOST} concert keys missing') end
local now = now_ms()
local waitingTtl, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local expired = redis.call('ZRANGE', KEYS[3], '-inf', now, 'BYSCORE', 'LIMIT', 0, limit)
local abandoned = redis.call('ZRANGE', KEYS[4], '-inf', now - waitingTtl, 'BYSCORE', 'LIMIT', 0, limit)
return {now, redis.call('ZCARD', KEYS[2]), redis.call('ZCARD', KEYS[3]), expired, abandoned}
`;

// ARGV: n, the n tokens the step's sweep ended (PostgreSQL has recorded it: dropped here now), then
// (token, active expiry ms) for every token PostgreSQL, the record, holds ACTIVE (the admission
// step decided them there). Moves those still waiting here to the active set; a token that ended
// here stays ended, and one already active keeps its slot. Returns {now, waiting, active, {moved
// token, user, ...}, slots given back so far, the time they had left in sum}.
export const APPLY = `${PRELUDE}
local now = now_ms()
local ended, freed, remaining = tonumber(ARGV[1]), 0, 0
for i = 2, ended + 1 do
  local expire = redis.call('ZSCORE', KEYS[3], ARGV[i])
  if expire then freed, remaining = freed + 1, remaining + tonumber(expire) - now end
  drop(ARGV[i])
end
released(freed, remaining)
local moved = {}
for i = ended + 2, #ARGV, 2 do
  local token = ARGV[i]
  if redis.call('ZSCORE', KEYS[2], token) then
    redis.call('ZREM', KEYS[2], token)
    redis.call('ZREM', KEYS[4], token)
    redis.call('ZADD', KEYS[3], ARGV[i + 1], token)
    moved[#moved + 1] = token
    moved[#moved + 1] = redis.call('HGET', KEYS[6], token) or ''
  end
end
return {now, redis.call('ZCARD', KEYS[2]), redis.call('ZCARD', KEYS[3]), moved,
  redis.call('HGET', KEYS[7], 'f') or '0', redis.call('HGET', KEYS[7], 'r') or '0'}
`;

// ARGV: touch, tokens... Returns {now, waiting, active, then per token: position (0 unless
// waiting), active expiry ("0" unless admitted)}. One call serves every watcher of a concert.
export const WATCH = `${PRELUDE}
local now = now_ms()
local out = {now, redis.call('ZCARD', KEYS[2]), active_count(now)}
for i = 2, #ARGV do
  local token = ARGV[i]
  local rank = redis.call('ZRANK', KEYS[2], token)
  if rank then
    out[#out + 1] = rank + 1
    out[#out + 1] = '0'
    if ARGV[1] == '1' then redis.call('ZADD', KEYS[4], 'XX', now, token) end
  else
    out[#out + 1] = 0
    out[#out + 1] = redis.call('ZSCORE', KEYS[3], token) or '0'
  end
end
return out
`;

// ARGV: n, hold ms, most tokens. The head of the line for an admission step: tokens in order until
// n of them were last seen (joined, polled) within the hold, or `most` in all. Returns {tokens,
// flags}: 1 for those seen within the hold. Only a token's JOIN marks one that has no row yet (its
// user gets it with the reply), so an older one is a join whose process died before its commit:
// admission passes it (pg-admission.ts). Past the hold, the others count only to `most`.
export const HEAD = `
local t = redis.call('TIME')
local since = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[2])
local n, most = tonumber(ARGV[1]), tonumber(ARGV[3])
local tokens, recent, fresh = {}, {}, 0
while fresh < n and #tokens < most do
  local chunk = redis.call('ZRANGE', KEYS[2], #tokens, #tokens + math.min(n - fresh, most - #tokens, 1000) - 1)
  if #chunk == 0 then break end
  local seen = redis.call('ZMSCORE', KEYS[4], unpack(chunk))
  for i = 1, #chunk do
    local held = seen[i] and tonumber(seen[i]) >= since
    tokens[#tokens + 1] = chunk[i]
    recent[#recent + 1] = held and 1 or 0
    if held then fresh = fresh + 1 end
  end
end
return {tokens, recent}
`;

// ARGV: tokens. Returns those the concert does not hold live (ended, or lost with Redis's data):
// a slow join's check that Redis still has it (join-recheck.ts), one call for a whole batch.
export const MISSING = `
local out = {}
for i = 1, #ARGV do
  if redis.call('HEXISTS', KEYS[6], ARGV[i]) == 0 then out[#out + 1] = ARGV[i] end
end
return out
`;

// ARGV: lowest next seq, then (token, user, seq, state, active expiry ms) per PostgreSQL row: fills
// Redis from the record. States only move forward, so the further of the two is kept and the merge
// can run twice. The counter is made even for prequeue places alone: JOIN and SWEEP take a missing
// one for lost keys.
export const MERGE = `${PRELUDE}
local now = now_ms()
redis.call('SETNX', KEYS[1], 0)
if tonumber(ARGV[1]) > tonumber(redis.call('GET', KEYS[1])) then redis.call('SET', KEYS[1], ARGV[1]) end
for i = 2, #ARGV, 5 do
  local token, user, seq, state, expire = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  if state == 'EXPIRED' then
    drop(token)
  else
    local keep = true
    local other = redis.call('HGET', KEYS[5], user)
    if other and other ~= token then
      -- One live place per user: an admission still in its time, or a later place, already here
      -- wins; an admission that ran out (not swept yet) is no place.
      local otherSeq = redis.call('ZSCORE', KEYS[2], other)
      local otherExpire = redis.call('ZSCORE', KEYS[3], other)
      if (otherExpire and tonumber(otherExpire) > now) or (otherSeq and tonumber(otherSeq) > tonumber(seq)) then keep = false else drop(other) end
    end
    if keep then
      if not redis.call('ZSCORE', KEYS[3], token) then
        if state == 'ACTIVE' then
          redis.call('ZREM', KEYS[2], token)
          redis.call('ZREM', KEYS[4], token)
          redis.call('ZADD', KEYS[3], expire, token)
        else
          redis.call('ZADD', KEYS[2], 'NX', seq, token)
          redis.call('ZADD', KEYS[4], now, token)
        end
      end
      redis.call('HSET', KEYS[5], user, token)
      redis.call('HSET', KEYS[6], token, user)
    end
  end
end
return now
`;

// KEYS: token keys. ARGV: per key, record and TTL ms. Never moves a token's state backwards, so a
// late writer (a slow join, a repeated rebuild) cannot revive a token that left or expired. Each
// key is its own slot: a Redis Cluster gets one key per call.
export const SET_TOKEN = `
for i = 1, #KEYS do
  local current = redis.call('GET', KEYS[i])
  local value = ARGV[2 * i - 1]
  local write = true
  if current then
    if string.byte(current, 1) >= string.byte(value, 1) then
      write = false
    else
      -- A token's concert and user never change: keep them, so a writer that does not know the
      -- user (an expiry) loses nothing.
      local owner = string.match(current, '^%d|([^|]*|[^|]*)|')
      if owner then value = string.sub(value, 1, 1) .. '|' .. owner .. '|' .. string.match(value, '|([^|]*)$') end
    end
  end
  if write then redis.call('SET', KEYS[i], value, 'PX', ARGV[2 * i]) end
end
return 1
`;

// KEYS: the concerts ZSET. ARGV: concertId, threshold ms. Forgets a concert found empty unless a
// join registered it again since the admission script looked.
export const FORGET_CONCERT = `
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) < tonumber(ARGV[2]) then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
`;
