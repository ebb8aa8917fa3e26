/* redis_proto.c: redis:// and rediss:// URLs and RESP command encoding (see redis_proto.h). */
#include "common/redis_proto.h"

#include <stdint.h>
#include <string.h>

#include "common/error.h"
#include "common/hex.h"

/* ---- URL ---- */

/* Appends s[0..n) to out->storage at *used, %-decoding if asked; returns the copy or NULL. */
static const char *url_store(struct redis_url *out, size_t *used, const char *s, size_t n,
                             bool decode)
{
    char *start = out->storage + *used;
    size_t k = *used;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (decode && ch == '%') {
            int hi = i + 2 < n ? hex_digit_value((uint8_t)s[i + 1]) : -1;
            int lo = i + 2 < n ? hex_digit_value((uint8_t)s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return NULL;
            ch = (char)(hi * 16 + lo);
            i += 2;
        }
        if (k + 1 >= sizeof(out->storage))
            return NULL;
        out->storage[k++] = ch;
    }
    out->storage[k++] = '\0';
    *used = k;
    return start;
}

/* Parses a decimal in [min, max] spanning exactly s[0..n). */
static bool parse_decimal(const char *s, size_t n, long min, long max, int *out)
{
    long v = 0;
    if (n == 0 || n > 7)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v < min || v > max)
        return false;
    *out = (int)v;
    return true;
}

/* Parses one host[:port] spanning exactly s[0..n) (an IPv6 literal in brackets) into *seed. */
static bool parse_hostport(struct redis_url *out, size_t *used, const char *s, size_t n,
                           struct redis_url_seed *seed)
{
    const char *p = s, *end = s + n, *host = s, *host_end;
    seed->port = 6379;
    if (p < end && *p == '[') { /* IPv6 literal */
        host = p + 1;
        host_end = memchr(host, ']', (size_t)(end - host));
        if (host_end == NULL)
            return false;
        p = host_end + 1;
    } else {
        host_end = memchr(p, ':', (size_t)(end - p));
        if (host_end == NULL)
            host_end = end;
        p = host_end;
    }
    if (host_end == host ||
        (seed->host = url_store(out, used, host, (size_t)(host_end - host), false)) == NULL)
        return false;
    return p >= end ||
           (*p == ':' && parse_decimal(p + 1, (size_t)(end - p - 1), 1, 65535, &seed->port));
}

/* The scheme of `url`: sets tls/cluster and returns what follows "://", or NULL. */
static const char *parse_scheme(const char *url, struct redis_url *out)
{
    static const struct {
        const char *name;
        bool tls, cluster;
    } schemes[] = {{"redis://", false, false},
                   {"rediss://", true, false},
                   {"redis-cluster://", false, true},
                   {"rediss-cluster://", true, true}};
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        size_t n = strlen(schemes[i].name);
        if (strncmp(url, schemes[i].name, n) == 0) {
            out->tls = schemes[i].tls;
            out->cluster = schemes[i].cluster;
            return url + n;
        }
    }
    return NULL;
}

/* The seed list of a cluster URL, or the single host[:port], in p[0..end). */
static bool parse_hosts(struct redis_url *out, size_t *used, const char *p, const char *end)
{
    for (;;) {
        const char *comma = out->cluster ? memchr(p, ',', (size_t)(end - p)) : NULL;
        const char *stop = comma != NULL ? comma : end;
        if (out->nseeds == REDIS_URL_MAX_SEEDS ||
            !parse_hostport(out, used, p, (size_t)(stop - p), &out->seeds[out->nseeds]))
            return false;
        out->nseeds++;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    out->host = out->seeds[0].host;
    out->port = out->seeds[0].port;
    return true;
}

int redis_url_parse(const char *url, struct redis_url *out)
{
    memset(out, 0, sizeof(*out));
    out->port = 6379;
    if (url == NULL)
        return SIOC_EINVAL;
    const char *p = parse_scheme(url, out);
    if (p == NULL)
        return SIOC_EINVAL;
    const char *auth_end = p + strcspn(p, "/?#");
    if (*auth_end == '?' || *auth_end == '#')
        return SIOC_EINVAL; /* no query options are supported: refuse rather than ignore */
    size_t used = 0;
    const char *at = NULL;
    for (const char *q = p; q < auth_end; q++)
        if (*q == '@')
            at = q;
    if (at != NULL) {
        /* "user:password@" or ":password@"; a bare "x@" is ambiguous across clients: refuse. */
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon == NULL)
            return SIOC_EINVAL;
        if (colon > p && (out->user = url_store(out, &used, p, (size_t)(colon - p), true)) == NULL)
            return SIOC_EINVAL;
        out->password = url_store(out, &used, colon + 1, (size_t)(at - colon - 1), true);
        if (out->password == NULL)
            return SIOC_EINVAL;
        p = at + 1;
    }
    if (!parse_hosts(out, &used, p, auth_end))
        return SIOC_EINVAL;
    if (*auth_end == '/' && auth_end[1] != '\0' &&
        !parse_decimal(auth_end + 1, strlen(auth_end + 1), 0, out->cluster ? 0 : 1000000, &out->db))
        return SIOC_EINVAL;
    return SIOC_OK;
}

/* Re-points a pointer of `src` at the same offset of dst's storage. */
static const char *rebase(const struct redis_url *src, struct redis_url *dst, const char *s)
{
    return s == NULL ? NULL : dst->storage + (s - src->storage);
}

void redis_url_copy(struct redis_url *dst, const struct redis_url *src)
{
    if (dst == src)
        return;
    *dst = *src;
    dst->host = rebase(src, dst, src->host);
    dst->user = rebase(src, dst, src->user);
    dst->password = rebase(src, dst, src->password);
    for (int i = 0; i < src->nseeds; i++)
        dst->seeds[i].host = rebase(src, dst, src->seeds[i].host);
}

int redis_url_node(const struct redis_url *src, const char *host, int port, struct redis_url *out)
{
    memset(out, 0, sizeof(*out));
    size_t used = 0;
    out->tls = src->tls;
    if (src->user != NULL &&
        (out->user = url_store(out, &used, src->user, strlen(src->user), false)) == NULL)
        return SIOC_EINVAL;
    if (src->password != NULL && (out->password = url_store(out, &used, src->password,
                                                            strlen(src->password), false)) == NULL)
        return SIOC_EINVAL;
    if (host == NULL || host[0] == '\0' || port < 1 || port > 65535 ||
        (out->host = url_store(out, &used, host, strlen(host), false)) == NULL)
        return SIOC_EINVAL;
    out->port = port;
    out->nseeds = 1;
    out->seeds[0].host = out->host;
    out->seeds[0].port = port;
    return SIOC_OK;
}

/* ---- RESP commands ---- */

/* Writes "<kind><n>\r\n" (a RESP array or bulk string header) at dst; returns its length. By
 * hand: sprintf was most of the gateway's instructions per connect. */
static size_t resp_header(char *dst, char kind, size_t n)
{
    char digits[20];
    size_t k = 0;
    do {
        digits[k++] = (char)('0' + n % 10);
        n /= 10;
    } while (n > 0);
    size_t len = 0;
    dst[len++] = kind;
    while (k > 0)
        dst[len++] = digits[--k];
    dst[len++] = '\r';
    dst[len++] = '\n';
    return len;
}

size_t redis_command_bound(int argc, const size_t *lens)
{
    size_t total = 1 + 20 + 2;
    for (int i = 0; i < argc; i++) {
        if (lens[i] > SIZE_MAX / 4 || total > SIZE_MAX / 4)
            return 0;
        total += 1 + 20 + 2 + lens[i] + 2;
    }
    return total;
}

size_t redis_command_encode(char *dst, int argc, const char *const *argv, const size_t *lens)
{
    size_t len = resp_header(dst, '*', (size_t)argc);
    for (int i = 0; i < argc; i++) {
        len += resp_header(dst + len, '$', lens[i]);
        if (lens[i] > 0)
            memcpy(dst + len, argv[i], lens[i]);
        len += lens[i];
        dst[len++] = '\r';
        dst[len++] = '\n';
    }
    return len;
}
