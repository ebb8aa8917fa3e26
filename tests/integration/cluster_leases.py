#!/usr/bin/python3
"""Helper of test_sdk_cluster_roles.mjs: the SDK's Redis Cluster client (sioc.redis_tls) and its
stream leases (sioc.leases.ShardLeases, EVALSHA scripts) across a master's kill -9.

    /usr/bin/python3 tests/integration/cluster_leases.py redis-cluster://host:port,...

Refreshes the slot map until it lists the six nodes (so the replicas are known, as replicas, like
in a worker that has run a while), ticks the lease of stream sioc:up:/:{0.1} (slot 0), prints
"ready", then, at each line read on stdin, refreshes the slot map (retrying while the cluster is
failing over) and prints "roles <port>:<role> ..." and "tick ok <streams held>" or
"tick failed <exception>".
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "sdk", "python"))

from sioc.leases import ShardLeases  # noqa: E402
from sioc.redis_tls import client_from_url  # noqa: E402

STREAM = "sioc:up:/:{0.1}"


def refresh(nodes, want=None, seconds=20):
    deadline = time.monotonic() + seconds
    while True:
        try:
            nodes.initialize()
            if want is None or len(nodes.nodes_cache) >= want:
                return
        except Exception:  # noqa: BLE001 - failing over: retried until the deadline
            pass
        if time.monotonic() > deadline:
            return
        time.sleep(0.2)


def main():
    client = client_from_url(sys.argv[1])
    nodes = client.nodes_manager
    refresh(nodes, want=6)
    leases = ShardLeases(client, "sioc", "workers", "c1", [STREAM], lease_ms=30000)
    leases.tick(force=True)
    print("ready", flush=True)
    for _ in sys.stdin:
        refresh(nodes)
        known = sorted(nodes.nodes_cache.values(), key=lambda n: n.port)
        print("roles " + " ".join("%d:%s" % (n.port, n.server_type) for n in known), flush=True)
        try:
            leases.tick(force=True)
            print("tick ok %s" % ",".join(sorted(leases.held)), flush=True)
        except Exception as exc:  # noqa: BLE001 - reported to the test
            print("tick failed %s: %s" % (type(exc).__name__, exc), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
