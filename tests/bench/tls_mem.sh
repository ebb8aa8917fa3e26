#!/usr/bin/env bash
# tls_mem.sh: runs build/bench/tls_mem (memory of an idle TLS server connection) for TLS 1.3 and
# TLS 1.2 with a certificate made here; one JSON line each (`make bench`).
#   tests/bench/tls_mem.sh [build/bench/tls_mem] [N]
set -eu
bin=${1:-build/bench/tls_mem}
n=${2:-2000}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
    -days 2 -subj "/CN=bench CA" -addext basicConstraints=critical,CA:TRUE 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key -out srv.csr \
    -subj /CN=bench 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >ext
openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile ext \
    -out srv.crt 2>/dev/null
cat srv.crt ca.pem >srv.pem
cd - >/dev/null
"$bin" "$dir/srv.pem" "$dir/srv.key" "$dir/ca.pem" "$n"
"$bin" "$dir/srv.pem" "$dir/srv.key" "$dir/ca.pem" "$n" --tls12
