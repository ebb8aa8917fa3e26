/* fuzz_cluster_msg.c: feeds arbitrary bytes to the sharded adapter's ClusterAdapter decoder
 * (JSON and MessagePack paths). Every accepted message must keep its slices inside the input
 * (or the JSON scratch) and its room lists within ADAPTER_MAX_ROOMS, and re-encode into a
 * message that decodes again to the same type, uid, nsp and requestId. */
#include <stdlib.h>
#include <string.h>

#include "common/cluster_msg.h"
#include "common/error.h"
#include "common/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(c)                                                                                 \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

static bool inside(const uint8_t *p, size_t len, struct slice s)
{
    return s.len == 0 || (s.p >= p && s.len <= len && s.p - p <= (ptrdiff_t)(len - s.len));
}

static bool same(struct slice a, struct slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct buf scratch, out, scratch2, enc;
    buf_init(&scratch, 1 << 20);
    buf_init(&out, 0);
    buf_init(&scratch2, 1 << 20);
    buf_init(&enc, 0);
    struct cluster_msg *m = malloc(sizeof *m), *back = malloc(sizeof *back);
    REQUIRE(m != NULL && back != NULL);
    int rc = cluster_msg_decode(data, size, &scratch, m);
    if (rc >= 0) {
        REQUIRE((size_t)rc == size);
        bool json = size > 0 && data[0] == '{';
        const uint8_t *base = json ? scratch.data : data;
        size_t blen = json ? scratch.len : size;
        REQUIRE(inside(base, blen, m->uid) && inside(base, blen, m->nsp));
        REQUIRE(!m->has_request_id || inside(base, blen, m->request_id));
        REQUIRE(!m->has_opts || (m->opts.rooms.count <= ADAPTER_MAX_ROOMS &&
                                 m->opts.except.count <= ADAPTER_MAX_ROOMS));
        REQUIRE(!m->has_rooms || m->rooms.count <= ADAPTER_MAX_ROOMS);
        REQUIRE(!m->has_packet || inside(base, blen, m->packet));
        REQUIRE(!m->has_sockets || inside(base, blen, m->sockets));
        rc = cluster_msg_encode(&enc, &scratch2, m);
        if (rc == SIOC_OK) {
            rc = cluster_msg_decode(enc.data, enc.len, &out, back);
            REQUIRE(rc == (int)enc.len);
            REQUIRE(back->type == m->type);
            /* JSON rendering replaces invalid UTF-8 */
            bool text_ok = utf8_valid(m->uid.p, m->uid.len) && utf8_valid(m->nsp.p, m->nsp.len);
            REQUIRE(!text_ok || (same(back->uid, m->uid) && same(back->nsp, m->nsp)));
            /* requestId is written for the types that carry one (not join/leave/disconnect,
             * heartbeats, close: Node ignores it there) */
            bool carries = m->type == CLUSTER_MSG_BROADCAST ||
                           m->type == CLUSTER_MSG_FETCH_SOCKETS ||
                           m->type >= CLUSTER_MSG_FETCH_SOCKETS_RESPONSE;
            carries = carries && m->type != CLUSTER_MSG_ADAPTER_CLOSE;
            REQUIRE(back->has_request_id == (m->has_request_id && carries));
            REQUIRE(!back->has_request_id || same(back->request_id, m->request_id) ||
                    !utf8_valid(m->request_id.p, m->request_id.len));
        }
    }
    free(m);
    free(back);
    buf_deinit(&scratch);
    buf_deinit(&out);
    buf_deinit(&scratch2);
    buf_deinit(&enc);
    return 0;
}
