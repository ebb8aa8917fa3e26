/* envelope_test.h: helpers shared by the envelope unit tests (test_envelope.c: upstream
 * entries, registry, node info; test_envelope_reply.c: directed replies). */
#ifndef SIOC_TESTS_ENVELOPE_TEST_H
#define SIOC_TESTS_ENVELOPE_TEST_H

#include "common/envelope.h"
#include "common/error.h"
#include "common/mp.h"
#include "tests/unit/envelope_equal.h"
#include "tests/unit/test.h"

#define CHECK_HEX(p, n, hex)                                                                       \
    do {                                                                                           \
        uint8_t want_[4096];                                                                       \
        size_t wn_ = test_unhex(hex, want_);                                                       \
        CHECK_MEM((p), (n), want_, wn_);                                                           \
    } while (0)

static inline struct slice sl(const char *s)
{
    return (struct slice){(const uint8_t *)s, strlen(s)};
}

static inline struct slice bsl(const struct buf *b)
{
    return (struct slice){b->data, b->len};
}

/* Decodes p[0..len) as given and from a guard-page copy: both must agree, consume all of a
 * success, and equal `want` (if given). */
static inline long reply_map(const uint8_t *p, size_t len, const struct envelope_reply *want)
{
    struct envelope_reply a, b;
    size_t map_len;
    long rc = envelope_reply_decode(p, len, &a);
    uint8_t *g = test_guard_copy(p, len, &map_len);
    CHECK(envelope_reply_decode(g, len, &b) == rc);
    CHECK(rc < 0 || (size_t)rc == len);
    if (rc >= 0 && want != NULL) {
        CHECK(reply_equal(&a, want));
        CHECK(reply_equal(&b, want));
    }
    test_guard_free(g, len, map_len);
    return rc;
}

static inline void make_list(struct buf *b, uint32_t n, bool emits)
{
    mp_write_array(b, n);
    for (uint32_t i = 0; i < n; i++) {
        if (emits)
            mp_write_array(b, 1);
        mp_write_cstr(b, "r");
    }
}

#endif
