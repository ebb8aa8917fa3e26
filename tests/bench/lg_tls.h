/* lg_tls.h: TLS for the load generator's Socket.IO connections (--tls, --tls-ca): an OpenSSL
 * client on each non-blocking socket once its TCP connect is done; the Redis source stays plain.
 * Sends and receives keep send(2)/recv(2)'s contract (-1 with errno EAGAIN when blocked). */
#ifndef SIOC_LG_TLS_H
#define SIOC_LG_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ssl_ctx_st;
struct ssl_st;

/* A client context: TLS 1.2+, the server verified against ca_file (NULL: not verified); with
 * `resume`, every connection offers the session (ticket) of the latest one that got one.
 * NULL with *err set on failure. */
struct ssl_ctx_st *lg_tls_ctx_new(const char *ca_file, bool resume, const char **err);
void lg_tls_ctx_free(struct ssl_ctx_st *ctx);
/* A connection on the connected socket fd; `host` ("name:port" or "ip:port") is sent as SNI
 * and checked against the certificate when verifying. NULL when out of memory. */
struct ssl_st *lg_tls_new(struct ssl_ctx_st *ctx, int fd, const char *host);
void lg_tls_free(struct ssl_st *ssl);
/* True once a --tls-resume context holds a session to offer. */
bool lg_tls_have_session(struct ssl_ctx_st *ctx);
/* True when ssl's handshake resumed a session. */
bool lg_tls_resumed(const struct ssl_st *ssl);
/* Advances the handshake: 1 done, 0 in progress (*want_write: wait for writability, else for
 * readability), -1 failed (the reason on stderr once). */
int lg_tls_handshake(struct ssl_st *ssl, bool *want_write);
/* send(2)/recv(2) over TLS; recv reads until cap is full or the socket is drained. */
ssize_t lg_tls_send(struct ssl_st *ssl, const void *p, size_t len);
ssize_t lg_tls_recv(struct ssl_st *ssl, uint8_t *p, size_t cap);

#endif
