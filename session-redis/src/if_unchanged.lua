-- Writes (ARGV[2], ARGV[3]: the new value and its PXAT expiry) or, without them, deletes
-- KEYS[1] if it is live and still at revision ARGV[1] (16 hex digits); nil if absent, the
-- current value if at another revision.
local head = redis.call('GETRANGE', KEYS[1], 0, 15)
if head ~= ARGV[1] then
  if head == '' and redis.call('EXISTS', KEYS[1]) == 0 then
    return false
  end
  return redis.call('GET', KEYS[1])
end
if ARGV[2] then
  return redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])
end
return redis.call('DEL', KEYS[1])
