"""Redis clients for ``redis://`` and ``rediss://`` URLs, with the TLS settings of the gateways
and the broker (DESIGN.md §2 ``redis-tls-*``), as arguments or the same environment variables:

=========================  ==========================  ========================================
argument                   environment                 meaning
=========================  ==========================  ========================================
``redis_tls_ca``           ``SIOC_REDIS_TLS_CA``       PEM CA file (default: the system's CAs)
``redis_tls_cert``         ``SIOC_REDIS_TLS_CERT``     client certificate (tls-auth-clients)
``redis_tls_key``          ``SIOC_REDIS_TLS_KEY``      its private key
``redis_tls_server_name``  ``SIOC_REDIS_TLS_SERVER_NAME``  name to verify (default: the URL's host)
``redis_tls_insecure``     ``SIOC_REDIS_TLS_INSECURE`` ``yes``: verify nothing (logged)
=========================  ==========================  ========================================

Verification (chain and host name) is on unless ``redis_tls_insecure`` says otherwise; redis-py
leaves the host name unchecked by default, so it is asked for explicitly. The settings with a
``redis://`` URL are an error, as in the C processes (they would silently do nothing).
"""

import logging
import os
import ssl

import redis as redis_lib
from redis.connection import Connection, SSLConnection

from .cluster_keys import is_cluster_url, parse_cluster_url

TLS_OPTIONS = ("ca", "cert", "key", "server_name", "insecure")


def _flag(value):
    if isinstance(value, bool) or value is None:
        return bool(value)
    text = str(value).strip().lower()
    if text in ("yes", "true", "on", "1"):
        return True
    if text in ("no", "false", "off", "0", ""):
        return False
    raise ValueError("redis_tls_insecure: %r is not yes or no" % (value,))


class ServerNameSSLConnection(SSLConnection):
    """An SSLConnection that verifies (and sends as SNI) ``ssl_server_name`` instead of the host
    it connects to, as the C processes' ``redis-tls-server-name``."""

    def __init__(self, ssl_server_name=None, **kwargs):
        super().__init__(**kwargs)
        self.ssl_server_name = ssl_server_name

    def _connect(self):
        sock = Connection._connect(self)
        context = ssl.create_default_context()
        context.check_hostname = self.check_hostname
        context.verify_mode = self.cert_reqs
        if self.certfile or self.keyfile:
            context.load_cert_chain(certfile=self.certfile, keyfile=self.keyfile)
        if self.ca_certs is not None:
            context.load_verify_locations(cafile=self.ca_certs)
        return context.wrap_socket(sock, server_hostname=self.ssl_server_name or self.host)


def tls_settings(**given):
    """The five settings: each ``redis_tls_<name>`` argument, else its environment variable."""
    out = {}
    for name in TLS_OPTIONS:
        value = given.get("redis_tls_" + name)
        if value is None:
            value = os.environ.get("SIOC_REDIS_TLS_" + name.upper()) or None
        out[name] = value
    out["insecure"] = _flag(out["insecure"])
    return out


def _cluster_client(url, settings, logger):
    """A redis.cluster.RedisCluster for a redis[s]-cluster:// seed list (cluster_keys)."""
    from redis.cluster import ClusterNode, RedisCluster
    seeds, username, password, tls = parse_cluster_url(url)
    kwargs = {"startup_nodes": [ClusterNode(h, p) for h, p in seeds], "username": username,
              "password": password}
    if tls:
        if bool(settings["cert"]) != bool(settings["key"]):
            raise ValueError("redis_tls_cert and redis_tls_key go together")
        if settings["server_name"]:
            raise ValueError("redis_tls_server_name is not supported with rediss-cluster:// "
                             "(each node is verified under its own address)")
        kwargs.update(ssl=True, ssl_ca_certs=settings["ca"], ssl_certfile=settings["cert"],
                      ssl_keyfile=settings["key"],
                      ssl_cert_reqs="none" if settings["insecure"] else "required",
                      ssl_check_hostname=not settings["insecure"])
        if settings["insecure"]:
            (logger or logging.getLogger("sioc")).warning(
                "redis_tls_insecure: Redis's certificate and name are NOT verified")
    else:
        given = [n for n in TLS_OPTIONS if settings[n]]
        if given:
            raise ValueError("redis_tls_%s needs a rediss-cluster:// URL" % given[0])
    client = RedisCluster(**kwargs)
    _survive_topology_changes(client)
    return client


class _Shared:
    """A callable that deepcopy leaves alone (see _survive_topology_changes)."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def __deepcopy__(self, memo):
        return self


def _survive_topology_changes(client):
    """redis-py 4.3 (Debian's python3-redis) deep-copies its connection arguments to reach a node
    it has no connection to yet (a promoted replica after a failover), and those hold a bound
    method of the client, whose locks cannot be copied: every reconnection then fails with
    "cannot pickle '_thread.lock' object". The method is shared instead of copied."""
    manager = getattr(client, "nodes_manager", None)
    kwargs = getattr(manager, "connection_kwargs", None)
    if kwargs is not None and callable(kwargs.get("redis_connect_func")):
        kwargs["redis_connect_func"] = _Shared(kwargs["redis_connect_func"])
    if callable(getattr(manager, "_get_or_create_cluster_node", None)):
        _roles_follow_slot_map(manager)


def _roles_follow_slot_map(manager):
    """redis-py 4.3's slot-map refresh (NodesManager.initialize) reuses the ClusterNode it
    already has for an address, role included: a replica promoted after its master died (kill -9:
    no MOVED reply updates the role) stays a "replica". Commands sent to every primary then miss
    it; SCRIPT LOAD above all, so EVALSHA there (the stream leases' scripts) fails with NOSCRIPT
    for ever and the worker never reads its streams again. The role CLUSTER SLOTS gives wins."""
    original = manager._get_or_create_cluster_node

    def get_or_create(host, port, role, tmp_nodes_cache):
        node = original(host, port, role, tmp_nodes_cache)
        node.server_type = role
        return node

    manager._get_or_create_cluster_node = get_or_create


def client_from_url(url, logger=None, **tls):
    """A redis.Redis for ``url`` (redis:// or rediss://), or a redis.cluster.RedisCluster for
    ``redis-cluster://host:port[,host:port...]`` (``rediss-cluster://``), with the TLS settings of
    ``tls`` (``redis_tls_ca=...`` and so on; unset ones come from the environment)."""
    settings = tls_settings(**tls)
    if is_cluster_url(url):
        return _cluster_client(url, settings, logger)
    if not url.startswith("rediss://"):
        given = [n for n in TLS_OPTIONS if settings[n]]
        if given:
            raise ValueError("redis_tls_%s needs a rediss:// URL" % given[0])
        return redis_lib.Redis.from_url(url)
    if bool(settings["cert"]) != bool(settings["key"]):
        raise ValueError("redis_tls_cert and redis_tls_key go together")
    kwargs = {
        "ssl_ca_certs": settings["ca"],
        "ssl_certfile": settings["cert"],
        "ssl_keyfile": settings["key"],
        "ssl_cert_reqs": "none" if settings["insecure"] else "required",
        "ssl_check_hostname": not settings["insecure"],
    }
    if settings["server_name"]:
        kwargs["connection_class"] = ServerNameSSLConnection
        kwargs["ssl_server_name"] = settings["server_name"]
    if settings["insecure"]:
        (logger or logging.getLogger("sioc")).warning(
            "redis_tls_insecure: Redis's certificate and name are NOT verified")
    return redis_lib.Redis.from_url(url, **kwargs)
