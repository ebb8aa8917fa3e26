"""ShardLeases: which worker process of a consumer group reads which upstream stream.

Every event of one socket is written to one stream, ``P:up:<nsp>:<shard>`` with shard =
fnv1a32(sid) % upstream-shards (DESIGN.md 3.2). A stream read by one process at a time therefore
delivers each socket's events to one process, in order; the process then runs them in order too
(pool.KeyedPool). So each stream is leased to one consumer of the group at a time:

- ``P:lease:<group>:<stream>`` = consumer name, ``PX lease_ms``, renewed every ``lease_ms / 3``;
- ``P:members:<group>:<set>``: sorted set consumer → expiry (ms), ``<set>`` naming the set of
  streams (8 hex digits of its SHA-1), so processes that read other streams under the same group
  name do not count; the live members share the streams fairly: each holds at most
  ceil(streams / members); one that holds more gives the extra up.
- A stream to give up is first no longer read ("draining"), and released only once none of its
  entries is still being handled here, so its next owner never runs a socket's later event
  before this process has finished the earlier one.
- A new owner first takes over the stream's pending entries (XAUTOCLAIM from idle 0) and handles
  them before new ones: nothing the previous owner read and did not acknowledge is lost.

A process that stalls longer than ``lease_ms`` loses its leases (it learns so at its next renewal
and stops reading those streams); entries it was handling may then run twice, which the
at-least-once contract allows (the stream id is the idempotency key).
"""

import hashlib
import math
import time

__all__ = ["ShardLeases"]

REBALANCE_MS = 200

# KEYS[1] lease key; ARGV[1] me, ARGV[2] ms. Renews if mine or takes it if free: 1, else 0.
_ACQUIRE = """
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if owner then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
# KEYS[1] lease key; ARGV[1] me. Deletes it only if mine.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class ShardLeases:
    """The leases one consumer holds on ``streams``; call :meth:`tick` regularly.

    ``busy(stream)`` (given by the caller) says whether entries of that stream are still being
    handled here; such a stream is not given up yet. :meth:`readable` is the set of streams
    this consumer may read now (held and not draining). :meth:`tick` returns the streams newly acquired (their pending
    entries should be read first) and is cheap to call often: it talks to Redis at most every
    ``lease_ms / 3``.
    """

    def __init__(self, redis, key_prefix, group, consumer, streams, lease_ms=10000):
        self.redis = redis
        self.group = group
        self.consumer = consumer
        self.streams = list(streams)
        self.lease_ms = int(lease_ms)
        self.held = set()
        self.draining = set()
        digest = hashlib.sha1("\n".join(sorted(self.streams)).encode()).hexdigest()[:8]
        self._members = "%s:members:%s:%s" % (key_prefix, group, digest)
        self._prefix = "%s:lease:%s:" % (key_prefix, group)
        self._acquire = redis.register_script(_ACQUIRE)
        self._release = redis.register_script(_RELEASE)
        self._next = 0.0

    def readable(self):
        return self.held - self.draining

    def next_tick_ms(self):
        """Milliseconds until :meth:`tick` has work again (the caller's longest wait)."""
        return max(0, int((self._next - time.monotonic()) * 1000))

    def _key(self, stream):
        return self._prefix + stream

    def tick(self, busy=lambda stream: False, force=False):
        """Renews, gives up extras and takes free streams up to the fair share."""
        now = time.monotonic()
        if not force and now < self._next:
            return []
        now_ms = int(time.time() * 1000)
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(self._members, {self.consumer: now_ms + self.lease_ms})
        pipe.zremrangebyscore(self._members, "-inf", now_ms)
        pipe.pexpire(self._members, self.lease_ms * 2)
        pipe.zcard(self._members)
        members = max(1, pipe.execute()[-1])
        fair = math.ceil(len(self.streams) / members)
        for stream in sorted(self.held):  # renew; a lease found taken is lost
            if not self._acquire(keys=[self._key(stream)], args=[self.consumer, self.lease_ms]):
                self.held.discard(stream)
                self.draining.discard(stream)
        extra = len(self.held) - fair
        for stream in sorted(self.held, reverse=True):  # draining ones first, then the last
            if extra <= len(self.draining):
                break
            self.draining.add(stream)
        while self.draining and extra < len(self.draining):  # the share grew again
            self.draining.discard(max(self.draining))
        for stream in sorted(self.draining):
            if not busy(stream):
                self._release(keys=[self._key(stream)], args=[self.consumer])
                self.held.discard(stream)
                self.draining.discard(stream)
        acquired = []
        for stream in self.streams:
            if len(self.held) >= fair:
                break
            if stream in self.held:
                continue
            if self._acquire(keys=[self._key(stream)], args=[self.consumer, self.lease_ms]):
                self.held.add(stream)
                acquired.append(stream)
        # renewals every lease_ms / 3; while the share is not reached (a stream to take or to
        # give up), every REBALANCE_MS, so a stream changes hands within a fraction of a second
        settled = not self.draining and len(self.held) >= min(fair, len(self.streams))
        period = self.lease_ms / 3000.0 if settled else min(self.lease_ms / 3000.0,
                                                             REBALANCE_MS / 1000.0)
        self._next = time.monotonic() + period
        return acquired

    def release_all(self):
        """Gives every lease up (at a clean stop, after the handlers finished) and leaves."""
        for stream in sorted(self.held):
            self._release(keys=[self._key(stream)], args=[self.consumer])
        self.held.clear()
        self.draining.clear()
        self.redis.zrem(self._members, self.consumer)
