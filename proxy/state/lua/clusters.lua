-- distillguard: near-duplicate template clustering shared by every replica (proxy/policy/clusters_shared.py).
-- The same banded-LSH search as TemplateClusters.observe, on Redis: one call per template a process has
-- not mapped yet, made after the request (never on a request's path).
--
-- KEYS[1]         template -> cluster id (string, PX ttl)
-- KEYS[2..n+1]    one list per LSH band of the new template's SimHash: entries "seq hi lo id", most
--                 recently used first, at most ARGV[4] per list
-- KEYS[n+2]       cluster sequence counter (creation order: among near clusters the earliest wins)
-- ARGV: hi, lo (the SimHash's 32-bit halves), radius (bits), bucket_max, ttl_ms, template id
-- Returns {cluster id, 1 if a new cluster was started else 0, the cluster's SimHash hi, lo}.
local ttl = tonumber(ARGV[5])
local known = redis.call('GET', KEYS[1])
if known then
  redis.call('PEXPIRE', KEYS[1], ttl)
  return {known, 0, false, false}
end
local nb = #KEYS - 2
local hi, lo = tonumber(ARGV[1]), tonumber(ARGV[2])
local radius, bucket_max = tonumber(ARGV[3]), tonumber(ARGV[4])
local function popcount(x)
  local n = 0
  while x ~= 0 do
    x = bit.band(x, x - 1)
    n = n + 1
  end
  return n
end
local best, best_seq, best_id, best_hi, best_lo = nil, nil, nil, ARGV[1], ARGV[2]
for i = 2, nb + 1 do
  for _, e in ipairs(redis.call('LRANGE', KEYS[i], 0, -1)) do
    local seq, ehi, elo, id = string.match(e, '^(%d+) (%d+) (%d+) (.*)$')
    if seq then
      seq = tonumber(seq)
      if best == nil or seq < best_seq then
        local d = popcount(bit.bxor(tonumber(ehi), hi)) + popcount(bit.bxor(tonumber(elo), lo))
        if d <= radius then
          best, best_seq, best_id, best_hi, best_lo = e, seq, id, ehi, elo
        end
      end
    end
  end
end
local new = 0
if best == nil then
  best_id = ARGV[6]
  best = redis.call('INCR', KEYS[nb + 2]) .. ' ' .. ARGV[1] .. ' ' .. ARGV[2] .. ' ' .. best_id
  new = 1
end
-- most recently used first in the buckets it is listed in (a new cluster: all of its own buckets)
for i = 2, nb + 1 do
  if new == 1 or redis.call('LREM', KEYS[i], 0, best) > 0 then
    redis.call('LPUSH', KEYS[i], best)
    redis.call('LTRIM', KEYS[i], 0, bucket_max - 1)
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
end
redis.call('SET', KEYS[1], best_id, 'PX', ttl)
return {best_id, new, best_hi, best_lo}
