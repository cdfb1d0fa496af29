-- distillguard: rule state (windows, scores, active actions, bans, alert cooldowns) in one atomic call.
-- Packed by proxy/policy/store_redis.py; mirrors proxy/policy/windows.py and proxy/policy/store.py
-- operation for operation, with the same floating-point steps, so both stores give the same values.
--
-- Layout. A (rule, key value) window is one string: its aggregates' states as packed little-endian
-- doubles (read with one MGET for the whole request, written with one SET PX each). A distinct aggregate also has a
-- HyperLogLog per bucket: <window key> SEP <aggregate index> SEP <bucket>. A scope value (account,
-- template...) is one hash, its "entity": score v/t, actions a SEP kind SEP rule -> "until json", ban
-- history b -> "count last", alert cooldowns c SEP rule -> time.
--
-- ARGV[1] now (epoch seconds, the caller's clock), ARGV[2] ln 2 (the caller's, for identical decay).
-- Then ops, each a letter and its fields; KEYS are consumed in op order (one per op unless noted).
-- Writes (queued after an earlier request's decision, each with its own time t):
--   S t points half_life              entity: decay the score to t, add points
--   A t field until payload max ttl   entity: set an action (max=1: only if it ends later)
--   B t count ttl                     entity: ban history "count t"
--   C t field ttl                     entity: alert cooldown (time of the last alert)
-- Reads and window updates (this request):
--   W nwin, then per window its aggregates (see specs); the first nadd get the event (fewer when an
--                                     input failed)
--                                     KEYS: nwin window keys; one MGET, one SET PX each
--   V and the aggregates with nadd 0  window key (read only)
--   E                                 entity: HGETALL
--   F                                 entity: HGETALL, and its actions count for the limits (see below)
--   P                                 entity: lift actions, forget ban history and score
-- Returns one entry per window of W (its aggregates' values as packed doubles), per V (the same, or ""
-- when there is no state),
-- per E and F (the HGETALL array) and per P (actions lifted), in order. Two more values for the
-- combined script (proxy/state/joint.py; EVAL keeps only the first): the smallest throttle factor in
-- force on the F entities (nil if none) and whether a block is in force on one of them, read as the
-- engine's ``collect`` does (actions with until > now).

local now = tonumber(ARGV[1])
local ln2 = tonumber(ARGV[2])
local fmt = string.format
local SEP = '\31'

local function num(x)
  return fmt('%.17g', x)
end

local function extend(key, ttl)
  local ms = math.ceil(ttl * 1000)
  if ms < 1 then ms = 1 end
  if redis.call('PTTL', key) < ms then
    redis.call('PEXPIRE', key, ms)
  end
end

-- A ring of n buckets with a running total (windows.py Ring) at offset o of the flat state r:
-- r[o+1] head bucket, r[o+2] total, r[o+3 .. o+2+n] the slots. v == nil: read without changing r.
local function ring(r, o, n, idx, v)
  local last, total = r[o + 1], r[o + 2]
  if idx > last then
    if last < 0 or idx - last >= n then
      if v ~= nil then
        for j = o + 3, o + n + 2 do r[j] = 0 end
      end
      total = 0
    else
      for b = last + 1, idx do
        local j = o + 3 + b % n
        total = total - r[j]
        if v ~= nil then r[j] = 0 end
      end
      if not (total > 1e-9) then total = 0 end
    end
    last = idx
  end
  if v == nil then return total end
  if idx < last then idx = last end  -- a late event counts in the head bucket
  local j = o + 3 + idx % n
  r[j] = r[j] + v
  total = total + v
  r[o + 1], r[o + 2] = last, total
  return total
end

local function init_ring(r, o, n)
  r[o + 1], r[o + 2] = -1, 0
  for j = o + 3, o + n + 2 do r[j] = 0 end
end

-- Inter-arrival gaps (windows.py Gaps) at offset o: last, next slot, count, sum, sum of squares, gaps.
local function gaps(g, o, size, stat, add)
  if add then
    if g[o + 1] >= 0 then
      local d = now - g[o + 1]
      if not (d > 0) then d = 0 end
      local j = g[o + 2] % size
      if g[o + 3] == size then
        local old = g[o + 6 + j]
        g[o + 4] = g[o + 4] - old
        g[o + 5] = g[o + 5] - old * old
      else
        g[o + 3] = g[o + 3] + 1
      end
      g[o + 6 + j] = d
      g[o + 4] = g[o + 4] + d
      g[o + 5] = g[o + 5] + d * d
      g[o + 2] = j + 1
    end
    g[o + 1] = now
  end
  local n = g[o + 3]
  if n < 2 then
    if stat == 'cv' then return 1.0 end
    return 0.0
  end
  local mean = g[o + 4] / n
  if stat == 'mean' then return mean end
  if stat == 'min' then
    local lo = g[o + 6]
    for j = o + 7, o + n + 5 do
      if g[j] < lo then lo = g[j] end
    end
    return lo
  end
  local var = g[o + 5] / n - mean * mean
  if not (var > 0) then var = 0 end
  local cv = 0.0
  if mean > 0 then cv = math.sqrt(var) / mean end
  if stat == 'cv' then return cv end
  return (cv - 1.0) / (cv + 1.0)
end

-- A window's aggregate specs from ARGV[a]: first its static fields (the caller's, built once per rule):
-- the window's ttl in ms, nagg, the number of static fields after these three, then per aggregate a
-- kind letter and its parameters (c|s|q n | r n per window | d n ttl_ms max_values | e alpha | i samples
-- stat); then this
-- event's fields: nadd, and per aggregate its bucket index (c s r q d) and, for the first nadd
-- aggregates, the event's input (s x | q 0/1 | d value hash | e x). Plain fields, no patterns to match:
-- this runs for every window of every request. Returns the specs, the flat state length, the ttl
-- (ms, as sent), nadd and the next index.
local function specs(a)
  local ttl, nagg = ARGV[a], tonumber(ARGV[a + 1])
  local s = a + 3
  a = s + tonumber(ARGV[a + 2])
  local nadd = tonumber(ARGV[a])
  a = a + 1
  local out, len = {}, 0
  for i = 1, nagg do
    local add = i <= nadd
    local kind = ARGV[s]
    local sp
    if kind == 'c' or kind == 's' or kind == 'q' then
      local n = tonumber(ARGV[s + 1])
      s = s + 2
      local size = 2 + n
      if kind == 'q' then size = 2 * size end
      sp = {kind, n, tonumber(ARGV[a]), size = size, off = len}
      a = a + 1
      if add and kind == 's' then
        sp[4] = tonumber(ARGV[a])
        a = a + 1
      elseif add and kind == 'q' then
        sp[4] = ARGV[a] == '1'
        a = a + 1
      end
    elseif kind == 'd' then
      sp = {kind, tonumber(ARGV[s + 1]), tonumber(ARGV[a]), ARGV[s + 2], tonumber(ARGV[s + 3]),
            size = 3, off = len}
      s = s + 4
      a = a + 1
      if add then
        sp[6], sp[7] = ARGV[a], tonumber(ARGV[a + 1])
        a = a + 2
      end
    elseif kind == 'r' then
      local n = tonumber(ARGV[s + 1])
      sp = {kind, n, tonumber(ARGV[a]), tonumber(ARGV[s + 2]), tonumber(ARGV[s + 3]), size = 2 + n, off = len}
      s = s + 4
      a = a + 1
    elseif kind == 'e' then
      sp = {kind, tonumber(ARGV[s + 1]), size = 2, off = len}
      s = s + 2
      if add then
        sp[3] = tonumber(ARGV[a])
        a = a + 1
      end
    else  -- 'i'
      local n = tonumber(ARGV[s + 1])
      sp = {kind, n, ARGV[s + 2], size = 5 + n, off = len}
      s = s + 3
    end
    len = len + sp.size
    out[i] = sp
  end
  return out, len, ttl, nadd, a
end

local function init(st, sp)
  local o, kind = sp.off, sp[1]
  if kind == 'q' then
    init_ring(st, o, sp[2])
    init_ring(st, o + 2 + sp[2], sp[2])
  elseif kind == 'd' then
    st[o + 1], st[o + 2], st[o + 3] = -1, -1, 0
  elseif kind == 'e' then
    st[o + 1], st[o + 2] = 0.0, -1.0
  elseif kind == 'i' then
    for j = o + 1, o + sp.size do st[j] = 0 end
    st[o + 1] = -1.0
  else
    init_ring(st, o, sp[2])
  end
end

-- Aggregate number i (0-based) of window `key`, spec sp, on the flat state st; add: with the event.
local function aggregate(key, i, sp, st, add)
  local kind, o = sp[1], sp.off
  if kind == 'c' or kind == 's' or kind == 'r' then
    local v = nil
    if add then v = sp[4] or 1.0 end
    if kind == 'r' then v = add and 1.0 or nil end
    local total = ring(st, o, sp[2], sp[3], v)
    if kind == 'r' then return total * sp[4] / sp[5] end
    return total
  elseif kind == 'q' then  -- numerator ring, then denominator ring
    local n, idx = sp[2], sp[3]
    local den, nu
    if add then
      den = ring(st, o + 2 + n, n, idx, 1.0)
      if sp[4] then nu = ring(st, o, n, idx, 1.0) else nu = ring(st, o, n, idx, nil) end
    else
      den = ring(st, o + 2 + n, n, idx, nil)
      nu = ring(st, o, n, idx, nil)
    end
    if den ~= 0 then return nu / den end
    return 0.0
  elseif kind == 'd' then  -- {last count, its bucket, hash of the last value added}
    local n, idx, ms, maxv = sp[2], sp[3], sp[4], sp[5]
    local c = st[o + 1]
    if not add then
      local base = key .. SEP .. i .. SEP
      local ks = {}
      for b = idx - n + 1, idx do ks[#ks + 1] = base .. num(b) end
      c = redis.call('PFCOUNT', unpack(ks))
    elseif st[o + 2] ~= idx or st[o + 3] ~= sp[7] then
      -- The union key holds the window's buckets merged: rebuilt when the window moves to a new bucket,
      -- then kept current by adding to it too, so a count is one single-key PFCOUNT (cached by Redis
      -- while the sketch does not change), not a merge of n sketches. The same value again in the same
      -- bucket changes nothing: skipped (st[o+3] is its hash).
      local base = key .. SEP .. i .. SEP
      local hk, uk = base .. num(idx), base .. 'u'
      local added = redis.call('PFADD', hk, sp[6]) == 1
      if added then redis.call('PEXPIRE', hk, ms) end
      if st[o + 2] ~= idx then
        local ks = {}
        for b = idx - n + 1, idx do ks[#ks + 1] = base .. num(b) end
        redis.call('DEL', uk)
        redis.call('PFMERGE', uk, unpack(ks))
        redis.call('PEXPIRE', uk, ms)
        c = redis.call('PFCOUNT', uk)
      elseif added and redis.call('PFADD', uk, sp[6]) == 1 then
        -- (not added: the bucket's sketch already had the value's register, so the union has it too)
        c = redis.call('PFCOUNT', uk)
      end
      st[o + 1], st[o + 2], st[o + 3] = c, idx, sp[7]
    end
    if c > maxv then c = maxv end
    return c
  elseif kind == 'e' then  -- {value, time}
    if add then
      local x = sp[3]
      if st[o + 2] < 0 then
        st[o + 1] = x
      else
        local dt = now - st[o + 2]
        if not (dt > 0) then dt = 0 end
        st[o + 1] = st[o + 1] + (1.0 - math.exp(-sp[2] * dt)) * (x - st[o + 1])
      end
      st[o + 2] = now
    end
    return st[o + 1]
  else
    return gaps(st, o, sp[2], sp[3], add)
  end
end

-- A window's flat state from its stored blob (fresh when missing or of another layout).
local FMT = {}  -- '<' and len 'd's, by len
local function packing(len)
  local f = FMT[len]
  if f == nil then
    f = '<' .. string.rep('d', len)
    FMT[len] = f
  end
  return f
end

local function load(blob, sps, len)
  local fmt = packing(len)
  if blob and #blob == 8 * len then
    local st = {struct.unpack(fmt, blob)}
    st[len + 1] = nil  -- struct.unpack's last value is the next position
    return st, fmt, true
  end
  local st = {}
  for _, sp in ipairs(sps) do init(st, sp) end
  return st, fmt, false
end

local function values(vals)
  return struct.pack(packing(#vals), unpack(vals))
end

local function score_at(key, hl)
  local m = redis.call('HMGET', key, 'v', 't')
  if not m[1] then return nil end
  local v, t = tonumber(m[1]), tonumber(m[2])
  local dt = now - t
  if not (dt > 0) then dt = 0 end
  return v * math.exp(-ln2 * dt / hl)
end

-- The throttle factor and block in force on an F entity's HGETALL reply, folded into force.
local force = {nil, false}
local function in_force(all)
  for j = 1, #all, 2 do
    local f = all[j]
    if string.byte(f, 1) == 97 then  -- 'a' SEP kind SEP rule -> "until [value,message]"
      local kind = string.match(f, '^a\31([^\31]*)\31')
      if kind == 'throttle' or kind == 'block' then
        local u, v = string.match(all[j + 1], '^(%S+) %[([^,%]]*)')
        u = tonumber(u)
        if u and u > now then
          if kind == 'block' then
            force[2] = true
          else
            v = tonumber(v)
            if v and (force[1] == nil or v < force[1]) then force[1] = v end
          end
        end
      end
    end
  end
end

local out = {}
local k = 1
local a = 3
local saved_now = now
while a <= #ARGV do
  local op = ARGV[a]
  if op == 'W' then
    local nwin = tonumber(ARGV[a + 1])
    a = a + 2
    local wkeys = {}
    for w = 1, nwin do wkeys[w] = KEYS[k + w - 1] end
    k = k + nwin
    local blobs = redis.call('MGET', unpack(wkeys))
    for w = 1, nwin do
      local key = wkeys[w]
      local sps, len, ttl, nadd
      sps, len, ttl, nadd, a = specs(a)
      local st, fmt = load(blobs[w], sps, len)
      local vals = {}
      for i = 1, nadd do vals[i] = aggregate(key, i - 1, sps[i], st, true) end
      redis.call('SET', key, struct.pack(fmt, unpack(st, 1, len)), 'PX', ttl)
      out[#out + 1] = values(vals)
    end
  else
    local key = KEYS[k]
    k = k + 1
    if op == 'E' then
      out[#out + 1] = redis.call('HGETALL', key)
      a = a + 1
    elseif op == 'F' then
      local all = redis.call('HGETALL', key)
      in_force(all)
      out[#out + 1] = all
      a = a + 1
    elseif op == 'S' then
      now = tonumber(ARGV[a + 1])
      local points, hl = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
      local cur = score_at(key, hl)
      local v = points
      if cur ~= nil then v = cur + points end
      redis.call('HSET', key, 'v', num(v), 't', num(now))
      local ttl = hl
      if v > 0.01 then ttl = hl * math.max(1, math.log(v / 0.01) / ln2 + 1) end
      extend(key, ttl)
      now = saved_now
      a = a + 4
    elseif op == 'A' then
      local field, till, payload, max, ttl = ARGV[a + 2], tonumber(ARGV[a + 3]), ARGV[a + 4], ARGV[a + 5],
        tonumber(ARGV[a + 6])
      local write = true
      if max == '1' then
        local old = redis.call('HGET', key, field)
        if old then
          local ou = tonumber(string.match(old, '^(%S+)'))
          if ou and ou >= till then write = false end
        end
      end
      if write then
        redis.call('HSET', key, field, num(till) .. ' ' .. payload)
        extend(key, ttl)
      end
      a = a + 7
    elseif op == 'B' then
      redis.call('HSET', key, 'b', ARGV[a + 2] .. ' ' .. ARGV[a + 1])
      extend(key, tonumber(ARGV[a + 3]))
      a = a + 4
    elseif op == 'C' then
      redis.call('HSET', key, ARGV[a + 2], ARGV[a + 1])
      extend(key, tonumber(ARGV[a + 3]))
      a = a + 4
    elseif op == 'V' then
      local sps, len, ttl, nadd
      sps, len, ttl, nadd, a = specs(a + 1)
      local st, fmt, found = load(redis.call('GET', key), sps, len)
      local vals = {}
      for i = 1, #sps do vals[i] = aggregate(key, i - 1, sps[i], st, false) end
      if found then out[#out + 1] = values(vals) else out[#out + 1] = '' end
    elseif op == 'P' then
      local all = redis.call('HGETALL', key)
      local lifted, del = 0, {}
      for j = 1, #all, 2 do
        local f = all[j]
        local c = string.sub(f, 1, 1)
        if c == 'a' then
          del[#del + 1] = f
          local u = tonumber(string.match(all[j + 1], '^(%S+)'))
          if u and u > now then lifted = lifted + 1 end
        elseif f == 'b' or f == 'v' or f == 't' then
          del[#del + 1] = f
        end
      end
      if #del > 0 then redis.call('HDEL', key, unpack(del)) end
      out[#out + 1] = lifted
      a = a + 1
    else
      return redis.error_reply('distillguard rules.lua: unknown op ' .. tostring(op))
    end
  end
end
return out, force[1], force[2]
