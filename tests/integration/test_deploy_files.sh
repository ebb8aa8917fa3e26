#!/usr/bin/env bash
# test_deploy_files.sh: issue 11, the deployment files checked offline (there is no Docker engine
# or Kubernetes cluster here): docker-compose.yml with `docker-compose config`, haproxy.cfg with
# `haproxy -c`, the nginx snippet with `nginx -t`, then (Python, /usr/bin/python3 + python3-yaml)
# the structure operators rely on: every Kubernetes manifest parses and carries its probes,
# preStop, grace period above the drain, rolling update, non-root read-only containers,
# resources, spread, ingress affinity and timeouts; every flag and SIOC_* variable the compose
# file and the manifests give a program is one of its options and passes its --check-config;
# the Dockerfiles' instructions, runtime packages (against ldd of the built binaries), build
# context (.dockerignore) and COPY sources (`make -n release` in a copy of the build stage's
# files); docs/operations.md lists every option of --help; docs/api.md every API error message.
# Prints "test_deploy_files: N passed, M failed"; exit status 1 on any failure.
set -u
cd "$(dirname "$0")/../.." || exit 2
GATEWAY=${SIOC_GATEWAY:-build/sioc-gateway}
BROKER=${SIOC_BROKER:-build/sioc-broker}
PY=/usr/bin/python3
passed=0
failed=0
ok() {
    passed=$((passed + 1))
    echo "ok   $1"
}
fail() {
    failed=$((failed + 1))
    echo "FAIL $1"
    [ -n "${2:-}" ] && sed -e 's/^/     | /' <<<"$2" | head -n 20
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for bin in "$GATEWAY" "$BROKER"; do
    [ -x "$bin" ] || { echo "$bin is missing: run make first"; echo "test_deploy_files: 0 passed, 1 failed"; exit 1; }
done

# ---- docker-compose.yml ----
# An empty env file and a clean environment: a developer's .env or SIOC_* variables (e.g.
# SIOC_REDIS_URL) must not change what the file says.
: >"$tmp/empty.env"
clean_env=(env -i "PATH=$PATH" "HOME=${HOME:-/root}")
key=$(openssl rand -hex 16)
if out=$("${clean_env[@]}" SIOC_API_KEY="$key" docker-compose --env-file "$tmp/empty.env" -f docker-compose.yml config -q 2>&1); then
    ok "docker-compose config -q (SIOC_API_KEY set)"
else
    fail "docker-compose config -q (SIOC_API_KEY set)" "$out"
fi
if out=$("${clean_env[@]}" docker-compose --env-file "$tmp/empty.env" -f docker-compose.yml config -q 2>&1); then
    fail "docker-compose config refuses to run without SIOC_API_KEY (no default secret)" "$out"
elif grep -q "SIOC_API_KEY" <<<"$out"; then
    ok "docker-compose config refuses to run without SIOC_API_KEY (no default secret)"
else
    fail "docker-compose config names SIOC_API_KEY when it is missing" "$out"
fi
jwt=$(openssl rand -hex 16)
if "${clean_env[@]}" SIOC_API_KEY="$key" SIOC_JWT_SECRET="$jwt" docker-compose --env-file "$tmp/empty.env" -f docker-compose.yml config >"$tmp/compose.yml" 2>"$tmp/compose.err"; then
    ok "docker-compose config (resolved file for the checks below)"
else
    fail "docker-compose config" "$(cat "$tmp/compose.err")"
fi

# ---- docker-compose.yml + deploy/compose.rediss.yml (issue 16: a managed Redis over TLS) ----
# A CA, a Redis client certificate and a gateway certificate, as an operator would mount them.
mkdir -p "$tmp/redis-tls" "$tmp/gateway-tls"
(cd "$tmp/redis-tls" &&
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 \
        -subj /CN=ca -addext basicConstraints=critical,CA:TRUE &&
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout client.key -out client.csr -subj /CN=sioc &&
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -out client.pem &&
    cd ../gateway-tls && printf 'subjectAltName=DNS:sioc.example.com\n' >ext &&
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout tls.key -out tls.csr -subj /CN=sioc &&
    openssl x509 -req -in tls.csr -CA ../redis-tls/ca.pem -CAkey ../redis-tls/ca.key -CAcreateserial -days 1 \
        -extfile ext -out tls.crt) >/dev/null 2>&1 || fail "openssl made the TLS test files"
rediss_env=(SIOC_API_KEY="$key" SIOC_REDIS_URL="rediss://sioc:pw@redis.example.com:6380/0" SIOC_REDIS_TLS_DIR="$tmp/redis-tls"
    SIOC_REDIS_TLS_CERT=/etc/sioc/redis-tls/client.pem SIOC_REDIS_TLS_KEY=/etc/sioc/redis-tls/client.key)
if "${clean_env[@]}" "${rediss_env[@]}" docker-compose --env-file "$tmp/empty.env" -f docker-compose.yml -f deploy/compose.rediss.yml config >"$tmp/compose-rediss.yml" 2>"$tmp/compose.err"; then
    ok "docker-compose config with deploy/compose.rediss.yml (rediss://, a CA and a client certificate)"
else
    fail "docker-compose config with deploy/compose.rediss.yml" "$(cat "$tmp/compose.err")"
fi
if out=$("${clean_env[@]}" SIOC_API_KEY="$key" docker-compose --env-file "$tmp/empty.env" -f docker-compose.yml -f deploy/compose.rediss.yml config -q 2>&1); then
    fail "deploy/compose.rediss.yml refuses to run without SIOC_REDIS_TLS_DIR" "$out"
elif grep -q "SIOC_REDIS_TLS_DIR" <<<"$out"; then
    ok "deploy/compose.rediss.yml refuses to run without SIOC_REDIS_TLS_DIR, naming it"
else
    fail "deploy/compose.rediss.yml names SIOC_REDIS_TLS_DIR when it is missing" "$out"
fi

# ---- haproxy.cfg ----
if out=$(haproxy -c -f deploy/haproxy/haproxy.cfg 2>&1); then
    ok "haproxy -c -f deploy/haproxy/haproxy.cfg"
else
    fail "haproxy -c -f deploy/haproxy/haproxy.cfg" "$out"
fi
# Only the expected warnings: the compose service name does not resolve here.
if unexpected=$(grep -E "WARNING|ALERT" <<<"$out" | grep -v "could not resolve address 'gateway', disabling server"); then
    fail "haproxy -c: no warning except the unresolvable compose service name" "$unexpected"
else
    ok "haproxy -c: no warning except the unresolvable compose service name"
fi

# ---- nginx snippet (nginx-light) ----
if ! command -v nginx >/dev/null 2>&1; then
    fail "nginx -t on deploy/nginx/sioc.conf: nginx is not installed (apt-get install nginx-light)"
else
    mkdir -p "$tmp/nginx/logs"
    # the snippet's upstream names do not resolve here: the same servers on loopback ports
    sed -E 's/server gateway-([0-9]+):3000/server 127.0.0.1:300\1/' deploy/nginx/sioc.conf >"$tmp/nginx/sioc.conf"
    cat >"$tmp/nginx/nginx.conf" <<EOF
pid $tmp/nginx/nginx.pid;
error_log stderr;
events {}
http {
    access_log off;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    include $tmp/nginx/sioc.conf;
}
EOF
    if out=$(nginx -t -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" 2>&1); then
        ok "nginx -t with deploy/nginx/sioc.conf in http {}"
    else
        fail "nginx -t with deploy/nginx/sioc.conf in http {}" "$out"
    fi
fi

# ---- everything else: Python (python3-yaml) ----
"$PY" - "$GATEWAY" "$BROKER" "$tmp" "$key" "$jwt" >"$tmp/py.out" 2>&1 <<'PYEOF'
import fnmatch, glob, json, os, re, shutil, subprocess, sys
import yaml

GATEWAY, BROKER, TMP, API_KEY, JWT = sys.argv[1:6]
results = []


def check(name, cond, detail=""):
    results.append((bool(cond), name, detail))
    return bool(cond)


def run(argv, env=None, cwd=None):
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def options_of(binary):
    """{key: (arg, default)} from --help."""
    out = run([binary, "--help"]).stdout
    opts = {}
    for line in out.splitlines():
        m = re.match(r"^  --([a-z0-9-]+)( (VALUE|MS|N|yes\|no))?\s+(.*?)( \[([^\]]*)\])?$", line)
        if m:
            opts[m.group(1)] = (m.group(3) or "", m.group(6))
    return opts


def env_name(key):
    return "SIOC_" + key.upper().replace("-", "_")


GW_OPTS, BK_OPTS = options_of(GATEWAY), options_of(BROKER)
check("--help lists the options (gateway %d, broker %d)" % (len(GW_OPTS), len(BK_OPTS)),
      len(GW_OPTS) > 20 and len(BK_OPTS) > 10)
GW_ENV = {env_name(k): k for k in GW_OPTS}
BK_ENV = {env_name(k): k for k in BK_OPTS}


def ms(value):
    return int(str(value))


# ---------------- Dockerfiles ----------------

def parse_dockerfile(path):
    """[(stage_name, [(instruction, args)])], continuation lines joined, comments dropped."""
    lines, cur = [], ""
    for raw in open(path):
        line = raw.rstrip("\n")
        if not cur and line.lstrip().startswith("#"):
            continue
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        cur += line
        if cur.strip():
            lines.append(cur.strip())
        cur = ""
    stages = []
    for line in lines:
        inst, _, args = line.partition(" ")
        inst = inst.upper()
        if inst == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?$", args.strip(), re.I)
            stages.append({"from": m.group(1), "name": m.group(2) or str(len(stages)), "inst": []})
        elif stages:
            stages[-1]["inst"].append((inst, args.strip()))
    return stages


def insts(stage, name):
    return [a for i, a in stage["inst"] if i == name]


def apt_packages(stage):
    pk = []
    for a in insts(stage, "RUN"):
        m = re.search(r"apt-get install (.*?)(&&|$)", a)
        if m:
            pk += [w for w in m.group(1).split() if not w.startswith("-")]
    return pk


def copies(stage):
    """[(from_stage or None, [sources], dest)]"""
    out = []
    for a in insts(stage, "COPY"):
        words = a.split()
        frm = None
        while words and words[0].startswith("--"):
            if words[0].startswith("--from="):
                frm = words[0][7:]
            words = words[1:]
        out.append((frm, words[:-1], words[-1]))
    return out


main_df = parse_dockerfile("deploy/Dockerfile")
worker_df = parse_dockerfile("deploy/worker.Dockerfile")
stages = {s["name"]: s for s in main_df}
build, runtime = main_df[0], main_df[-1]
check("Dockerfile: multi-stage, build stage FROM debian:12, runtime FROM debian:12-slim",
      len(main_df) >= 2 and build["from"] == "debian:12" and runtime["from"] == "debian:12-slim",
      [s["from"] for s in main_df])
need_build = {"build-essential", "pkg-config", "libevent-dev", "libhiredis-dev", "libssl-dev", "zlib1g-dev"}
check("Dockerfile: the build stage installs %s" % " ".join(sorted(need_build)),
      need_build <= set(apt_packages(build)), apt_packages(build))
check("Dockerfile: the build stage runs make release",
      any(re.search(r"\bmake\b.*\brelease\b", a) for a in insts(build, "RUN")))
rt_pk = set(apt_packages(runtime))
need_rt = {"libevent-2.1-7", "libevent-openssl-2.1-7", "libhiredis0.14", "libssl3", "zlib1g", "ca-certificates"}
check("Dockerfile: the runtime installs exactly the runtime libraries (%s)" % " ".join(sorted(need_rt)),
      rt_pk == need_rt, sorted(rt_pk))
check("Dockerfile: no compiler or -dev package in the runtime stage",
      not any(p.endswith("-dev") or p in ("build-essential", "gcc", "make") for p in rt_pk))
# Every shared library the built binaries load comes from a package the runtime installs.
libs = set()
for b in (GATEWAY, BROKER):
    for line in run(["ldd", b]).stdout.splitlines():
        m = re.search(r"=> (/\S+)", line)
        if m:
            libs.add(os.path.realpath(m.group(1)))
pkgs = {}
for lib in sorted(libs):
    r = run(["dpkg", "-S", lib])
    if r.returncode != 0:  # merged /usr: dpkg knows the /lib path
        r = run(["dpkg", "-S", re.sub(r"^/usr/lib/", "/lib/", lib)])
    pkgs[lib] = r.stdout.split(":")[0] if r.returncode == 0 else None
missing = {lib: p for lib, p in pkgs.items() if p != "libc6" and p not in rt_pk}
check("Dockerfile: the runtime packages cover ldd of both binaries (%s)" % ", ".join(sorted(set(p for p in pkgs.values() if p))),
      libs and not missing, missing)
debian = sorted(need_rt | {"python3", "python3-redis", "python3-msgpack", "tini"})
r = run(["apt-cache", "show", "--no-all-versions"] + debian)  # one call: apt-cache is slow to start
known = set(re.findall(r"^Package: (\S+)$", r.stdout, re.M))
check("Debian 12 has the packages the images install (%s)" % " ".join(debian), set(debian) <= known,
      sorted(set(debian) - known))

for label, df in (("Dockerfile", main_df), ("worker.Dockerfile", worker_df)):
    last = df[-1]
    user = insts(last, "USER")
    check("%s: USER is a numeric non-root uid (for runAsNonRoot)" % label,
          user and re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", user[-1]), user)
    ep = insts(last, "ENTRYPOINT")
    try:
        ep_json = json.loads(ep[-1]) if ep else None
    except ValueError:
        ep_json = None
    check("%s: exec-form ENTRYPOINT" % label, isinstance(ep_json, list) and ep_json, ep)
    check("%s: STOPSIGNAL SIGTERM" % label, insts(last, "STOPSIGNAL") == ["SIGTERM"])
    labels = " ".join(insts(last, "LABEL"))
    check("%s: OCI labels (title, description, version, revision)" % label,
          all("org.opencontainers.image.%s=" % k in labels for k in ("title", "description", "version", "revision")))
ep = json.loads(insts(runtime, "ENTRYPOINT")[-1])
check("Dockerfile: ENTRYPOINT is the gateway", ep == ["/usr/local/bin/sioc-gateway"], ep)
exposed = " ".join(insts(runtime, "EXPOSE")).split()
gw_port = GW_OPTS["listen"][1].rsplit(":", 1)[1]
check("Dockerfile: EXPOSE the gateway's default port %s and the broker's 8081" % gw_port,
      set(exposed) == {gw_port, "8081"}, exposed)
hc = [a for a in insts(runtime, "HEALTHCHECK")]
check("Dockerfile: an exec-form HEALTHCHECK on /healthz (run live by test_haproxy)",
      hc and "CMD [" in hc[-1] and "/healthz" in hc[-1], hc)
binaries = [c for c in copies(runtime) if c[0] == build["name"]]
check("Dockerfile: both binaries copied from the build stage to /usr/local/bin/",
      binaries and sorted(os.path.basename(s) for s in binaries[0][1]) == ["sioc-broker", "sioc-gateway"]
      and binaries[0][2] == "/usr/local/bin/", binaries)
npm = [s for s in main_df if any("npm ci" in a for a in insts(s, "RUN"))]
check("Dockerfile: a stage runs npm ci --omit=dev from package.json and package-lock.json",
      npm and any("--omit=dev" in a for a in insts(npm[0], "RUN"))
      and any(set(src) == {"package.json", "package-lock.json"} for _, src, _ in copies(npm[0])))
# Container paths the images provide, mapped to the repository files they come from.
IMAGE_FILES = {}
for frm, srcs, dest in copies(runtime):
    for src in srcs:
        if frm is None:
            IMAGE_FILES[dest.rstrip("/")] = src.rstrip("/")
        elif npm and frm == npm[0]["name"]:
            workdir = (insts(npm[0], "WORKDIR") or ["/"])[-1].rstrip("/") + "/"
            IMAGE_FILES[dest.rstrip("/")] = src[len(workdir):] if src.startswith(workdir) else src
check("Dockerfile: socket.io.min.js from node_modules and deploy/demo/public/ are in the image",
      IMAGE_FILES.get("/usr/share/sioc/socket.io.min.js") == "node_modules/socket.io-client/dist/socket.io.min.js"
      and IMAGE_FILES.get("/usr/share/sioc/demo") == "deploy/demo/public", IMAGE_FILES)


def local_path(value):
    """A container path of the image -> the repository file it is copied from."""
    for dest, src in IMAGE_FILES.items():
        if value == dest or value.startswith(dest + "/"):
            return src + value[len(dest):]
    return value


# The build stage's COPY set is enough for `make release` (dry run in a copy of just those files)
# and every #include "..." of the copied C files resolves inside it.
ctx = os.path.join(TMP, "build-context")
os.makedirs(ctx)
for frm, srcs, dest in copies(build):
    for src in srcs:
        target = os.path.join(ctx, dest if not dest.endswith("/") or dest == "./" else dest)
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join(ctx, dest.rstrip("/")) if dest not in ("./", ".") else os.path.join(ctx, src.rstrip("/")),
                            dirs_exist_ok=True)
        else:
            os.makedirs(ctx if dest in ("./", ".") else os.path.dirname(target), exist_ok=True)
            shutil.copy(src, os.path.join(ctx, os.path.basename(src)) if dest in ("./", ".") else target)
r = run(["make", "-n", "release"], cwd=ctx)
check("Dockerfile: `make -n release` works with only the build stage's COPY sources",
      r.returncode == 0 and "sioc-gateway" in r.stdout and "sioc-broker" in r.stdout, r.stderr[-500:])
unresolved = []
for c in glob.glob(os.path.join(ctx, "**", "*.[ch]"), recursive=True):
    for inc in re.findall(r'^#include "([^"]+)"', open(c, errors="replace").read(), re.M):
        if not os.path.exists(os.path.join(ctx, inc)) and not os.path.exists(os.path.join(os.path.dirname(c), inc)):
            unresolved.append((os.path.relpath(c, ctx), inc))
check("Dockerfile: every #include of the copied sources is in the build context", not unresolved, unresolved[:5])


def docker_excluded(path, patterns):
    """Docker's .dockerignore rule: the last pattern matching the path or a parent wins."""
    parts = path.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    excluded = False
    for pat in patterns:
        neg = pat.startswith("!")
        p = os.path.normpath(pat[1:] if neg else pat).lstrip("/")
        rx = "^" + re.escape(p).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*").replace(r"\?", "[^/]") + "$"
        if any(re.match(rx, c) for c in candidates):
            excluded = not neg
    return excluded


patterns = [l.strip() for l in open(".dockerignore") if l.strip() and not l.strip().startswith("#")]
sources = [s for df in (main_df, worker_df) for st in df for frm, srcs, _ in copies(st) if frm is None for s in srcs]
need = []
for s in sources:
    s = s.rstrip("/")
    if os.path.isdir(s):
        need += [f for f in subprocess.run(["git", "ls-files", s], capture_output=True, text=True).stdout.split()]
    else:
        need.append(s)
left_out = [f for f in need if docker_excluded(f, patterns)]
check(".dockerignore keeps every COPY source of both Dockerfiles (%d files)" % len(need), need and not left_out, left_out[:10])
kept_out = [p for p in ("build/sioc-gateway", "node_modules/socket.io-client/package.json", ".git/HEAD",
                        "tests/run.sh", "docs/api.md", "sdk/python/sioc/__pycache__/x.pyc") if not docker_excluded(p, patterns)]
check(".dockerignore leaves out build/, node_modules/, .git, tests, docs, __pycache__", not kept_out, kept_out)

demo = os.path.isdir("deploy/demo")
if demo:
    check("deploy/demo/public and deploy/demo/chat_worker.py exist (COPY sources)",
          os.path.isdir("deploy/demo/public") and os.path.isfile("deploy/demo/chat_worker.py"))
else:
    print("note: deploy/demo is not in this tree yet: its COPY sources are not checked for existence")

# worker image: the SDK and the demo where PYTHONPATH says, with Debian's python3 packages
wk = worker_df[-1]
check("worker.Dockerfile: FROM debian:12-slim, python3 python3-redis python3-msgpack installed",
      wk["from"] == "debian:12-slim" and {"python3", "python3-redis", "python3-msgpack"} <= set(apt_packages(wk)), apt_packages(wk))
envs = " ".join(insts(wk, "ENV"))
m = re.search(r"PYTHONPATH=(\S+)", envs)
wcopies = {srcs[0].rstrip("/"): dest.rstrip("/") for frm, srcs, dest in copies(wk)}
check("worker.Dockerfile: sdk/python/sioc is copied into PYTHONPATH",
      m and wcopies.get("sdk/python/sioc") == m.group(1) + "/sioc", (m and m.group(1), wcopies))
image_root = os.path.join(TMP, "worker-image")
for src, dest in wcopies.items():
    if os.path.isdir(src):
        shutil.copytree(src, image_root + dest)
    elif os.path.exists(src):
        os.makedirs(os.path.dirname(image_root + dest), exist_ok=True)
        shutil.copy(src, image_root + dest)
r = run(["/usr/bin/python3", "-c", "import sioc, redis, msgpack; print(sioc.Worker.__name__)"],
        env={"PATH": os.environ["PATH"], "PYTHONPATH": image_root + m.group(1), "PYTHONDONTWRITEBYTECODE": "1"}, cwd=TMP) if m else None
check("worker.Dockerfile: `import sioc` works from the image's PYTHONPATH with Debian's python3-redis/msgpack",
      r is not None and r.returncode == 0, r and r.stderr[-300:])
wk_cmd = json.loads((insts(wk, "ENTRYPOINT") or ["[]"])[-1]) + json.loads((insts(wk, "CMD") or ["[]"])[-1])
check("worker.Dockerfile: runs the demo worker under tini by default",
      wk_cmd[:2] == ["/usr/bin/tini", "--"] and wcopies.get("deploy/demo/chat_worker.py") in wk_cmd, wk_cmd)

# ---------------- check-config with the values the files pass ----------------

def check_config(label, binary, known_env, env_vars, args=()):
    """Every SIOC_* variable is an option of the binary; --check-config accepts the values."""
    unknown = [k for k in env_vars if k.startswith("SIOC_") and k not in known_env]
    check("%s: every SIOC_* variable is an option of %s" % (label, os.path.basename(binary)), not unknown, unknown)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    env.update({k: local_path(str(v)) for k, v in env_vars.items() if v is not None})
    r = run([binary, "--check-config"] + [local_path(a) for a in args], env=env)
    check("%s: %s --check-config accepts them" % (label, os.path.basename(binary)),
          r.returncode == 0 and "configuration ok" in r.stdout, (r.returncode, r.stderr.strip()))
    return env


compose = yaml.safe_load(open(os.path.join(TMP, "compose.yml")))
svc = compose.get("services", {})
check("compose: services redis, broker, gateway, worker, haproxy",
      {"redis", "broker", "gateway", "worker", "haproxy"} <= set(svc), sorted(svc))
gw, bk, wkr, lb = (svc.get(n, {}) for n in ("gateway", "broker", "worker", "haproxy"))
gw_env = gw.get("environment", {})
check_config("compose gateway", GATEWAY, GW_ENV, gw_env)
check("compose gateway: the demo's settings (auth backend, namespaces /,/chat, static, client-js)",
      gw_env.get("SIOC_AUTH") == "backend" and gw_env.get("SIOC_NAMESPACES") == "/,/chat"
      and gw_env.get("SIOC_STATIC") == "/usr/share/sioc/demo"
      and gw_env.get("SIOC_CLIENT_JS") == "/usr/share/sioc/socket.io.min.js", gw_env)
check("compose gateway: the JWT secret is passed through from the environment (set for this run), not the file",
      gw_env.get("SIOC_JWT_SECRET") == JWT and re.search(r"^\s+SIOC_JWT_SECRET:\s*$", open("docker-compose.yml").read(), re.M))
check("compose gateway: scalable (deploy.replicas >= 3, no container_name, no host ports)",
      gw.get("deploy", {}).get("replicas", 1) >= 3 and "container_name" not in gw and not gw.get("ports"))
check("compose gateway: /readyz health check",
      "/readyz" in " ".join(gw.get("healthcheck", {}).get("test", [])))


def seconds(v):
    m = re.fullmatch(r"(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?", str(v))
    return int(m.group(1) or 0) * 60 + float(m.group(2) or 0) if m else 0


drain = ms(gw_env.get("SIOC_DRAIN_TIMEOUT", GW_OPTS["drain-timeout"][1])) / 1000
check("compose gateway: stop_grace_period (%s) above drain-timeout (%g s)" % (gw.get("stop_grace_period"), drain),
      seconds(gw.get("stop_grace_period", "10s")) > drain)
bk_env = bk.get("environment", {})
check("compose broker: entrypoint sioc-broker", bk.get("entrypoint") == ["/usr/local/bin/sioc-broker"], bk.get("entrypoint"))
check_config("compose broker", BROKER, BK_ENV, bk_env)
check("compose broker: the API key comes from the environment (${SIOC_API_KEY:?...}), not the file",
      bk_env.get("SIOC_API_KEY") == API_KEY and API_KEY not in open("docker-compose.yml").read()
      and re.search(r"SIOC_API_KEY: \$\{SIOC_API_KEY:\?", open("docker-compose.yml").read()))
r = run([BROKER, "--check-config"], env={"PATH": "/usr/bin:/bin", **{k: v for k, v in bk_env.items() if k != "SIOC_API_KEY" and v is not None}})
check("compose broker: without the API key its listen address is refused (why the key is required)",
      r.returncode == 2 and "api-key" in r.stderr, r.stderr)
check("compose broker: API published on the host's loopback only",
      all(str(p.get("host_ip", "")) == "127.0.0.1" for p in bk.get("ports", [])) if bk.get("ports") and isinstance(bk["ports"][0], dict)
      else all(str(p).startswith("127.0.0.1:") for p in bk.get("ports", [])), bk.get("ports"))
bk2 = svc.get("broker-2", {})
check("compose: a second broker (standby, issue 17) with the first one's settings, API on the host's loopback port 8082",
      bk2.get("environment") == bk_env and bk2.get("entrypoint") == bk.get("entrypoint")
      and ("127.0.0.1:8082:8081" in json.dumps(bk2.get("ports", [])) or any(
          isinstance(p, dict) and str(p.get("host_ip")) == "127.0.0.1" and str(p.get("published")) == "8082" for p in bk2.get("ports", []))),
      bk2)
wenv = wkr.get("environment", {})
check("compose worker: worker.Dockerfile, SIOC_REDIS_URL equal to the gateways' SIOC_REDIS",
      wkr.get("build", {}).get("dockerfile") == "deploy/worker.Dockerfile"
      and wenv.get("SIOC_REDIS_URL") == gw_env.get("SIOC_REDIS") == bk_env.get("SIOC_REDIS"), wenv)
check("compose haproxy: mounts deploy/haproxy/haproxy.cfg, publishes 8080",
      any("deploy/haproxy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg" in str(v) for v in lb.get("volumes", []))
      and "8080" in json.dumps(lb.get("ports", [])), (lb.get("volumes"), lb.get("ports")))
for name, s in svc.items():
    check("compose %s: a health check" % name, name == "worker" or s.get("healthcheck", {}).get("test"))

# ---------------- haproxy.cfg semantics ----------------
cfg = open("deploy/haproxy/haproxy.cfg").read()
code = "\n".join(l.split("#", 1)[0].rstrip() if not l.lstrip().startswith("#") else "" for l in cfg.splitlines())


def directive(name):
    return re.findall(r"^\s*%s\s+(.*)$" % re.escape(name), code, re.M)


def hap_seconds(v):
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)?", v.strip())
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 0.001}[m.group(2)]


ping_total = (ms(gw_env.get("SIOC_PING_INTERVAL", GW_OPTS["ping-interval"][1])) + ms(gw_env.get("SIOC_PING_TIMEOUT", GW_OPTS["ping-timeout"][1]))) / 1000
timeouts = {t.split()[0]: hap_seconds(t.split()[1]) for t in directive("timeout")}
check("haproxy: timeout client/server/tunnel above ping-interval + ping-timeout (%g s)" % ping_total,
      all(timeouts.get(k, 0) > ping_total for k in ("client", "server", "tunnel")), timeouts)
check("haproxy: sticky cookie inserted (dynamic, for server-template)",
      any(re.match(r"\S+ insert .*\bdynamic\b", c) for c in directive("cookie")) and directive("dynamic-cookie-key"))
check("haproxy: /readyz health checks",
      any("uri /readyz" in c for c in directive("http-check send")) and directive("option httpchk"))
tmpl = directive("server-template")
m = re.match(r"\S+ (\d+) ([^:\s]+):(\d+)", tmpl[0]) if tmpl else None
listen_port = str(gw_env.get("SIOC_LISTEN", GW_OPTS["listen"][1])).rsplit(":", 1)[1]
check("haproxy: server-template on the compose service `gateway`, its port, slots >= replicas",
      m and m.group(2) == "gateway" and m.group(3) == listen_port and int(m.group(1)) >= gw.get("deploy", {}).get("replicas", 1), tmpl)
check("haproxy: Docker DNS (resolvers docker, nameserver 127.0.0.11:53), init-addr last,libc,none",
      re.search(r"^resolvers docker$", code, re.M) and re.search(r"nameserver \S+ 127\.0\.0\.11:53", code)
      and any("init-addr last,libc,none" in d and "resolvers docker" in d for d in directive("default-server")))
check("haproxy: /socket.io/ routed to the gateways", re.search(r"acl (\S+) path_beg /socket\.io/", code)
      and re.search(r"use_backend sioc_gateways if is_socketio", code))
check("haproxy: an application backend sketched for other paths", re.search(r"^#\s*backend app", cfg, re.M))

# ---------------- nginx snippet semantics ----------------
ngx = open("deploy/nginx/sioc.conf").read()
check("nginx: Upgrade/Connection headers, HTTP/1.1, address hash, timeouts above %g s, no buffering" % ping_total,
      "proxy_set_header Upgrade $http_upgrade" in ngx and "proxy_http_version 1.1" in ngx
      and re.search(r"^\s*hash \$remote_addr consistent;", ngx, re.M) and "proxy_buffering off" in ngx
      and all(int(t) > ping_total for t in re.findall(r"proxy_(?:read|send)_timeout (\d+)s;", ngx))
      and len(re.findall(r"proxy_(?:read|send)_timeout", ngx)) >= 2)

# ---------------- Kubernetes manifests ----------------
docs = []
for path in sorted(glob.glob("deploy/k8s/*.yaml")):
    try:
        for d in yaml.safe_load_all(open(path)):
            if d:
                docs.append((os.path.basename(path), d))
        check("k8s: %s parses" % path, True)
    except yaml.YAMLError as e:
        check("k8s: %s parses" % path, False, str(e))
kust = next((d for f, d in docs if f == "kustomization.yaml"), {})
listed = set(kust.get("resources", []))
files = {os.path.basename(p) for p in glob.glob("deploy/k8s/*.yaml")} - {"kustomization.yaml"}
check("k8s: kustomization lists every manifest except secret.example.yaml",
      listed == files - {"secret.example.yaml"}, sorted(files ^ listed))
objs = [(f, d) for f, d in docs if f != "kustomization.yaml"]
check("k8s: every object has apiVersion, kind, metadata.name", all(d.get("apiVersion") and d.get("kind") and d.get("metadata", {}).get("name") for f, d in objs))
by_kind = {}
for f, d in objs:
    by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
deps, cms, secrets = by_kind.get("Deployment", {}), by_kind.get("ConfigMap", {}), by_kind.get("Secret", {})
check("k8s: Deployments sioc-gateway, sioc-broker, sioc-worker, redis", {"sioc-gateway", "sioc-broker", "sioc-worker", "redis"} <= set(deps), sorted(deps))
secret = secrets.get("sioc-secrets", {})
secret_keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
secret_keys |= set(re.findall(r"^\s*#\s*([a-z-]+): ", open("deploy/k8s/secret.example.yaml").read(), re.M))
check("k8s: secret.example.yaml holds placeholders only",
      secret and all("REPLACE" in str(v) for v in secret.get("stringData", {}).values()), secret.get("stringData"))
kimages = {i["name"] for i in kust.get("images", [])}

for name, d in deps.items():
    spec = d["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"].get("labels", {})
    check("k8s %s: selector matches the pod labels" % name,
          all(labels.get(k) == v for k, v in spec["selector"]["matchLabels"].items()))
    psc = pod.get("securityContext", {})
    check("k8s %s: runAsNonRoot with a non-zero runAsUser" % name, psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) > 0, psc)
    for c in pod["containers"]:
        sc = c.get("securityContext", {})
        check("k8s %s/%s: readOnlyRootFilesystem, no privilege escalation, capabilities dropped" % (name, c["name"]),
              sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False
              and sc.get("capabilities", {}).get("drop") == ["ALL"], sc)
        req = c.get("resources", {}).get("requests", {})
        check("k8s %s/%s: cpu and memory requests, a memory limit" % (name, c["name"]),
              "cpu" in req and "memory" in req and "memory" in c.get("resources", {}).get("limits", {}))
        if name != "redis":
            check("k8s %s/%s: image %s is named in kustomization images" % (name, c["name"], c["image"]), c["image"] in kimages)
        for ref in c.get("envFrom", []):
            check("k8s %s: envFrom ConfigMap %s exists" % (name, ref["configMapRef"]["name"]), ref["configMapRef"]["name"] in cms)
        for e in c.get("env", []):
            sk = e.get("valueFrom", {}).get("secretKeyRef")
            if sk:
                check("k8s %s: %s from Secret %s key %s (documented in secret.example.yaml)" % (name, e["name"], sk["name"], sk["key"]),
                      sk["name"] == "sioc-secrets" and sk["key"] in secret_keys)

# the gateway Deployment in detail
g = deps.get("sioc-gateway", {})
gspec = g.get("spec", {})
gpod = gspec.get("template", {}).get("spec", {})
gc = (gpod.get("containers") or [{}])[0]
gcm = {}
for ref in gc.get("envFrom", []):
    gcm.update(cms.get(ref["configMapRef"]["name"], {}).get("data", {}))
port_names = {p.get("name"): p["containerPort"] for p in gc.get("ports", [])}
rp, lp = gc.get("readinessProbe", {}).get("httpGet", {}), gc.get("livenessProbe", {}).get("httpGet", {})
gw_listen_port = int(str(gcm.get("SIOC_LISTEN", GW_OPTS["listen"][1])).rsplit(":", 1)[1])
check("k8s gateway: readiness /readyz, liveness /healthz, on the container port of SIOC_LISTEN (%d)" % gw_listen_port,
      rp.get("path") == "/readyz" and lp.get("path") == "/healthz"
      and all(port_names.get(p.get("port"), p.get("port")) == gw_listen_port for p in (rp, lp)), (rp, lp, port_names))
pre = gc.get("lifecycle", {}).get("preStop", {})
cmd = pre.get("exec", {}).get("command", [])
sleep_s = int(cmd[-1]) if cmd and "sleep" in cmd[0] and cmd[-1].isdigit() else pre.get("sleep", {}).get("seconds", 0)
check("k8s gateway: preStop sleep", sleep_s > 0, pre)
gdrain = ms(gcm.get("SIOC_DRAIN_TIMEOUT", GW_OPTS["drain-timeout"][1])) / 1000
grace = gpod.get("terminationGracePeriodSeconds", 30)
check("k8s gateway: terminationGracePeriodSeconds (%s) > preStop sleep (%s) + drain-timeout (%g s)" % (grace, sleep_s, gdrain),
      grace > sleep_s + gdrain)
ru = gspec.get("strategy", {})
check("k8s gateway: RollingUpdate with maxUnavailable 0", ru.get("type") == "RollingUpdate" and ru.get("rollingUpdate", {}).get("maxUnavailable") == 0, ru)
tsc = gpod.get("topologySpreadConstraints", [])
check("k8s gateway: topologySpreadConstraints over hostname, selecting its pods",
      any(t.get("topologyKey") == "kubernetes.io/hostname" and all(gspec["template"]["metadata"]["labels"].get(k) == v
          for k, v in t.get("labelSelector", {}).get("matchLabels", {}).items()) for t in tsc), tsc)
node_id = [e for e in gc.get("env", []) if e["name"] == "SIOC_NODE_ID"]
check("k8s gateway: SIOC_NODE_ID is the pod name", node_id and node_id[0].get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name")
genv = dict(gcm)
genv.update({e["name"]: "gw-pod-1" if e["name"] == "SIOC_NODE_ID" else JWT for e in gc.get("env", []) if e["name"] != "SIOC_REDIS"})
check_config("k8s gateway (ConfigMap + env)", GATEWAY, GW_ENV, genv, gc.get("args", []))
check("k8s gateway ConfigMap: the demo's settings (auth backend, namespaces /,/chat, static, client-js)",
      gcm.get("SIOC_AUTH") == "backend" and gcm.get("SIOC_NAMESPACES") == "/,/chat"
      and gcm.get("SIOC_STATIC") == "/usr/share/sioc/demo" and gcm.get("SIOC_CLIENT_JS") == "/usr/share/sioc/socket.io.min.js", gcm)

# broker
b = deps.get("sioc-broker", {})
bpod = b.get("spec", {}).get("template", {}).get("spec", {})
bc = (bpod.get("containers") or [{}])[0]
bcm = {}
for ref in bc.get("envFrom", []):
    bcm.update(cms.get(ref["configMapRef"]["name"], {}).get("data", {}))
check("k8s broker: command sioc-broker, 2 replicas (active + standby, issue 17), rolling update that never drops below 2",
      bc.get("command") == ["/usr/local/bin/sioc-broker"] and b["spec"].get("replicas") == 2
      and b["spec"].get("strategy", {}).get("type") == "RollingUpdate"
      and b["spec"]["strategy"].get("rollingUpdate", {}).get("maxUnavailable") == 0)
bports = {p.get("name"): p["containerPort"] for p in bc.get("ports", [])}
brp, blp = bc.get("readinessProbe", {}).get("httpGet", {}), bc.get("livenessProbe", {}).get("httpGet", {})
check("k8s broker: readiness /readyz, liveness /healthz on the port of SIOC_LISTEN",
      brp.get("path") == "/readyz" and blp.get("path") == "/healthz"
      and all(bports.get(p.get("port"), p.get("port")) == int(bcm.get("SIOC_LISTEN", "x:0").rsplit(":", 1)[1]) for p in (brp, blp)))
check("k8s broker: SIOC_API_KEY from the Secret", any(e["name"] == "SIOC_API_KEY" and e.get("valueFrom", {}).get("secretKeyRef", {}).get("optional") is not True for e in bc.get("env", [])))
benv = dict(bcm)
benv.update({e["name"]: API_KEY for e in bc.get("env", []) if e["name"] == "SIOC_API_KEY"})
check_config("k8s broker (ConfigMap + Secret)", BROKER, BK_ENV, benv, bc.get("args", []))
check("k8s: gateways and broker agree on SIOC_REDIS, SIOC_UPSTREAM_SHARDS, SIOC_KEY_PREFIX",
      all(gcm.get(k) == bcm.get(k) for k in ("SIOC_REDIS", "SIOC_UPSTREAM_SHARDS", "SIOC_KEY_PREFIX")))
# worker
wd = deps.get("sioc-worker", {})
wc = (wd.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or [{}])[0]
wcm = {}
for ref in wc.get("envFrom", []):
    wcm.update(cms.get(ref["configMapRef"]["name"], {}).get("data", {}))
check("k8s worker: image sioc-worker, SIOC_REDIS_URL equal to the gateways' SIOC_REDIS",
      wc.get("image") == "sioc-worker" and wcm.get("SIOC_REDIS_URL") == gcm.get("SIOC_REDIS"), wcm)
redis_host = re.match(r"redis://(?:[^@]*@)?([^:/]+)", gcm.get("SIOC_REDIS", "")).group(1)
check("k8s: a Service named like the Redis host (%s)" % redis_host, redis_host in by_kind.get("Service", {}))
# services
for name, s in by_kind.get("Service", {}).items():
    sel = s["spec"].get("selector", {})
    target = [d for d in deps.values() if all(d["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in sel.items())]
    named = {p.get("name") for d in target for c in d["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
    check("k8s Service %s: selects a Deployment and its named target ports" % name,
          sel and target and all(p["targetPort"] in named or isinstance(p["targetPort"], int) for p in s["spec"]["ports"]))
# ingress
ing = next(iter(by_kind.get("Ingress", {}).values()), {})
ann = ing.get("metadata", {}).get("annotations", {})
pre = "nginx.ingress.kubernetes.io/"
check("k8s Ingress: ingress-nginx cookie affinity", ing.get("spec", {}).get("ingressClassName") == "nginx"
      and ann.get(pre + "affinity") == "cookie" and ann.get(pre + "session-cookie-name"), ann)
check("k8s Ingress: proxy read/send timeouts above ping-interval + ping-timeout, no buffering",
      all(int(ann.get(pre + k, "0")) > ping_total for k in ("proxy-read-timeout", "proxy-send-timeout"))
      and ann.get(pre + "proxy-buffering") == "off")
paths = [(p["path"], p["backend"]["service"]["name"]) for r in ing.get("spec", {}).get("rules", []) for p in r["http"]["paths"]]
check("k8s Ingress: /socket.io/ goes to the sioc-gateway Service", ("/socket.io/", "sioc-gateway") in paths, paths)
hpa = next(iter(by_kind.get("HorizontalPodAutoscaler", {}).values()), {})
check("k8s HPA: autoscaling/v2 on the gateway Deployment, minReplicas >= 2",
      hpa.get("apiVersion") == "autoscaling/v2" and hpa["spec"]["scaleTargetRef"]["name"] == "sioc-gateway"
      and hpa["spec"]["minReplicas"] >= 2 and hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"])
pdb = next(iter(by_kind.get("PodDisruptionBudget", {}).values()), {})
check("k8s PDB: policy/v1 on the gateway pods",
      pdb.get("apiVersion") == "policy/v1" and pdb["spec"]["selector"]["matchLabels"] == gspec.get("selector", {}).get("matchLabels"))
if shutil.which("kubectl"):
    r = run(["kubectl", "kustomize", "deploy/k8s"])
    check("k8s: kubectl kustomize deploy/k8s builds", r.returncode == 0, r.stderr[-300:])
else:
    print("note: kubectl is not installed: kustomize build not run")

# ---------------- TLS wiring (issue 16) ----------------
# The SIOC_REDIS_TLS_* names: options of both programs and the variables the Python SDK reads.
sdk_src = open("sdk/python/sioc/redis_tls.py").read()
SDK_TLS = set(re.findall(r"``(SIOC_REDIS_TLS_[A-Z_]+)``", sdk_src))
REDIS_TLS = {env_name(k) for k in GW_OPTS if k.startswith("redis-tls-")}
check("TLS: the gateway, the broker and the SDK name the same SIOC_REDIS_TLS_* variables (%d)" % len(REDIS_TLS),
      REDIS_TLS and REDIS_TLS == {env_name(k) for k in BK_OPTS if k.startswith("redis-tls-")} == SDK_TLS,
      (sorted(REDIS_TLS), sorted(SDK_TLS)))
raw = yaml.safe_load(open("docker-compose.yml"))["services"]


def redis_kind(s):
    """"broker", "gateway" or "worker" for a compose service that talks to Redis, else None."""
    e = s.get("environment", {}) or {}
    if s.get("entrypoint") == ["/usr/local/bin/sioc-broker"]:
        return "broker"
    if "worker.Dockerfile" in str(s.get("build", {}).get("dockerfile", "")) or "SIOC_REDIS_URL" in e:
        return "worker"
    return "gateway" if "SIOC_REDIS" in e else None


# every service with a Redis URL (a second broker or gateway added later included)
REDIS_SVCS = {n: redis_kind(s) for n, s in svc.items() if redis_kind(s)}
check("compose: the services that use Redis (%s) include a broker, a gateway and a worker" % ", ".join(sorted(REDIS_SVCS)),
      {"broker", "gateway", "worker"} <= set(REDIS_SVCS.values()), REDIS_SVCS)
for name in sorted(REDIS_SVCS):
    e = svc[name].get("environment", {})
    check("compose %s: passes every SIOC_REDIS_TLS_* through from the environment (no value in the file)" % name,
          all(k in e and e[k] is None for k in REDIS_TLS), sorted(k for k in e if "TLS" in k))
RT, GT = os.path.join(TMP, "redis-tls"), os.path.join(TMP, "gateway-tls")


def host_paths(env):
    """Container paths of the mounted TLS files -> this test's files."""
    return {k: (str(v).replace("/etc/sioc/redis-tls", RT).replace("/etc/sioc/tls", GT) if v is not None else None)
            for k, v in env.items()}


try:
    rs = yaml.safe_load(open(os.path.join(TMP, "compose-rediss.yml")))["services"]
except (OSError, yaml.YAMLError, KeyError, TypeError):
    rs = {}
KIND_BIN = {"broker": (BROKER, BK_ENV), "gateway": (GATEWAY, GW_ENV), "worker": (None, None)}
for name, kind in sorted(REDIS_SVCS.items()):
    binary, known = KIND_BIN[kind]
    s = rs.get(name, {})
    e = s.get("environment", {})
    vols = [str(v) for v in s.get("volumes", [])]
    check("compose.rediss.yml %s: SIOC_REDIS_TLS_DIR mounted read-only at /etc/sioc/redis-tls, the CA named in it" % name,
          "%s:/etc/sioc/redis-tls:ro" % RT in vols and e.get("SIOC_REDIS_TLS_CA") == "/etc/sioc/redis-tls/ca.pem", (vols, e))
    if binary:
        check_config("compose.rediss.yml %s" % name, binary, known, host_paths(e))
    else:
        check("compose.rediss.yml %s: rediss:// URL and the CA/client files exist under the mount" % name,
              str(e.get("SIOC_REDIS_URL", "")).startswith("rediss://") and all(os.path.isfile(v) for k, v in host_paths(e).items()
              if k in SDK_TLS and v and k != "SIOC_REDIS_TLS_INSECURE"), e)


def commented_env(path):
    """The ConfigMap's commented-out `# SIOC_X: "v"` lines (the optional TLS settings)."""
    return dict(re.findall(r'^\s*#\s*(SIOC_[A-Z0-9_]+): "([^"]*)"$', open(path).read(), re.M))


def mounts(dep, container=0):
    pod = dep.get("spec", {}).get("template", {}).get("spec", {})
    vols = {v["name"]: v.get("secret", {}) for v in pod.get("volumes", [])}
    c = (pod.get("containers") or [{}])[container]
    return {m["mountPath"]: vols.get(m["name"], {}) for m in c.get("volumeMounts", []) if m.get("readOnly")}


for name, binary, known in (("gateway", GATEWAY, GW_ENV), ("broker", BROKER, BK_ENV), ("worker", None, None)):
    opt_env = commented_env("deploy/k8s/%s-configmap.yaml" % name)
    tls_redis = {k: v for k, v in opt_env.items() if k.startswith("SIOC_REDIS_TLS_")}
    check("k8s %s ConfigMap: commented SIOC_REDIS_TLS_CA/CERT/KEY/SERVER_NAME to uncomment" % name,
          {"SIOC_REDIS_TLS_CA", "SIOC_REDIS_TLS_CERT", "SIOC_REDIS_TLS_KEY", "SIOC_REDIS_TLS_SERVER_NAME"} <= set(tls_redis)
          and set(tls_redis) <= REDIS_TLS, sorted(opt_env))
    m = mounts(deps.get("sioc-%s" % name, {}))
    sec = m.get("/etc/sioc/redis-tls", {})
    check("k8s %s: the optional Secret sioc-redis-tls mounted read-only at /etc/sioc/redis-tls, the files named under it" % name,
          sec.get("secretName") == "sioc-redis-tls" and sec.get("optional") is True
          and all(v.startswith("/etc/sioc/redis-tls/") for k, v in tls_redis.items() if k != "SIOC_REDIS_TLS_SERVER_NAME"), m)
    cm = {}
    for ref in (deps.get("sioc-%s" % name, {}).get("spec", {}).get("template", {}).get("spec", {}).get("containers") or [{}])[0].get("envFrom", []):
        cm.update(cms.get(ref["configMapRef"]["name"], {}).get("data", {}))
    if binary:
        env = dict(cm)
        env.update({k: v for k, v in opt_env.items()})
        env["SIOC_REDIS"] = "rediss://sioc:pw@redis.example.com:6380/0"
        if name == "gateway":
            env["SIOC_JWT_SECRET"] = JWT
        if name == "broker":
            env["SIOC_API_KEY"] = API_KEY
        check_config("k8s %s with its commented TLS lines uncommented" % name, binary, known, host_paths(env))
    else:
        check("k8s worker: its commented TLS variables are the SDK's, the files exist under the mount",
              set(tls_redis) <= SDK_TLS and all(os.path.isfile(v) for k, v in host_paths(tls_redis).items()
                                               if k != "SIOC_REDIS_TLS_SERVER_NAME"), tls_redis)
gw_opt = commented_env("deploy/k8s/gateway-configmap.yaml")
gsec = mounts(deps.get("sioc-gateway", {})).get("/etc/sioc/tls", {})
check("k8s gateway: commented SIOC_TLS_CERT/KEY under the optional Secret sioc-gateway-tls (/etc/sioc/tls), with tls-plain-health for the httpGet probes",
      gsec.get("secretName") == "sioc-gateway-tls" and gsec.get("optional") is True
      and gw_opt.get("SIOC_TLS_CERT", "").startswith("/etc/sioc/tls/") and gw_opt.get("SIOC_TLS_KEY", "").startswith("/etc/sioc/tls/")
      and gw_opt.get("SIOC_TLS_PLAIN_HEALTH") == "yes", (gsec, gw_opt))
sx = open("deploy/k8s/secret.example.yaml").read()
check("k8s secret.example.yaml: how to create sioc-redis-tls and sioc-gateway-tls",
      "create secret generic sioc-redis-tls" in sx and "create secret tls sioc-gateway-tls" in sx)

# ---------------- docs ----------------
ops = open("docs/operations.md").read()
for prog, opts, heading in (("sioc-gateway", GW_OPTS, "### sioc-gateway options"), ("sioc-broker", BK_OPTS, "### sioc-broker options")):
    start = ops.find(heading)
    section = ops[start:ops.find("\n### ", start + 1)] if start >= 0 else ""
    rows = {}
    for line in section.splitlines():
        m = re.match(r"^\| `--([a-z0-9-]+)[^`]*` \| `(SIOC_[A-Z0-9_]+)` \| (.*?) \|", line)
        if m:
            rows[m.group(1)] = (m.group(2), m.group(3))
    bad = []
    for k, (arg, default) in opts.items():
        want_default = "`%s`" % default if default else "—"
        if rows.get(k) != (env_name(k), want_default):
            bad.append((k, rows.get(k), (env_name(k), want_default)))
    check("docs/operations.md lists every option of %s --help with its variable and default (%d)" % (prog, len(opts)), not bad, bad[:5])
    check("docs/operations.md lists no option %s does not have" % prog, not set(rows) - set(opts), sorted(set(rows) - set(opts)))
# The snippets quoted in operations.md are excerpts of the shipped files, line for line.
for lang, path in (("haproxy", "deploy/haproxy/haproxy.cfg"), ("nginx", "deploy/nginx/sioc.conf"),
                   ("yaml", "deploy/k8s/gateway-ingress.yaml")):
    block = re.search(r"```%s\n(.*?)```" % lang, ops, re.S)
    shipped = {l.split("#", 1)[0].strip() for l in open(path)}
    quoted = [l.split("#", 1)[0].strip() for l in (block.group(1).splitlines() if block else [])]
    stray = [l for l in quoted if l and l not in shipped]
    check("docs/operations.md: the %s snippet is an excerpt of %s" % (lang, path), block and not stray, stray)
api = open("docs/api.md").read()
msgs = []
for f in ("broker/api.c", "broker/api_input.c", "broker/main_broker.c", "broker/calls.c"):
    src = open(f).read()
    for call in re.findall(r'respond_error(?:_now)?\(([^;]*)\);', src):  # also both sides of a ?:
        msgs += [m for m in re.findall(r'"([^"]*)"', call) if m != "%s"]
    msgs += re.findall(r'snprintf\(err, errlen, "([^"]+)"', src)
    msgs += re.findall(r'fail\(err, errlen, "([^"%]*(?:%[^s"][^"]*)?|[^"]*%s[^"]*)"', src)
    msgs += re.findall(r'fail\(err, errlen, "%s", "([^"]+)"\)', src)
msgs = sorted(set(m for m in msgs if m != "%s"))


def documented(msg):
    # %s in a message is the field or event name: documented as <name> or with a real one
    rx = re.escape(msg).replace("%s", "(<[a-z]+>|[a-z_ ]+)").replace(r"%\.\*s", "[a-z_]+")
    return re.search(rx, api) is not None


undocumented = [m for m in msgs if not documented(m)]
check("docs/api.md has every error message of the broker API (%d)" % len(msgs), len(msgs) > 20 and not undocumented, undocumented)
for ep in ("POST /v1/emit", "POST /v1/join", "POST /v1/leave", "POST /v1/disconnect", "GET /v1/users/",
           "GET /v1/rooms", "GET /v1/rooms/", "GET /v1/nodes", "/healthz", "/readyz", "/metrics"):
    check("docs/api.md documents %s" % ep, ep in api)
readme = open("deploy/README.md").read()
deploy_files = [f for f in subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "deploy"],
                                          capture_output=True, text=True).stdout.split()
                if not f.startswith("deploy/demo/") and f != "deploy/README.md"]
unindexed = [f for f in deploy_files if "(%s)" % f[len("deploy/"):] not in readme]
check("deploy/README.md indexes every file of deploy/ (%d)" % len(deploy_files), deploy_files and not unindexed, unindexed)

for good, name, detail in results:
    print("%s %s" % ("ok  " if good else "FAIL", name))
    if not good and detail not in ("", None):
        print("     | %s" % (detail,))
PYEOF
pyrc=$?
while IFS= read -r line; do
    case "$line" in
    "ok   "*) passed=$((passed + 1)); echo "$line" ;;
    "FAIL "*) failed=$((failed + 1)); echo "$line" ;;
    *) echo "$line" ;;
    esac
done <"$tmp/py.out"
if [ "$pyrc" -ne 0 ]; then
    fail "the Python checks ran to the end (exit status $pyrc)"
fi

echo "test_deploy_files: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
