"""Redis Cluster seed URLs and key names (sioc.cluster_keys): the same names as the C gateways
and broker (tests/unit/test_redis_slots.c, test_envelope.c check the same values)."""
import unittest

from sioc import protocol
from sioc.cluster_keys import (cluster_prefix, is_cluster_prefix, is_cluster_url,
                               parse_cluster_url, spread_tag)
from redis.crc import key_slot


class ClusterKeysTest(unittest.TestCase):
    def test_spread_tags_match_the_c_side(self):
        self.assertEqual([spread_tag(s, 3) for s in range(3)], ["0.1", "1.0", "2.0"])
        self.assertEqual(spread_tag(3, 4), "3.3")
        for n in (1, 2, 5, 16):
            for s in range(n):
                slot = key_slot(spread_tag(s, n).encode())
                self.assertTrue(s * 16384 // n <= slot < (s + 1) * 16384 // n)
        with self.assertRaises(ValueError):
            spread_tag(3, 3)

    def test_stream_keys(self):
        self.assertEqual(protocol.stream_key("sioc", "/chat", 3), "sioc:up:/chat:3")
        self.assertEqual(protocol.stream_key("{sioc}", "/chat", 0, 3), "sioc:up:/chat:{0.1}")
        with self.assertRaises(ValueError):
            protocol.stream_key("{sioc}", "/", 0)

    def test_prefix(self):
        self.assertEqual(cluster_prefix("sioc"), "{sioc}")
        self.assertTrue(is_cluster_prefix("{sioc}") and not is_cluster_prefix("sioc"))
        for bad in ("", "a{b", "x}"):
            with self.assertRaises(ValueError):
                cluster_prefix(bad)

    def test_urls(self):
        self.assertTrue(is_cluster_url("rediss-cluster://h:1") and not is_cluster_url("redis://h"))
        self.assertEqual(parse_cluster_url("redis-cluster://10.0.0.1:7000,[::1]:7001,h/"),
                         ([("10.0.0.1", 7000), ("::1", 7001), ("h", 6379)], None, None, False))
        self.assertEqual(parse_cluster_url("rediss-cluster://al:p%2Cw@h:1"),
                         ([("h", 1)], "al", "p,w", True))
        for bad in ("redis-cluster://a,,b", "redis-cluster://a/1", "redis-cluster://a:0",
                    "redis-cluster://a:x", "redis-cluster://a?x=1", "redis-cluster://u@a"):
            with self.assertRaises(ValueError):
                parse_cluster_url(bad)


if __name__ == "__main__":
    unittest.main()
