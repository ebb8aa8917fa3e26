/* jwt.h: JSON Web Token verification for the gateway's `auth jwt` mode (DESIGN.md §2):
 * compact JWS (RFC 7515) with HS256, RS256 or ES256 (RFC 7518 3.2-3.4), claims exp/nbf
 * (RFC 7519 4.1.4-5) and a configurable user claim. The key decides the one algorithm a token
 * may use, so `alg:none` and algorithm confusion (an HS256 token "signed" with a public key)
 * are refused by construction. Pure: libcrypto only; the caller supplies the time. */
#ifndef SIOC_JWT_H
#define SIOC_JWT_H

#include <stddef.h>
#include <stdint.h>

/* Longest token accepted; longer ones are refused before any decoding. */
#define JWT_MAX_TOKEN 8192
/* Longest user id taken from the user claim. */
#define JWT_MAX_UID 256

enum jwt_alg { JWT_HS256, JWT_RS256, JWT_ES256 };

struct jwt_key; /* opaque: an HMAC secret or a public key */

/* An HS256 key from a shared secret (copied). Returns NULL when out of memory. */
struct jwt_key *jwt_key_from_secret(const void *secret, size_t len);
/* A public key from PEM text ("-----BEGIN PUBLIC KEY-----", RSA or EC P-256): RS256 or ES256
 * follows from the key type. Returns NULL if the PEM is not such a key. */
struct jwt_key *jwt_key_from_pem(const char *pem, size_t len);
void jwt_key_free(struct jwt_key *key);
enum jwt_alg jwt_key_alg(const struct jwt_key *key);

enum jwt_result {
    JWT_OK = 0,
    JWT_MALFORMED,     /* not three base64url segments of JSON objects, or too long */
    JWT_BAD_ALG,       /* alg missing, "none", or not the key's algorithm */
    JWT_BAD_SIGNATURE, /* signature does not verify */
    JWT_EXPIRED,       /* now >= exp */
    JWT_NOT_YET_VALID, /* now < nbf */
    JWT_NO_USER,       /* the user claim is missing or not a string/number */
    JWT_NOMEM,
};

struct jwt_claims {
    char uid[JWT_MAX_UID + 1]; /* the user claim as a string (numbers as JS prints them) */
    int64_t exp;               /* seconds since the epoch; 0 when the token has no exp */
};

/* Verifies `token` with `key` at time `now` (seconds since the epoch) and extracts the claim
 * named `user_claim` (e.g. "sub") into out->uid. Returns JWT_OK or the first failure. */
enum jwt_result jwt_verify(const struct jwt_key *key, const char *token, size_t len,
                           const char *user_claim, int64_t now, struct jwt_claims *out);
/* A static, human-readable name of a result, for CONNECT_ERROR messages and logs. */
const char *jwt_strerror(enum jwt_result r);

#endif
