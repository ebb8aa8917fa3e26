"""A PEP 517 build backend for the sioc SDK using only the standard library, so that
`pip install ./sdk/python` needs nothing from a package index (offline machines, CI).

It builds a pure-Python wheel of the `sioc` package (and an sdist) from pyproject.toml's
[project] table: name, version, description, requires-python, dependencies, extras.
"""

import base64
import hashlib
import io
import os
import tarfile
import zipfile

try:
    import tomllib  # Python 3.11+
except ImportError:  # pragma: no cover - older Pythons with tomli installed
    import tomli as tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "sioc"


def _project():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]


def _metadata(p):
    lines = ["Metadata-Version: 2.1", "Name: " + p["name"], "Version: " + p["version"],
             "Summary: " + p.get("description", ""), "License: " + p.get("license", {}).get("text", "")]
    if "requires-python" in p:
        lines.append("Requires-Python: " + p["requires-python"])
    for dep in p.get("dependencies", []):
        lines.append("Requires-Dist: " + dep)
    for extra, deps in p.get("optional-dependencies", {}).items():
        lines.append("Provides-Extra: " + extra)
        for dep in deps:
            lines.append('Requires-Dist: %s; extra == "%s"' % (dep, extra))
    readme = os.path.join(ROOT, p.get("readme", "README.md"))
    body = ""
    if os.path.exists(readme):
        lines.append("Description-Content-Type: text/markdown")
        with open(readme, encoding="utf-8") as f:
            body = "\n" + f.read()
    return "\n".join(lines) + "\n" + body


def _package_files():
    base = os.path.join(ROOT, PACKAGE)
    for name in sorted(os.listdir(base)):
        if name.endswith(".py"):
            yield os.path.join(PACKAGE, name)


def _digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    p = _project()
    dist = "%s-%s" % (p["name"], p["version"])
    path = os.path.join(wheel_directory, dist + "-py3-none-any.whl")
    records = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as whl:
        def add(arcname, data):
            whl.writestr(arcname, data)
            records.append("%s,%s,%d" % (arcname, _digest(data), len(data)))
        for rel in _package_files():
            with open(os.path.join(ROOT, rel), "rb") as f:
                add(rel.replace(os.sep, "/"), f.read())
        info = dist + ".dist-info/"
        add(info + "METADATA", _metadata(p).encode())
        add(info + "WHEEL", b"Wheel-Version: 1.0\nGenerator: sioc-backend\n"
                            b"Root-Is-Purelib: true\nTag: py3-none-any\n")
        records.append(info + "RECORD,,")
        whl.writestr(info + "RECORD", "\n".join(records) + "\n")
    return os.path.basename(path)


def build_sdist(sdist_directory, config_settings=None):
    p = _project()
    dist = "%s-%s" % (p["name"], p["version"])
    path = os.path.join(sdist_directory, dist + ".tar.gz")
    with tarfile.open(path, "w:gz") as tar:
        for rel in ["pyproject.toml", "README.md", os.path.join("_build", "backend.py")] + \
                list(_package_files()):
            tar.add(os.path.join(ROOT, rel), arcname=os.path.join(dist, rel))
        data = _metadata(p).encode()
        info = tarfile.TarInfo(os.path.join(dist, "PKG-INFO"))
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return os.path.basename(path)
