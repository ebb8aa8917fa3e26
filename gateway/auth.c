/* auth.c: JWT lookup and verification for Socket.IO CONNECTs (see auth.h). */
#include "gateway/auth.h"

#include <string.h>
#include <strings.h>

#include "common/error.h"
#include "common/mp.h"

/* The string value of `key` in a MessagePack map, or an empty slice. */
static struct slice map_string(struct slice map, const char *key)
{
    struct mp_reader r;
    struct mp_item head;
    mp_reader_init(&r, map.p, map.len);
    if (map.len == 0 || mp_read(&r, &head) != SIOC_OK || head.kind != MP_MAP)
        return (struct slice){NULL, 0};
    for (uint32_t i = 0; i < head.len; i++) {
        struct mp_item k, v;
        if (mp_read(&r, &k) != SIOC_OK)
            break;
        struct mp_reader peek = r;
        if (mp_read(&peek, &v) != SIOC_OK || mp_skip(&r) != SIOC_OK)
            break;
        if (mp_item_is_str(&k, key) && v.kind == MP_STR)
            return (struct slice){v.data, v.len};
    }
    return (struct slice){NULL, 0};
}

struct slice auth_find_token(struct slice auth, struct slice headers)
{
    struct slice token = map_string(auth, "token");
    if (token.len > 0)
        return token;
    struct slice bearer = map_string(headers, "authorization");
    /* RFC 6750 2.1: "Bearer" is case-insensitive, followed by one space */
    if (bearer.len > 7 && strncasecmp((const char *)bearer.p, "Bearer ", 7) == 0)
        return (struct slice){bearer.p + 7, bearer.len - 7};
    return (struct slice){NULL, 0};
}

enum jwt_result auth_check_jwt(const struct jwt_key *key, const char *user_claim, struct slice auth,
                               struct slice headers, int64_t now, struct jwt_claims *claims)
{
    struct slice token = auth_find_token(auth, headers);
    if (token.len == 0) {
        memset(claims, 0, sizeof *claims);
        return JWT_MALFORMED;
    }
    return jwt_verify(key, (const char *)token.p, token.len, user_claim, now, claims);
}
