"""A worker process for test_worker_engine: records every 'n' event as "<sid> <n> <consumer>"
in the Redis list 'order', after a short sleep that lets other events overtake it if the engine
did not keep each socket's order. Usage: order_worker.py REDIS_URL CONSUMER SHARDS LEASE_MS"""

import logging
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import sioc  # noqa: E402

url, consumer, shards, lease_ms = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
worker = sioc.Worker(url, consumer=consumer, shards=shards, lease_ms=lease_ms, pool_size=4,
                     name="order-test")


@worker.on("n")
def n(sid, value):
    time.sleep(random.uniform(0, 0.01))
    worker.redis.rpush("order", "%s %d %s" % (sid, value, consumer))


worker.run()
