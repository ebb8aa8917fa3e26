# deploy/worker.Dockerfile: the Python worker image (issue 11): the sioc SDK (sdk/python) on
# Debian 12's python3 with python3-redis and python3-msgpack, and the demo chat worker, built
# from the repository root:
#
#   docker build -f deploy/worker.Dockerfile -t sioc-worker:latest .
#
# By default it runs the demo worker (deploy/demo/chat_worker.py), configured by SIOC_REDIS_URL
# (or --redis URL [--key-prefix P] as arguments). For your own worker, build FROM this image,
# COPY your script and set CMD to it: `import sioc` works from anywhere (PYTHONPATH).
FROM debian:12-slim
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="sioc-worker" \
      org.opencontainers.image.description="sioc Python worker SDK and the demo chat worker" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="docker.io/library/debian:12-slim" \
      org.opencontainers.image.documentation="sdk/python/README.md"
# tini is PID 1: it forwards SIGTERM to Python (which, not being PID 1, then stops by default
# even without a handler) and reaps children.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates python3 python3-redis python3-msgpack tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 sioc \
    && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin sioc
COPY sdk/python/sioc/ /opt/sioc/sdk/sioc/
COPY deploy/demo/chat_worker.py /opt/sioc/demo/chat_worker.py
ENV PYTHONPATH=/opt/sioc/sdk \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/bin/python3"]
CMD ["/opt/sioc/demo/chat_worker.py"]
