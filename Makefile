# Makefile: the one, non-recursive build of sioc.
#   make            build everything into build/ (release, -Werror)
#   make run        install what running needs, build the release binaries, start a local cluster + demo
#   make test       install what is missing (make deps), then run every test; ends "N passed, M failed"
#   make fuzz       run each libFuzzer target for FUZZ_SECONDS, or FUZZ_RUNS executions (clang 14)
#   make fmt/lint   clang-format / cppcheck + clang-tidy
# Sanitizer builds live in build/asan/, fuzzers in build/fuzz/.

CC       ?= cc
CLANG    ?= clang
BUILD    := build
FUZZ_SECONDS ?= 60
FUZZ_RUNS    ?=
FUZZ_LIMIT    = $(if $(FUZZ_RUNS),-runs=$(FUZZ_RUNS),-max_total_time=$(FUZZ_SECONDS))

WARN     := -std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Werror
CPPFLAGS := -I. -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -MMD -MP
OPT      := -O2 -g
SAN      := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ     := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all

# Deferred (=) so pkg-config runs after `make deps` has installed the packages.
COMMON_LIBS = $(shell pkg-config --libs libcrypto zlib) -lm
TEST_LIBS   = $(COMMON_LIBS) $(shell pkg-config --libs msgpack)
NET_LIBS    = $(shell pkg-config --libs libevent libevent_openssl openssl hiredis) $(COMMON_LIBS)

COMMON_SRC := $(wildcard common/*.c)
NET_SRC    := $(wildcard common/net/*.c)
GATEWAY_MAIN := $(wildcard gateway/main_*.c)
GATEWAY_SRC := $(filter-out $(GATEWAY_MAIN),$(wildcard gateway/*.c))
GATEWAY_BINS := $(patsubst gateway/main_%.c,%,$(GATEWAY_MAIN))
FIXTURE_SRC := $(wildcard tests/fixtures/*.c)
FIXTURE_NAMES := $(notdir $(FIXTURE_SRC:.c=))
NET_TEST_SRC := $(wildcard tests/net/test_*.c)
NET_TEST_NAMES := $(notdir $(NET_TEST_SRC:.c=))
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
UNIT_NAMES := $(notdir $(UNIT_SRC:.c=))
FUZZ_NAMES := $(patsubst fuzz_%,%,$(notdir $(FUZZ_SRC:.c=)))

.SECONDARY:
.PHONY: all release test test-run deps deps-run fuzz fmt lint check-layers clean run
all: $(BUILD)/libsioc_common.a $(addprefix $(BUILD)/tests/,$(UNIT_NAMES)) \
     $(addprefix $(BUILD)/asan/tests/,$(UNIT_NAMES)) $(addprefix $(BUILD)/asan/fuzz/replay_,$(FUZZ_NAMES)) \
     $(addprefix $(BUILD)/asan/net-tests/,$(NET_TEST_NAMES)) \
     $(addprefix $(BUILD)/asan/fixtures/,$(FIXTURE_NAMES)) \
     $(foreach b,$(GATEWAY_BINS),$(BUILD)/sioc-$(subst _,-,$(b)) $(BUILD)/asan/sioc-$(subst _,-,$(b)))

# ---- one template per build variant: $(1) = output dir, $(2) = compiler flags, $(3) = compiler ----
define variant
$(1)/obj/%.o: %.c
	@mkdir -p $$(@D)
	$(3) $$(CPPFLAGS) $$(WARN) $(2) -c $$< -o $$@

$(1)/libsioc_common.a: $$(patsubst %.c,$(1)/obj/%.o,$$(COMMON_SRC))
	@rm -f $$@
	$$(AR) rcs $$@ $$^

$(1)/tests/%: $(1)/obj/tests/unit/%.o $(1)/libsioc_common.a
	@mkdir -p $$(@D)
	$$(CC) $(2) $$^ $$(TEST_LIBS) -o $$@

$(1)/fuzz/replay_%: $(1)/obj/tests/fuzz/fuzz_%.o $(1)/obj/tests/fuzz/replay_main.o $(1)/libsioc_common.a
	@mkdir -p $$(@D)
	$$(CC) $(2) $$^ $$(TEST_LIBS) -o $$@

$(1)/libsioc_net.a: $$(patsubst %.c,$(1)/obj/%.o,$$(NET_SRC))
	@rm -f $$@
	$$(AR) rcs $$@ $$^

$(1)/net-tests/%: $(1)/obj/tests/net/%.o $(1)/libsioc_gateway.a $(1)/libsioc_net.a $(1)/libsioc_common.a
	@mkdir -p $$(@D)
	$$(CC) $(2) $$^ $$(NET_LIBS) -o $$@

$(1)/libsioc_gateway.a: $$(patsubst %.c,$(1)/obj/%.o,$$(GATEWAY_SRC))
	@rm -f $$@
	$$(AR) rcs $$@ $$^

# Test fixtures: servers built from the gateway's code for integration tests (tests/fixtures/).
$(1)/fixtures/%: $(1)/obj/tests/fixtures/%.o $(1)/libsioc_gateway.a $(1)/libsioc_net.a $(1)/libsioc_common.a
	@mkdir -p $$(@D)
	$$(CC) $(2) $$^ $$(NET_LIBS) -o $$@
endef

# One rule per program: gateway/main_<name>.c -> build/[asan/]sioc-<name with - for _>.
define gateway_bin
$(1)/sioc-$(subst _,-,$(3)): $(1)/obj/gateway/main_$(3).o $(1)/libsioc_gateway.a $(1)/libsioc_net.a $(1)/libsioc_common.a
	$$(CC) $(2) $$^ $$(NET_LIBS) -o $$@
endef

$(eval $(call variant,$(BUILD),$(OPT),$$(CC)))
$(eval $(call variant,$(BUILD)/asan,$(SAN),$$(CC)))
$(eval $(call variant,$(BUILD)/fuzz,$(FUZZ),$$(CLANG)))
$(foreach b,$(GATEWAY_BINS),$(eval $(call gateway_bin,$(BUILD),$(OPT),$(b)))$(eval $(call gateway_bin,$(BUILD)/asan,$(SAN),$(b))))

# ---- libFuzzer targets (clang): one binary per decoder ----
$(BUILD)/fuzz/fuzz_%: $(BUILD)/fuzz/obj/tests/fuzz/fuzz_%.o $(BUILD)/fuzz/libsioc_common.a
	$(CLANG) $(FUZZ) -fsanitize=fuzzer $^ $(TEST_LIBS) -o $@

fuzz: $(addprefix $(BUILD)/fuzz/fuzz_,$(FUZZ_NAMES))
	@for t in $(FUZZ_NAMES); do \
	  mkdir -p $(BUILD)/fuzz/corpus/$$t; \
	  echo "== fuzz_$$t ($(FUZZ_LIMIT))"; \
	  $(BUILD)/fuzz/fuzz_$$t $(FUZZ_LIMIT) -rss_limit_mb=2048 -malloc_limit_mb=512 \
	    -print_final_stats=1 $(BUILD)/fuzz/corpus/$$t tests/fuzz/corpus/$$t 2>&1 \
	    | grep -E 'stat::number_of_executed_units|ERROR|SUMMARY|Done' || exit 1; \
	done

# ---- tests ----
deps:
	@scripts/deps.sh test

deps-run:
	@scripts/deps.sh run

# What `make run` and the Docker image need: the release binaries only (no sanitizer/fuzz builds).
release: $(BUILD)/sioc-gateway $(BUILD)/sioc-broker

test: deps
	@$(MAKE) --no-print-directory test-run

test-run: all
	@tests/run.sh

# The recipe's deps-run and release run in a sub-make, so `make -j run` never starts the cluster
# before they are done. run-local.sh stops everything on SIGINT/SIGTERM (make forwards SIGTERM).
run:
	@$(MAKE) --no-print-directory deps-run
	@$(MAKE) --no-print-directory release
	@scripts/run-local.sh

check-layers:
	@scripts/check-layers.sh

fmt:
	clang-format -i $(shell git ls-files "*.c" "*.h")

lint:
	cppcheck --quiet --inline-suppr --error-exitcode=1 --enable=warning,portability --std=c11 -I. --suppress=missingIncludeSystem common common/net gateway broker
	clang-tidy --quiet $(COMMON_SRC) $(NET_SRC) $(GATEWAY_SRC) $(GATEWAY_MAIN) $(wildcard broker/*.c) -- -I. -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L

clean:
	rm -rf $(BUILD)

# Fragments that own their part of the build (benchmarks, broker, ...): mk/<part>.mk.
include $(wildcard mk/*.mk)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
