"""`pip install ./sdk/python` works offline (no package index), into a fresh virtualenv."""

import os
import subprocess
import sys
import tempfile
import unittest

SDK = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


class Packaging(unittest.TestCase):

    def test_pip_install_offline(self):
        with tempfile.TemporaryDirectory(prefix="sioc-venv-") as venv:
            subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", venv],
                           check=True, timeout=60)
            python = os.path.join(venv, "bin", "python")
            out = subprocess.run([python, "-m", "pip", "install", "--no-index", SDK],
                                 capture_output=True, text=True, timeout=120, cwd=venv)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            check = subprocess.run(
                [python, "-c", "import sioc, sioc.flask, sioc.flask_sockets, sioc.aio; "
                               "print(sioc.__version__, sioc.__file__)"],
                capture_output=True, text=True, timeout=30, cwd=venv)
            self.assertEqual(check.returncode, 0, check.stderr)
            version, where = check.stdout.split()
            self.assertEqual(version, "0.2.0")
            self.assertTrue(where.startswith(venv), where)  # the installed copy, not the tree
            meta = subprocess.run([python, "-m", "pip", "show", "sioc"], capture_output=True,
                                  text=True, timeout=60, cwd=venv).stdout
            self.assertIn("Requires: msgpack, redis", meta)
