/* auth.h: the gateway's `auth jwt` decision for a Socket.IO CONNECT (DESIGN.md §2): the token
 * comes from the CONNECT auth payload's `token`, else from the `Authorization: Bearer` request
 * header; it is verified with common/jwt (the key fixes the algorithm) and yields the user id
 * and the token's expiry. Pure: the caller supplies the time. */
#ifndef SIOC_GATEWAY_AUTH_H
#define SIOC_GATEWAY_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/jwt.h"

/* Finds the token: auth (a MessagePack map) key "token" when it is a string, else the
 * `authorization` header of headers (a MessagePack map with lower-cased names) when it reads
 * "Bearer <token>". Returns the token slice (pointing into auth or headers) or an empty slice. */
struct slice auth_find_token(struct slice auth, struct slice headers);

/* Verifies the token found for a CONNECT. Returns JWT_OK and fills *claims, or the failure
 * (JWT_MALFORMED when no token was given at all). */
enum jwt_result auth_check_jwt(const struct jwt_key *key, const char *user_claim, struct slice auth,
                               struct slice headers, int64_t now, struct jwt_claims *claims);

#endif
