"""sioc.redis_tls against a TLS-only redis-server (certificates made with the openssl CLI): the
redis-tls-* settings as Worker arguments and as SIOC_REDIS_TLS_* variables, verification on by
default (host name included), the server name, client certificates, insecure, and the settings
refused with a redis:// URL."""

import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
from unittest import mock

import redis

import sioc
from sioc.redis_tls import client_from_url

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_certificates(d):
    script = r"""
set -e
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out $1; }
for ca in a b; do key ca-$ca.key; openssl req -x509 -new -key ca-$ca.key -out ca-$ca.crt -days 2 -subj "/CN=CA $ca"; done
cert() { key $1.key; openssl req -new -key $1.key -out $1.csr -subj /CN=$1
  printf "subjectAltName=$2\n" >$1.ext
  openssl x509 -req -in $1.csr -CA ca-a.crt -CAkey ca-a.key -CAcreateserial -days 2 -extfile $1.ext -out $1.crt; }
cert server DNS:redis.test
cert client DNS:client
"""
    subprocess.run(["sh", "-c", script], cwd=d, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


class RedisTlsCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="sioc-sdk-tls-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, ignore_errors=True)
        make_certificates(cls.dir)
        f = lambda n: os.path.join(cls.dir, n)  # noqa: E731
        cls.ca, cls.wrong_ca = f("ca-a.crt"), f("ca-b.crt")
        cls.cert, cls.key = f("client.crt"), f("client.key")
        cls.port = free_port()
        cls.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", "0", "--tls-port", str(cls.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--tls-cert-file", f("server.crt"),
             "--tls-key-file", f("server.key"), "--tls-ca-cert-file", cls.ca,
             "--tls-auth-clients", "optional"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cls.addClassCleanup(cls.proc.wait, 5)
        cls.addClassCleanup(cls.proc.kill)  # runs first: cleanups are last in, first out
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", cls.port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.02)
        cls.url = "rediss://127.0.0.1:%d" % cls.port

    def test_verified_by_name_and_ca(self):
        # the certificate names redis.test only: the IP fails the host name check
        with self.assertRaisesRegex(redis.exceptions.ConnectionError, "(?i)mismatch"):
            client_from_url(self.url, redis_tls_ca=self.ca).ping()
        ok = client_from_url(self.url, redis_tls_ca=self.ca, redis_tls_server_name="redis.test",
                             redis_tls_cert=self.cert, redis_tls_key=self.key)
        self.assertTrue(ok.ping())
        with self.assertRaisesRegex(redis.exceptions.ConnectionError, "CERTIFICATE_VERIFY_FAILED"):
            client_from_url(self.url, redis_tls_ca=self.wrong_ca,
                            redis_tls_server_name="redis.test").ping()

    def test_insecure_is_logged(self):
        with self.assertLogs("sioc", "WARNING") as logs:
            c = client_from_url(self.url, redis_tls_ca=self.wrong_ca, redis_tls_insecure="yes")
        self.assertTrue(c.ping())
        self.assertIn("NOT verified", logs.output[0])

    def test_environment_and_worker(self):
        env = {"SIOC_REDIS_TLS_CA": self.ca, "SIOC_REDIS_TLS_SERVER_NAME": "redis.test",
               "SIOC_REDIS_TLS_CERT": self.cert, "SIOC_REDIS_TLS_KEY": self.key}
        with mock.patch.dict(os.environ, env):
            worker = sioc.Worker(self.url, name="tls-test")
            self.assertTrue(worker.redis.ping())
            worker.setup()  # consumer groups created over TLS
            self.assertTrue(worker.redis.exists("sioc:up:/:0"))
            worker.close()
        # an argument beats the environment
        with mock.patch.dict(os.environ, {"SIOC_REDIS_TLS_CA": self.wrong_ca}):
            w = sioc.Worker(self.url, name="tls-test", redis_tls_ca=self.ca,
                            redis_tls_server_name="redis.test")
            self.assertTrue(w.redis.ping())
            w.close()

    def test_settings_need_rediss(self):
        with self.assertRaisesRegex(ValueError, "redis_tls_ca needs a rediss:// URL"):
            client_from_url("redis://127.0.0.1:1", redis_tls_ca=self.ca)
        with self.assertRaisesRegex(ValueError, "go together"):
            client_from_url(self.url, redis_tls_cert=self.cert)
        with self.assertRaisesRegex(ValueError, "yes or no"):
            client_from_url(self.url, redis_tls_insecure="maybe")


if __name__ == "__main__":
    unittest.main()
