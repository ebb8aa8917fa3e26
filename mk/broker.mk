# mk/broker.mk: sioc-broker (broker/*.c) in the release and AddressSanitizer variants, linked
# against the shared runtime (libsioc_net.a) and codecs (libsioc_common.a) like the gateway.
BROKER_SRC := $(wildcard broker/*.c)

define broker_bin
$(1)/sioc-broker: $$(patsubst %.c,$(1)/obj/%.o,$$(BROKER_SRC)) $(1)/libsioc_net.a $(1)/libsioc_common.a
	$$(CC) $(2) $$^ $$(NET_LIBS) -o $$@
endef

$(eval $(call broker_bin,$(BUILD),$(OPT)))
$(eval $(call broker_bin,$(BUILD)/asan,$(SAN)))

all: $(BUILD)/sioc-broker $(BUILD)/asan/sioc-broker
