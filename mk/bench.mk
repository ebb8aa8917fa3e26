# mk/bench.mk: the benchmark harness of issue 6 (tests/bench/).
#   make bench        every scenario, sioc vs Node socket.io, interleaved, medians of 3;
#                     writes tests/bench/results/<date>.json and .md (BENCH_ARGS for options);
#                     then the worker echo, sioc workers vs Flask-SocketIO (<date>-workers.*),
#                     then TLS: sioc --tls-cert vs Node socket.io on https (<date>-tls.*),
#                     S1, S2 and S4 over TLS with the load generator (<date>-tls-lg.*), and the
#                     memory of an idle TLS connection (build/bench/tls_mem, 1.3 and 1.2)
#   make bench-smoke  every scenario with tiny sizes, in seconds (also run by make test)
BENCH_LG_SRC := tests/bench/loadgen.c tests/bench/lg_cli.c tests/bench/lg_hist.c tests/bench/lg_proc.c \
                tests/bench/lg_tls.c
BENCH_ARGS ?=

all: $(BUILD)/bench/loadgen $(BUILD)/bench/worker $(BUILD)/bench/redis_link_bench $(BUILD)/bench/tls_mem

$(BUILD)/bench/loadgen: $(patsubst %.c,$(BUILD)/obj/%.o,$(BENCH_LG_SRC)) $(BUILD)/libsioc_common.a
	@mkdir -p $(@D)
	$(CC) $(OPT) $^ $(shell pkg-config --libs openssl) $(COMMON_LIBS) -o $@

# The Redis link layer alone, plain or TLS: build/bench/redis_link_bench URL [count]
$(BUILD)/bench/redis_link_bench: $(BUILD)/obj/tests/bench/redis_link_bench.o $(BUILD)/libsioc_net.a $(BUILD)/libsioc_common.a
	@mkdir -p $(@D)
	$(CC) $(OPT) $^ $(NET_LIBS) -o $@

# Memory of an idle TLS server connection: build/bench/tls_mem CERT KEY CA [N] [--tls12]
$(BUILD)/bench/tls_mem: $(BUILD)/obj/tests/bench/tls_mem.o $(BUILD)/libsioc_net.a $(BUILD)/libsioc_common.a
	@mkdir -p $(@D)
	$(CC) $(OPT) $^ $(NET_LIBS) -o $@

$(BUILD)/bench/worker: $(BUILD)/obj/tests/bench/worker.o $(BUILD)/libsioc_common.a
	@mkdir -p $(@D)
	$(CC) $(OPT) $^ $(NET_LIBS) -o $@

.PHONY: bench bench-smoke
bench: $(BUILD)/bench/loadgen $(BUILD)/bench/worker $(BUILD)/sioc-gateway $(BUILD)/bench/tls_mem
	node tests/bench/run.mjs $(BENCH_ARGS)
	node tests/bench/worker_echo.mjs
	node tests/bench/tls_bench.mjs
	node tests/bench/run.mjs --tls --only S1,S2,S4
	tests/bench/tls_mem.sh $(BUILD)/bench/tls_mem

bench-smoke: $(BUILD)/bench/loadgen $(BUILD)/bench/worker $(BUILD)/sioc-gateway
	node tests/bench/run.mjs --smoke $(BENCH_ARGS)
	node tests/bench/worker_echo.mjs --smoke
	node tests/bench/run.mjs --smoke --tls --only S1,S4
