# mk/chaos.mk: the fault suite of issue 10 (tests/chaos/).
#   make chaos        every scenario at size on release builds (about 5 minutes); writes
#                     tests/chaos/results/<UTC time>-full.json and the table of docs/reliability.md
#   make chaos CHAOS_ARGS="--only redis-kill,gateway-kill --profile bounded"   a selection
# tests/integration/test_faults.mjs (make test) runs the same scenarios small and asserts targets.
CHAOS_ARGS ?=

.PHONY: chaos
chaos: $(BUILD)/sioc-gateway $(BUILD)/sioc-broker
	@scripts/deps.sh test
	node tests/chaos/run.mjs $(CHAOS_ARGS)
