/* jwt.c: compact JWS verification (RFC 7515) for HS256/RS256/ES256 and the exp/nbf/user
 * claims (RFC 7519), through libcrypto's EVP interfaces (see jwt.h). */
#include "common/jwt.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/json.h"
#include "common/mp.h"

struct jwt_key {
    enum jwt_alg alg;
    uint8_t *secret; /* HS256 */
    size_t secret_len;
    EVP_PKEY *pkey; /* RS256, ES256 */
};

struct jwt_key *jwt_key_from_secret(const void *secret, size_t len)
{
    struct jwt_key *key = calloc(1, sizeof *key);
    if (key == NULL)
        return NULL;
    key->alg = JWT_HS256;
    key->secret = malloc(len ? len : 1);
    if (key->secret == NULL) {
        free(key);
        return NULL;
    }
    memcpy(key->secret, secret, len);
    key->secret_len = len;
    return key;
}

struct jwt_key *jwt_key_from_pem(const char *pem, size_t len)
{
    if (len > 65536)
        return NULL;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL)
        return NULL;
    EVP_PKEY *pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (pkey == NULL)
        return NULL;
    enum jwt_alg alg;
    char group[64] = "";
    size_t group_len = 0;
    if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA) {
        alg = JWT_RS256;
    } else if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_EC &&
               EVP_PKEY_get_group_name(pkey, group, sizeof group, &group_len) == 1 &&
               strcmp(group, "prime256v1") == 0) {
        alg = JWT_ES256; /* RFC 7518 3.4: ES256 is ECDSA on P-256 only */
    } else {
        EVP_PKEY_free(pkey);
        return NULL;
    }
    struct jwt_key *key = calloc(1, sizeof *key);
    if (key == NULL) {
        EVP_PKEY_free(pkey);
        return NULL;
    }
    key->alg = alg;
    key->pkey = pkey;
    return key;
}

void jwt_key_free(struct jwt_key *key)
{
    if (key == NULL)
        return;
    if (key->secret != NULL) {
        OPENSSL_cleanse(key->secret, key->secret_len);
        free(key->secret);
    }
    EVP_PKEY_free(key->pkey);
    free(key);
}

enum jwt_alg jwt_key_alg(const struct jwt_key *key)
{
    return key->alg;
}

static const char *alg_name(enum jwt_alg alg)
{
    switch (alg) {
    case JWT_HS256: return "HS256";
    case JWT_RS256: return "RS256";
    case JWT_ES256: return "ES256";
    }
    return "";
}

const char *jwt_strerror(enum jwt_result r)
{
    switch (r) {
    case JWT_OK: return "ok";
    case JWT_MALFORMED: return "malformed token";
    case JWT_BAD_ALG: return "token algorithm not accepted";
    case JWT_BAD_SIGNATURE: return "invalid token signature";
    case JWT_EXPIRED: return "token expired";
    case JWT_NOT_YET_VALID: return "token not yet valid";
    case JWT_NO_USER: return "token has no user claim";
    case JWT_NOMEM: return "out of memory";
    }
    return "unknown";
}

/* Decodes one base64url segment holding a JSON object into MessagePack in `out`. */
static enum jwt_result decode_json_segment(const char *seg, size_t n, struct buf *out)
{
    uint8_t raw[JWT_MAX_TOKEN];
    size_t raw_len = 0;
    if (!base64url_decode_strict(seg, n, raw, &raw_len))
        return JWT_MALFORMED;
    buf_reset(out);
    int rc = json_to_msgpack(raw, raw_len, out);
    if (rc == SIOC_ENOMEM)
        return JWT_NOMEM;
    /* RFC 7515 4 / RFC 7519 7.2: both are JSON objects; walk_map checks the map type */
    return rc == SIOC_OK ? JWT_OK : JWT_MALFORMED;
}

/* Walks a MessagePack map; calls `visit` with each string key and the reader positioned at its
 * value (which visit must not consume). */
typedef enum jwt_result (*visit_cb)(void *ctx, const struct mp_item *key,
                                    const struct mp_item *value);

static enum jwt_result walk_map(const struct buf *map, visit_cb visit, void *ctx)
{
    struct mp_reader r;
    struct mp_item head;
    mp_reader_init(&r, map->data, map->len);
    if (mp_read(&r, &head) != SIOC_OK || head.kind != MP_MAP)
        return JWT_MALFORMED;
    for (uint32_t i = 0; i < head.len; i++) {
        struct mp_item key, value;
        if (mp_read(&r, &key) != SIOC_OK)
            return JWT_MALFORMED;
        struct mp_reader peek = r;
        if (mp_read(&peek, &value) != SIOC_OK || mp_skip(&r) != SIOC_OK)
            return JWT_MALFORMED;
        if (key.kind != MP_STR)
            continue;
        enum jwt_result res = visit(ctx, &key, &value);
        if (res != JWT_OK)
            return res;
    }
    return JWT_OK;
}

struct header_visit {
    const char *want_alg;
    bool alg_ok;
};

static enum jwt_result visit_header(void *ctx, const struct mp_item *key,
                                    const struct mp_item *value)
{
    struct header_visit *h = ctx;
    if (mp_item_is_str(key, "alg"))
        h->alg_ok = mp_item_is_str(value, h->want_alg);
    else if (mp_item_is_str(key, "crit"))
        return JWT_MALFORMED; /* RFC 7515 4.1.11: we understand no critical extension */
    return JWT_OK;
}

struct claims_visit {
    const char *user_claim;
    bool has_exp, has_nbf, has_user;
    double exp, nbf;
    struct jwt_claims *out;
};

static enum jwt_result visit_claims(void *ctx, const struct mp_item *key,
                                    const struct mp_item *value)
{
    struct claims_visit *c = ctx;
    if (mp_item_is_str(key, "exp")) {
        if (!mp_item_to_double(value, &c->exp))
            return JWT_MALFORMED; /* RFC 7519 4.1.4: a NumericDate */
        c->has_exp = true;
    } else if (mp_item_is_str(key, "nbf")) {
        if (!mp_item_to_double(value, &c->nbf))
            return JWT_MALFORMED;
        c->has_nbf = true;
    }
    if (!mp_item_is_str(key, c->user_claim))
        return JWT_OK;
    /* JSON.parse keeps the last of repeated keys, so an earlier value must not survive a later
     * one that is not a usable user id */
    c->has_user = false;
    c->out->uid[0] = '\0';
    double number;
    if (value->kind == MP_STR) {
        if (value->len == 0 || value->len > JWT_MAX_UID)
            return JWT_NO_USER;
        memcpy(c->out->uid, value->data, value->len);
        c->out->uid[value->len] = '\0';
        c->has_user = memchr(value->data, '\0', value->len) == NULL;
    } else if (mp_item_to_double(value, &number)) {
        struct buf text;
        buf_init(&text, JWT_MAX_UID);
        json_write_number(&text, number);
        if (text.err != SIOC_OK) {
            buf_deinit(&text);
            return JWT_NO_USER;
        }
        memcpy(c->out->uid, text.data, text.len);
        c->out->uid[text.len] = '\0';
        c->has_user = true;
        buf_deinit(&text);
    }
    return JWT_OK;
}

static bool verify_hs256(const struct jwt_key *key, const uint8_t *data, size_t n,
                         const uint8_t *sig, size_t sig_len)
{
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    if (HMAC(EVP_sha256(), key->secret, (int)key->secret_len, data, n, mac, &mac_len) == NULL)
        return false;
    return sig_len == mac_len && CRYPTO_memcmp(mac, sig, mac_len) == 0;
}

static bool verify_pkey(EVP_PKEY *pkey, const uint8_t *data, size_t n, const uint8_t *sig,
                        size_t sig_len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        return false;
    bool ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pkey) == 1 &&
              EVP_DigestVerify(ctx, sig, sig_len, data, n) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

/* RFC 7518 3.4: an ES256 signature is R || S, 32 bytes each; libcrypto wants DER. */
static bool verify_es256(EVP_PKEY *pkey, const uint8_t *data, size_t n, const uint8_t *sig,
                         size_t sig_len)
{
    if (sig_len != 64)
        return false;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL);
    BIGNUM *s = BN_bin2bn(sig + 32, 32, NULL);
    if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
        ECDSA_SIG_free(es);
        BN_free(r);
        BN_free(s);
        return false;
    }
    unsigned char *der = NULL;
    int der_len = i2d_ECDSA_SIG(es, &der);
    ECDSA_SIG_free(es);
    bool ok = der_len > 0 && verify_pkey(pkey, data, n, der, (size_t)der_len);
    OPENSSL_free(der);
    return ok;
}

enum jwt_result jwt_verify(const struct jwt_key *key, const char *token, size_t len,
                           const char *user_claim, int64_t now, struct jwt_claims *out)
{
    memset(out, 0, sizeof *out);
    if (len == 0 || len > JWT_MAX_TOKEN)
        return JWT_MALFORMED;
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL)
        return JWT_MALFORMED;

    struct buf json;
    buf_init(&json, JWT_MAX_TOKEN * 2);
    enum jwt_result res = decode_json_segment(token, (size_t)(dot1 - token), &json);
    struct header_visit header = {alg_name(key->alg), false};
    if (res == JWT_OK)
        res = walk_map(&json, visit_header, &header);
    if (res == JWT_OK && !header.alg_ok)
        res = JWT_BAD_ALG; /* "none", a missing alg and algorithm confusion all end here */

    uint8_t sig[JWT_MAX_TOKEN];
    size_t sig_len = 0;
    const char *sig_text = dot2 + 1;
    if (res == JWT_OK &&
        !base64url_decode_strict(sig_text, len - (size_t)(sig_text - token), sig, &sig_len))
        res = JWT_MALFORMED;
    if (res == JWT_OK) {
        const uint8_t *signed_part = (const uint8_t *)token;
        size_t signed_len = (size_t)(dot2 - token);
        bool ok = key->alg == JWT_HS256 ? verify_hs256(key, signed_part, signed_len, sig, sig_len)
                  : key->alg == JWT_RS256
                      ? verify_pkey(key->pkey, signed_part, signed_len, sig, sig_len)
                      : verify_es256(key->pkey, signed_part, signed_len, sig, sig_len);
        if (!ok)
            res = JWT_BAD_SIGNATURE;
    }

    struct claims_visit claims = {.user_claim = user_claim, .out = out};
    if (res == JWT_OK)
        res = decode_json_segment(dot1 + 1, (size_t)(dot2 - dot1 - 1), &json);
    if (res == JWT_OK)
        res = walk_map(&json, visit_claims, &claims);
    buf_deinit(&json);
    if (res != JWT_OK)
        return res;
    if (claims.has_exp && (double)now >= claims.exp)
        return JWT_EXPIRED;
    if (claims.has_nbf && (double)now < claims.nbf)
        return JWT_NOT_YET_VALID;
    if (!claims.has_user)
        return JWT_NO_USER;
    if (claims.has_exp)
        out->exp = claims.exp >= 9.2e18 ? INT64_MAX : (int64_t)claims.exp;
    return JWT_OK;
}
