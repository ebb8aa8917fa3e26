/* test_jwt.c: JWT verification against a published HS256 vector and tokens signed here with
 * fresh RSA and P-256 keys: valid, expired, not yet valid, bad signature, alg:none, algorithm
 * confusion (HS256 keyed with the RSA public key's PEM), malformed shapes, user claims. */
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "common/base64.h"
#include "common/jwt.h"
#include "tests/unit/test.h"

#define NOW 1700000000

struct keys {
    EVP_PKEY *rsa, *ec;
    char rsa_pem[4096], ec_pem[1024];
};

static void pem_of(EVP_PKEY *pkey, char *out, size_t cap)
{
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, pkey);
    int n = BIO_read(bio, out, (int)cap - 1);
    out[n > 0 ? n : 0] = '\0';
    BIO_free(bio);
}

static void make_keys(struct keys *k)
{
    k->rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    k->ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    pem_of(k->rsa, k->rsa_pem, sizeof k->rsa_pem);
    pem_of(k->ec, k->ec_pem, sizeof k->ec_pem);
}

/* Builds base64url(header).base64url(payload) into out; returns its length. */
static size_t signing_input(const char *header, const char *payload, char *out)
{
    size_t n = base64url_encode((const uint8_t *)header, strlen(header), out);
    out[n++] = '.';
    n += base64url_encode((const uint8_t *)payload, strlen(payload), out + n);
    return n;
}

static size_t append_sig(char *token, size_t n, const uint8_t *sig, size_t sig_len)
{
    token[n++] = '.';
    n += base64url_encode(sig, sig_len, token + n);
    token[n] = '\0';
    return n;
}

static size_t sign_hs256(const char *header, const char *payload, const void *secret,
                         size_t secret_len, char *token)
{
    size_t n = signing_input(header, payload, token);
    uint8_t mac[32];
    unsigned mac_len = 0;
    HMAC(EVP_sha256(), secret, (int)secret_len, (const uint8_t *)token, n, mac, &mac_len);
    return append_sig(token, n, mac, mac_len);
}

static size_t sign_pkey(const char *header, const char *payload, EVP_PKEY *pkey, int es256,
                        char *token)
{
    size_t n = signing_input(header, payload, token);
    uint8_t der[1024];
    size_t der_len = sizeof der;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkey);
    EVP_DigestSign(ctx, der, &der_len, (const uint8_t *)token, n);
    EVP_MD_CTX_free(ctx);
    if (!es256)
        return append_sig(token, n, der, der_len);
    /* RFC 7518 3.4: JWS carries R || S, not DER */
    const uint8_t *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    uint8_t raw[64];
    BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32);
    ECDSA_SIG_free(es);
    return append_sig(token, n, raw, 64);
}

static enum jwt_result verify(const struct jwt_key *key, const char *token, struct jwt_claims *c)
{
    return jwt_verify(key, token, strlen(token), "sub", NOW, c);
}

/* The example token published on jwt.io (HS256, secret "your-256-bit-secret"). */
static void test_published_hs256_vector(void)
{
    const char *token =
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6Ik"
        "pvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    struct jwt_key *key = jwt_key_from_secret("your-256-bit-secret", 19);
    struct jwt_claims c;
    CHECK(jwt_key_alg(key) == JWT_HS256);
    CHECK(verify(key, token, &c) == JWT_OK);
    CHECK(strcmp(c.uid, "1234567890") == 0);
    CHECK(c.exp == 0);
    CHECK(jwt_verify(key, token, strlen(token), "name", NOW, &c) == JWT_OK);
    CHECK(strcmp(c.uid, "John Doe") == 0);
    CHECK(jwt_verify(key, token, strlen(token), "user_id", NOW, &c) == JWT_NO_USER);
    jwt_key_free(key);
    key = jwt_key_from_secret("another secret", 14);
    CHECK(verify(key, token, &c) == JWT_BAD_SIGNATURE);
    jwt_key_free(key);
}

static void test_hs256_claims(void)
{
    static const char hs[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    struct jwt_key *key = jwt_key_from_secret("s3cret", 6);
    char token[2048];
    struct jwt_claims c;
    sign_hs256(hs, "{\"sub\":\"u1\",\"exp\":1700000060}", "s3cret", 6, token);
    CHECK(verify(key, token, &c) == JWT_OK && strcmp(c.uid, "u1") == 0 && c.exp == 1700000060);
    sign_hs256(hs, "{\"sub\":\"u1\",\"exp\":1700000000}", "s3cret", 6, token);
    CHECK(verify(key, token, &c) == JWT_EXPIRED); /* RFC 7519 4.1.4: on or after exp */
    sign_hs256(hs, "{\"sub\":\"u1\",\"nbf\":1700000001}", "s3cret", 6, token);
    CHECK(verify(key, token, &c) == JWT_NOT_YET_VALID);
    sign_hs256(hs, "{\"sub\":42}", "s3cret", 6, token);
    CHECK(verify(key, token, &c) == JWT_OK && strcmp(c.uid, "42") == 0);
    sign_hs256(hs, "{\"sub\":{\"id\":1}}", "s3cret", 6, token);
    CHECK(verify(key, token, &c) == JWT_NO_USER);
    sign_hs256(hs, "{\"sub\":\"\"}", "s3cret", 6, token);
    CHECK(verify(key, token, &c) == JWT_NO_USER);
    /* JSON.parse keeps the last of repeated keys: a later non-string user claim wins */
    sign_hs256(hs, "{\"sub\":\"u1\",\"sub\":null}", "s3cret", 6, token);
    CHECK(verify(key, token, &c) == JWT_NO_USER);
    sign_hs256(hs, "{\"sub\":\"u1\",\"sub\":{\"id\":1}}", "s3cret", 6, token);
    CHECK(verify(key, token, &c) == JWT_NO_USER);
    sign_hs256(hs, "{\"sub\":null,\"sub\":\"u2\"}", "s3cret", 6, token);
    CHECK(verify(key, token, &c) == JWT_OK && strcmp(c.uid, "u2") == 0);
    sign_hs256(hs, "{\"sub\":\"u1\",\"exp\":\"tomorrow\"}", "s3cret", 6, token);
    CHECK(verify(key, token, &c) == JWT_MALFORMED);
    sign_hs256(hs, "[\"sub\"]", "s3cret", 6, token);
    CHECK(verify(key, token, &c) == JWT_MALFORMED);
    sign_hs256("{\"alg\":\"HS256\",\"crit\":[\"b64\"]}", "{\"sub\":\"u1\"}", "s3cret", 6, token);
    CHECK(verify(key, token, &c) == JWT_MALFORMED);
    jwt_key_free(key);
}

static void test_alg_none_and_confusion(void)
{
    struct keys k;
    make_keys(&k);
    struct jwt_key *hs = jwt_key_from_secret("s3cret", 6);
    struct jwt_key *rs = jwt_key_from_pem(k.rsa_pem, strlen(k.rsa_pem));
    CHECK(rs != NULL && jwt_key_alg(rs) == JWT_RS256);
    char token[4096];
    struct jwt_claims c;
    /* alg:none with an empty signature: refused by every key */
    size_t n = signing_input("{\"alg\":\"none\"}", "{\"sub\":\"u1\"}", token);
    token[n++] = '.';
    token[n] = '\0';
    CHECK(verify(hs, token, &c) == JWT_BAD_ALG);
    CHECK(verify(rs, token, &c) == JWT_BAD_ALG);
    /* algorithm confusion: an HS256 token whose HMAC key is the RSA public key's PEM */
    sign_hs256("{\"alg\":\"HS256\"}", "{\"sub\":\"u1\"}", k.rsa_pem, strlen(k.rsa_pem), token);
    CHECK(verify(rs, token, &c) == JWT_BAD_ALG);
    /* and the reverse: an RS256 token offered to an HS256 gateway */
    sign_pkey("{\"alg\":\"RS256\"}", "{\"sub\":\"u1\"}", k.rsa, 0, token);
    CHECK(verify(hs, token, &c) == JWT_BAD_ALG);
    CHECK(verify(rs, token, &c) == JWT_OK && strcmp(c.uid, "u1") == 0);
    sign_hs256("{\"typ\":\"JWT\"}", "{\"sub\":\"u1\"}", "s3cret", 6, token);
    CHECK(verify(hs, token, &c) == JWT_BAD_ALG); /* alg missing */
    jwt_key_free(hs);
    jwt_key_free(rs);
    EVP_PKEY_free(k.rsa);
    EVP_PKEY_free(k.ec);
}

static void test_rs256_es256(void)
{
    struct keys k;
    make_keys(&k);
    struct jwt_key *rs = jwt_key_from_pem(k.rsa_pem, strlen(k.rsa_pem));
    struct jwt_key *es = jwt_key_from_pem(k.ec_pem, strlen(k.ec_pem));
    CHECK(es != NULL && jwt_key_alg(es) == JWT_ES256);
    char token[4096];
    struct jwt_claims c;
    size_t n =
        sign_pkey("{\"alg\":\"ES256\"}", "{\"sub\":\"u7\",\"exp\":1800000000}", k.ec, 1, token);
    CHECK(verify(es, token, &c) == JWT_OK && strcmp(c.uid, "u7") == 0 && c.exp == 1800000000);
    CHECK(verify(rs, token, &c) == JWT_BAD_ALG);
    token[n - 2] = token[n - 2] == 'A' ? 'B' : 'A'; /* corrupt S */
    CHECK(verify(es, token, &c) == JWT_BAD_SIGNATURE);
    n = sign_pkey("{\"alg\":\"RS256\"}", "{\"sub\":\"u8\"}", k.rsa, 0, token);
    token[n - 3] = token[n - 3] == 'A' ? 'B' : 'A';
    CHECK(verify(rs, token, &c) == JWT_BAD_SIGNATURE);
    CHECK(jwt_key_from_pem("not a key", 9) == NULL);
    jwt_key_free(rs);
    jwt_key_free(es);
    EVP_PKEY_free(k.rsa);
    EVP_PKEY_free(k.ec);
}

static void test_malformed_shapes(void)
{
    struct jwt_key *key = jwt_key_from_secret("s3cret", 6);
    struct jwt_claims c;
    char token[2048];
    size_t n = sign_hs256("{\"alg\":\"HS256\"}", "{\"sub\":\"u1\"}", "s3cret", 6, token);
    CHECK(verify(key, token, &c) == JWT_OK);
    static const char *const bad[] = {
        "", "a", "a.b", "a.b.c.d", "..", "eyJhbGciOiJIUzI1NiJ9=.e30.AA", "!!!.e30.AA"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(verify(key, bad[i], &c) == JWT_MALFORMED);
    /* issue 10: the standard alphabet's '+' and '/' are not base64url (RFC 7515 2), in the
     * signature or in either JSON segment: the published vector's signature has a '_' */
    char std[512];
    const char *vec =
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6Ik"
        "pvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    struct jwt_key *vkey = jwt_key_from_secret("your-256-bit-secret", 19);
    snprintf(std, sizeof std, "%s", vec);
    CHECK(verify(vkey, std, &c) == JWT_OK);
    *strchr(std, '_') = '/';
    CHECK(verify(vkey, std, &c) == JWT_MALFORMED);
    jwt_key_free(vkey);
    /* a claims segment with '-' (">>>" encodes to "Pj4-") spelled '+', correctly signed */
    n = signing_input("{\"alg\":\"HS256\"}", "{\"sub\":\"u1\",\"x\":\">>>\"}", token);
    char *minus = strchr(strchr(token, '.') + 1, '-');
    CHECK(minus != NULL);
    if (minus != NULL)
        *minus = '+';
    uint8_t mac[32];
    unsigned mac_len = 0;
    HMAC(EVP_sha256(), "s3cret", 6, (const uint8_t *)token, n, mac, &mac_len);
    append_sig(token, n, mac, mac_len);
    CHECK(verify(key, token, &c) == JWT_MALFORMED);
    n = sign_hs256("{\"alg\":\"HS256\"}", "{\"sub\":\"u1\"}", "s3cret", 6, token);
    /* a well-formed header with empty claims and signature fails the signature first */
    CHECK(verify(key, "eyJhbGciOiJIUzI1NiJ9..", &c) == JWT_BAD_SIGNATURE);
    /* a token at a guard page: no over-read past its end */
    size_t map_len;
    uint8_t *g = test_guard_copy(token, n, &map_len);
    CHECK(jwt_verify(key, (const char *)g, n, "sub", NOW, &c) == JWT_OK);
    CHECK(jwt_verify(key, (const char *)g, n - 1, "sub", NOW, &c) != JWT_OK);
    test_guard_free(g, n, map_len);
    static char huge[JWT_MAX_TOKEN + 2];
    memset(huge, 'a', sizeof huge - 1);
    CHECK(verify(key, huge, &c) == JWT_MALFORMED);
    jwt_key_free(key);
    jwt_key_free(NULL);
}

int main(void)
{
    RUN(test_published_hs256_vector);
    RUN(test_hs256_claims);
    RUN(test_alg_none_and_confusion);
    RUN(test_rs256_es256);
    RUN(test_malformed_shapes);
    return test_summary("test_jwt");
}
