-- distillguard: one batch of state ops in one atomic call (see proxy/state/base.py for the semantics
-- and proxy/state/redis.py for the packing). Mirrors proxy/state/memory.py op for op.
--
-- ARGV[1] caller's now (seconds since the package's time base)   ARGV[2] '1': use the server's TIME
-- ARGV[3] '1': all or nothing                                    ARGV[4] time base (epoch seconds)
-- ARGV[5] the rules' throttle factor: every G op's cost is multiplied by 1/factor ('1' standalone)
-- ARGV[6] '1': a rule's block is in force, G and L ops are skipped ('' results, nothing taken)
-- (both set by the combined script of proxy/state/joint.py from the rule state it has just read)
-- then per op a kind letter and its fields; KEYS are consumed in op order:
--   G interval capacity cost max_wait commit required n_mult   KEYS: cell, n_mult multiplier keys
--   A interval capacity units                                   KEYS: cell
--   L lease limit ttl required                                  KEYS: lease zset
--   R lease                                                     KEYS: lease zset
--   S factor until recover                                      KEYS: multiplier hash
--   M                                                           KEYS: multiplier hash
-- Returns one string per op: "ok wait remaining reset value", or "" for ops without a result.

local EPS = 1e-6
local now = tonumber(ARGV[1])
local shift = 0
if ARGV[2] == '1' then
  local t = redis.call('TIME')
  local server_now = (tonumber(t[1]) - tonumber(ARGV[4])) + tonumber(t[2]) / 1e6
  shift = server_now - now
  now = server_now
end
local aon = ARGV[3] == '1'
local rules_cost = 1.0 / tonumber(ARGV[5])
local skip = ARGV[6] == '1'
local fmt = string.format

local function num(x)
  return fmt('%.17g', x)
end

local function ttl_ms(t)
  local ms = math.ceil((t - now) * 1000)
  if ms < 1 then ms = 1 end
  return ms
end

local function result(ok, wait, remaining, reset, value)
  return fmt('%d %.17g %.17g %.17g %.17g', ok and 1 or 0, wait, remaining, reset, value)
end

local function mult_at(key)
  local m = redis.call('HMGET', key, 'f', 'u', 'r')
  if not m[1] then return 1.0 end
  local f, u, r = tonumber(m[1]), tonumber(m[2]), tonumber(m[3])
  if now < u then return f end
  if r <= 0 or now >= u + r then return 1.0 end
  return f + (1.0 - f) * ((now - u) / r)
end

local function gcra(key, interval, capacity, cost, max_wait, commit, mkeys, write, undo)
  local raw = redis.call('GET', key)
  local tat = now
  if raw then
    tat = tonumber(raw)
    if tat < now then tat = now end
  end
  local f = 1.0
  for i = 1, #mkeys do
    local v = mult_at(mkeys[i])
    if v < f then f = v end
  end
  if f ~= 1.0 then cost = cost / f end
  local span = capacity * interval
  local new_tat = tat + cost * interval
  local wait = new_tat - span - now
  if wait <= EPS or wait <= max_wait then
    if wait <= EPS then wait = 0 end
    if write and commit then
      if undo then undo[#undo + 1] = {key, raw, redis.call('PTTL', key), false} end
      redis.call('SET', key, num(new_tat), 'PX', ttl_ms(new_tat))
    end
    return result(true, wait, (now + span - new_tat) / interval, new_tat - now, f)
  end
  return result(false, wait, (now + span - tat) / interval, tat - now, f)
end

local function adjust(key, interval, units)
  local raw = redis.call('GET', key)
  local tat = now
  if raw then
    tat = tonumber(raw)
    if tat < now then tat = now end
  end
  tat = tat + units * interval
  if tat > now then
    redis.call('SET', key, num(tat), 'PX', ttl_ms(tat))
  elseif raw then
    redis.call('DEL', key)
  end
end

local function acquire(key, lease, limit, ttl, write, undo)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', num(now))
  local had = redis.call('ZSCORE', key, lease)
  local held = redis.call('ZCARD', key)
  local ok = (had ~= false) or held < limit
  if ok and write then
    if undo then undo[#undo + 1] = {key, had, 0, lease} end
    local exp = now + ttl
    redis.call('ZADD', key, num(exp), lease)
    if not had then held = held + 1 end
    local want = ttl_ms(exp)
    if redis.call('PTTL', key) < want then redis.call('PEXPIRE', key, want) end
  end
  return result(ok, 0, limit - held, 0, 1)
end

local function rollback(undo)
  for i = #undo, 1, -1 do
    local e = undo[i]
    local key, old = e[1], e[2]
    if e[4] then
      if old then redis.call('ZADD', key, old, e[4]) else redis.call('ZREM', key, e[4]) end
    elseif old then
      if e[3] > 0 then redis.call('SET', key, old, 'PX', e[3]) else redis.call('SET', key, old) end
    else
      redis.call('DEL', key)
    end
  end
end

local out = {}
local ki, ai = 1, 7
local undo = nil
if aon then undo = {} end
local failed = false
while ai <= #ARGV do
  local kind = ARGV[ai]
  local key = KEYS[ki]
  if kind == 'G' then
    local n = tonumber(ARGV[ai + 7])
    local mkeys = {}
    for j = 1, n do mkeys[j] = KEYS[ki + j] end
    local interval, capacity = tonumber(ARGV[ai + 1]), tonumber(ARGV[ai + 2])
    local cost, max_wait = tonumber(ARGV[ai + 3]) * rules_cost, tonumber(ARGV[ai + 4])
    local commit, required = ARGV[ai + 5] == '1', ARGV[ai + 6] == '1'
    ki, ai = ki + 1 + n, ai + 8
    local r
    if skip then
      r = ''
    elseif aon and required then
      if failed then
        r = gcra(key, interval, capacity, cost, max_wait, commit, mkeys, false, nil)
      else
        r = gcra(key, interval, capacity, cost, max_wait, commit, mkeys, true, undo)
        if string.sub(r, 1, 1) == '0' then failed = true; rollback(undo) end
      end
    else
      r = gcra(key, interval, capacity, cost, max_wait, commit, mkeys, true, nil)
    end
    out[#out + 1] = r
  elseif kind == 'L' then
    local lease, limit, ttl = ARGV[ai + 1], tonumber(ARGV[ai + 2]), tonumber(ARGV[ai + 3])
    local required = ARGV[ai + 4] == '1'
    ki, ai = ki + 1, ai + 5
    local r
    if skip then
      r = ''
    elseif aon and required then
      if failed then
        r = acquire(key, lease, limit, ttl, false, nil)
      else
        r = acquire(key, lease, limit, ttl, true, undo)
        if string.sub(r, 1, 1) == '0' then failed = true; rollback(undo) end
      end
    else
      r = acquire(key, lease, limit, ttl, true, nil)
    end
    out[#out + 1] = r
  elseif kind == 'A' then
    adjust(key, tonumber(ARGV[ai + 1]), tonumber(ARGV[ai + 3]))
    ki, ai = ki + 1, ai + 4
    out[#out + 1] = ''
  elseif kind == 'R' then
    redis.call('ZREM', key, ARGV[ai + 1])
    ki, ai = ki + 1, ai + 2
    out[#out + 1] = ''
  elseif kind == 'S' then
    local f, u, r = tonumber(ARGV[ai + 1]), tonumber(ARGV[ai + 2]) + shift, tonumber(ARGV[ai + 3])
    redis.call('HSET', key, 'f', num(f), 'u', num(u), 'r', num(r))
    redis.call('PEXPIRE', key, ttl_ms(u + r))
    ki, ai = ki + 1, ai + 4
    out[#out + 1] = ''
  elseif kind == 'M' then
    ki, ai = ki + 1, ai + 1
    out[#out + 1] = result(true, 0, 0, 0, mult_at(key))
  else
    return redis.error_reply('distillguard: unknown state op ' .. tostring(kind))
  end
end
return out
