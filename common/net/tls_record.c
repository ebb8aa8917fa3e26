/* tls_record.c: TLS 1.3 record protection with OpenSSL's AEADs (see tls_record.h). RFC 8446:
 * 7.1 HKDF-Expand-Label, 7.3 traffic keys, 5.3 the per-record nonce, 5.2 the record layout
 * (TLSInnerPlaintext = content || type || zeros; the 5-byte header is the additional data). */
#include "common/net/tls_record.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <stdlib.h>
#include <string.h>

struct tls13_aead {
    EVP_CIPHER_CTX *ctx[4]; /* by enum tls13_suite */
};

struct suite_info {
    const char *cipher, *digest;
    size_t key_len, hash_len;
};

static const struct suite_info SUITES[4] = {
    [TLS13_AES_128_GCM] = {"AES-128-GCM", "SHA256", 16, 32},
    [TLS13_AES_256_GCM] = {"AES-256-GCM", "SHA384", 32, 48},
    [TLS13_CHACHA20_POLY1305] = {"ChaCha20-Poly1305", "SHA256", 32, 32},
};

enum tls13_suite tls13_suite_of(uint16_t iana)
{
    switch (iana) {
    case 0x1301: return TLS13_AES_128_GCM;
    case 0x1302: return TLS13_AES_256_GCM;
    case 0x1303: return TLS13_CHACHA20_POLY1305;
    default: return 0;
    }
}

struct tls13_aead *tls13_aead_new(void)
{
    return calloc(1, sizeof(struct tls13_aead));
}

void tls13_aead_free(struct tls13_aead *a)
{
    if (a == NULL)
        return;
    for (int i = 0; i < 4; i++)
        EVP_CIPHER_CTX_free(a->ctx[i]);
    free(a);
}

/* The suite's context, the cipher set (keys come per record). */
static EVP_CIPHER_CTX *aead_ctx(struct tls13_aead *a, enum tls13_suite s)
{
    if (a->ctx[s] != NULL)
        return a->ctx[s];
    EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, SUITES[s].cipher, NULL);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (c == NULL || ctx == NULL || EVP_CipherInit_ex(ctx, c, NULL, NULL, NULL, 1) != 1) {
        EVP_CIPHER_free(c);
        EVP_CIPHER_CTX_free(ctx);
        ERR_clear_error();
        return NULL;
    }
    EVP_CIPHER_free(c); /* the context holds its own reference */
    a->ctx[s] = ctx;
    return ctx;
}

/* HKDF-Expand-Label(secret, label, "", out_len) (RFC 8446 7.1). */
static int expand_label(enum tls13_suite s, const uint8_t *secret, const char *label, uint8_t *out,
                        size_t out_len)
{
    uint8_t info[2 + 1 + 6 + 32 + 1];
    size_t ll = strlen(label);
    if (ll > 32)
        return -1;
    info[0] = (uint8_t)(out_len >> 8);
    info[1] = (uint8_t)out_len;
    info[2] = (uint8_t)(6 + ll);
    memcpy(info + 3, "tls13 ", 6);
    memcpy(info + 9, label, ll);
    info[9 + ll] = 0; /* empty context */
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)SUITES[s].digest, 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, SUITES[s].hash_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, 10 + ll),
        OSSL_PARAM_construct_end(),
    };
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    int ok = kctx != NULL && EVP_KDF_derive(kctx, out, out_len, params) == 1;
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    ERR_clear_error();
    return ok ? 0 : -1;
}

static int derive(struct tls13_keys *k, enum tls13_suite s)
{
    k->seq = 0;
    return expand_label(s, k->secret, "key", k->key, SUITES[s].key_len) == 0 &&
                   expand_label(s, k->secret, "iv", k->iv, sizeof k->iv) == 0
               ? 0
               : -1;
}

int tls13_keys_init(struct tls13_keys *k, enum tls13_suite s, const uint8_t *secret,
                    size_t secret_len)
{
    if (s < TLS13_AES_128_GCM || s > TLS13_CHACHA20_POLY1305 || secret_len != SUITES[s].hash_len)
        return -1;
    memmove(k->secret, secret, secret_len); /* secret may be k->secret */
    memset(k->secret + secret_len, 0, sizeof k->secret - secret_len);
    return derive(k, s);
}

int tls13_keys_update(struct tls13_keys *k, enum tls13_suite s)
{
    uint8_t next[48];
    if (expand_label(s, k->secret, "traffic upd", next, SUITES[s].hash_len) != 0)
        return -1;
    memcpy(k->secret, next, SUITES[s].hash_len);
    OPENSSL_cleanse(next, sizeof next);
    return derive(k, s);
}

/* RFC 8446 5.3: the iv XORed with the 64-bit sequence number, right-aligned. */
static void nonce_of(const struct tls13_keys *k, uint8_t nonce[12])
{
    memcpy(nonce, k->iv, 12);
    for (int i = 0; i < 8; i++)
        nonce[11 - i] ^= (uint8_t)(k->seq >> (8 * i));
}

static void header(uint8_t *h, size_t body)
{
    h[0] = TLS13_APPLICATION_DATA; /* opaque_type */
    h[1] = 0x03;                   /* legacy_record_version 0x0303 */
    h[2] = 0x03;
    h[3] = (uint8_t)(body >> 8);
    h[4] = (uint8_t)body;
}

long tls13_seal(struct tls13_aead *a, const struct tls13_keys *k, enum tls13_suite s, uint8_t type,
                const struct iovec *iov, int n, size_t len, uint8_t *out)
{
    EVP_CIPHER_CTX *ctx = aead_ctx(a, s);
    if (ctx == NULL || len > TLS13_MAX_PLAIN || k->seq == UINT64_MAX)
        return -1;
    size_t body = len + 1 + TLS13_TAG;
    header(out, body);
    uint8_t nonce[12];
    nonce_of(k, nonce);
    int outl = 0;
    size_t off = TLS13_HEADER;
    if (EVP_CipherInit_ex(ctx, NULL, NULL, k->key, nonce, 1) != 1 ||
        EVP_EncryptUpdate(ctx, NULL, &outl, out, TLS13_HEADER) != 1)
        goto fail;
    for (int i = 0; i < n; i++) {
        if (iov[i].iov_len == 0)
            continue;
        if (EVP_EncryptUpdate(ctx, out + off, &outl, iov[i].iov_base, (int)iov[i].iov_len) != 1)
            goto fail;
        off += (size_t)outl;
    }
    if (EVP_EncryptUpdate(ctx, out + off, &outl, &type, 1) != 1)
        goto fail;
    off += (size_t)outl;
    if (EVP_EncryptFinal_ex(ctx, out + off, &outl) != 1)
        goto fail;
    off += (size_t)outl;
    if (off != TLS13_HEADER + len + 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TLS13_TAG, out + off) != 1)
        goto fail;
    return (long)(off + TLS13_TAG);
fail:
    ERR_clear_error();
    return -1;
}

long tls13_open(struct tls13_aead *a, struct tls13_keys *k, enum tls13_suite s, uint8_t *rec,
                size_t body, uint8_t *type, uint8_t *alert)
{
    EVP_CIPHER_CTX *ctx = aead_ctx(a, s);
    *alert = TLS13_BAD_RECORD_MAC;
    if (body > TLS13_MAX_CIPHERTEXT)
        *alert = TLS13_RECORD_OVERFLOW;
    else if (ctx == NULL || k->seq == UINT64_MAX)
        *alert = TLS13_INTERNAL_ERROR;
    if (ctx == NULL || k->seq == UINT64_MAX || body < 1 + TLS13_TAG || body > TLS13_MAX_CIPHERTEXT)
        return -1;
    uint8_t nonce[12];
    nonce_of(k, nonce);
    uint8_t *p = rec + TLS13_HEADER;
    size_t clen = body - TLS13_TAG;
    int outl = 0, finl = 0;
    if (EVP_CipherInit_ex(ctx, NULL, NULL, k->key, nonce, 0) != 1 ||
        EVP_DecryptUpdate(ctx, NULL, &outl, rec, TLS13_HEADER) != 1 ||
        EVP_DecryptUpdate(ctx, p, &outl, p, (int)clen) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TLS13_TAG, p + clen) != 1 ||
        EVP_DecryptFinal_ex(ctx, p + outl, &finl) != 1 || (size_t)(outl + finl) != clen) {
        ERR_clear_error();
        return -1;
    }
    k->seq++;
    /* the content type is the last non-zero byte; padding zeros follow it (RFC 8446 5.4) */
    size_t i = clen;
    while (i > 0 && p[i - 1] == 0)
        i--;
    if (i == 0 || i - 1 > TLS13_MAX_PLAIN) {
        *alert = i == 0 ? TLS13_UNEXPECTED_MESSAGE : TLS13_RECORD_OVERFLOW;
        return -1;
    }
    *type = p[i - 1];
    return (long)(i - 1);
}
