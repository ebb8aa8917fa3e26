#!/bin/bash
# callgrind_fanout.sh TREE LABEL PAYLOAD: the instruction count (callgrind Ir) of TREE's
# build/sioc-gateway for one fixed S4-like workload, independent of the machine's load: 1000
# WebSocket receivers in room r (joined through build/bench/worker), 100 broadcasts of PAYLOAD
# bytes published in the adapter format (20/s for 5 s). Writes ${CG_OUT:-/tmp/sioc-callgrind}/out.LABEL (callgrind)
# and prints the deliveries and the totals. Needs TREE/build/{sioc-gateway,bench/loadgen,bench/worker},
# valgrind and redis-server. docs/benchmarks.md "Issue 14" compares two trees with it.
set -u
mkdir -p ${CG_OUT:-/tmp/sioc-callgrind}
tree=$1; label=$2; payload=$3
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
redis-server --port $port --save "" --appendonly no --daemonize no > /dev/null 2>&1 & rpid=$!
sleep 0.5
$tree/build/bench/worker --port $port > ${CG_OUT:-/tmp/sioc-callgrind}/worker.$label.log 2>&1 & wpid=$!
sleep 0.5
pf=${CG_OUT:-/tmp/sioc-callgrind}/pf.$label; rm -f $pf
valgrind --tool=callgrind --callgrind-out-file=${CG_OUT:-/tmp/sioc-callgrind}/out.$label $tree/build/sioc-gateway --listen 127.0.0.1:0 --port-file $pf --redis redis://127.0.0.1:$port --log-level warn --node-id cg > ${CG_OUT:-/tmp/sioc-callgrind}/gw.$label.log 2>&1 & gpid=$!
for i in $(seq 100); do [ -s $pf ] && break; sleep 0.2; done
gport=$(cat $pf)
timeout 300 $tree/build/bench/loadgen --url 127.0.0.1:$gport --server-pid $gpid --scenario fanout --conns 1000 --room r --payload $payload --rate 20 --rate-max 20 --duration 5 --drain 3 --timeout 200 --source redis:127.0.0.1:$port > ${CG_OUT:-/tmp/sioc-callgrind}/lg.$label.json 2>${CG_OUT:-/tmp/sioc-callgrind}/lg.$label.err
kill -TERM $gpid; wait $gpid
kill $wpid $rpid 2>/dev/null; wait 2>/dev/null
grep -o '"deliveries":[0-9]*\|"delivered":[0-9]*\|"lost":[0-9]*' ${CG_OUT:-/tmp/sioc-callgrind}/lg.$label.json | head -3
grep "^summary\|^totals" ${CG_OUT:-/tmp/sioc-callgrind}/out.$label
