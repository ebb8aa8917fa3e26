/* tls_conn.c: server-side TLS connections (tls.h). OpenSSL does the handshake. When a TLS 1.3
 * handshake is over, the connection is "detached": the traffic secrets OpenSSL handed to the key
 * log callback become record keys (tls_record.h), the SSL object is freed, and records are sealed
 * and opened here: what kernel TLS does after an OpenSSL handshake (SSL_OP_ENABLE_KTLS), in user
 * space, because an idle connection's SSL costs about 12 KiB in OpenSSL 3.0 and the keys 200 B.
 * The first sequence numbers are the records each side sent after its Finished (counted in the
 * message callback: the server's session tickets; none from the client, as OpenSSL reads no
 * further than the client's Finished). Anything else (TLS 1.2, a CCM suite, bytes OpenSSL has
 * read ahead) keeps the SSL for the connection's life. */
#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/hex.h"
#include "common/net/tls_internal.h"

/* Bytes a client may send before its handshake completes. OpenSSL would buffer a ClientHello
 * of up to 128 KiB; real ones are under 2 KiB (4 KiB with post-quantum key shares). */
#define HANDSHAKE_MAX_BYTES (32u * 1024)
/* Records sent under one key before we update it (RFC 8446 5.5: AES-GCM is safe to about
 * 2^24.5 full records per key). */
#define KEY_UPDATE_AFTER (1ull << 23)

/* ---- OpenSSL callbacks (installed on the SSL_CTX by tls.c) ---- */

static void info_cb(const SSL *ssl, int where, int ret)
{
    (void)ret;
    struct tls_conn *c = SSL_get_app_data(ssl);
    if ((where & SSL_CB_HANDSHAKE_START) && c != NULL && c->hs_starts < UINT8_MAX)
        c->hs_starts++;
}

/* "LABEL <client random hex> <secret hex>" (NSS key log format): the first application
 * traffic secrets are kept, the other lines ignored. */
static void keylog_cb(const SSL *ssl, const char *line)
{
    struct tls_conn *c = SSL_get_app_data(ssl);
    bool client = strncmp(line, "CLIENT_TRAFFIC_SECRET_0 ", 24) == 0;
    if (c == NULL || (!client && strncmp(line, "SERVER_TRAFFIC_SECRET_0 ", 24) != 0))
        return;
    const char *hex = strchr(line + 24, ' ');
    if (hex == NULL)
        return;
    hex++;
    size_t n = strlen(hex) / 2;
    struct tls13_keys *k = client ? &c->rd : &c->wr;
    if (n != 32 && n != 48)
        return;
    for (size_t i = 0; i < n; i++) {
        int hi = hex_digit_value((uint8_t)hex[2 * i]),
            lo = hex_digit_value((uint8_t)hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return;
        k->secret[i] = (uint8_t)(hi << 4 | lo);
    }
    k->seq = n; /* the secret's length until the keys are derived */
    if (client)
        c->got_client_secret = true;
    else
        c->got_server_secret = true;
}

/* Counts the records each side sends after its Finished message. OpenSSL reports a record's
 * header as it seals or reads it, and a handshake message once its record is written or read. */
static void msg_cb(int write_p, int version, int content_type, const void *buf, size_t len,
                   SSL *ssl, void *arg)
{
    (void)version;
    (void)arg;
    struct tls_conn *c = SSL_get_app_data(ssl);
    if (c == NULL)
        return;
    const uint8_t *b = buf;
    if (content_type == SSL3_RT_HANDSHAKE && len >= 1 && b[0] == SSL3_MT_FINISHED) {
        if (write_p)
            c->server_finished = true;
        else
            c->client_finished = true;
    } else if (content_type == SSL3_RT_HEADER) {
        if (write_p && c->server_finished)
            c->records_out++;
        else if (!write_p && c->client_finished)
            c->records_in++;
    }
}

/* ---- life ---- */

struct tls_conn *tls_conn_new(struct tls_context *tls, int fd)
{
    struct tls_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->ssl = SSL_new(tls->ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1) { /* a socket BIO that does not close fd */
        SSL_free(c->ssl);
        free(c);
        ERR_clear_error();
        return NULL;
    }
    c->fd = fd;
    c->tls = tls;
    tls->refs++;
    SSL_set_app_data(c->ssl, c);
    SSL_set_info_callback(c->ssl, info_cb);
    /* the traffic secrets and record counts that let this module free the SSL after a TLS 1.3
     * handshake (only the record state stays: tls_record.h). OpenSSL keeps the key-log callback
     * on the context only: setting it again for each connection changes nothing. */
    SSL_CTX_set_keylog_callback(tls->ctx, keylog_cb);
    SSL_set_msg_callback(c->ssl, msg_cb);
    SSL_set_accept_state(c->ssl);
    return c;
}

/* One send of a whole sealed record; bytes sent or -1 with errno. */
static ssize_t send_some(int fd, const uint8_t *p, size_t len)
{
    ssize_t w;
    do
        w = send(fd, p, len, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    return w;
}

/* An alert (RFC 8446 6: close_notify, or a fatal error) sealed and sent once, best effort;
 * not in the middle of a record. It is the last record: its sequence number is used up (a
 * close_notify after a fatal alert would otherwise reuse the nonce) and nothing follows. */
static void send_alert(struct tls_conn *c, uint8_t description)
{
    if (c->wpend != NULL || c->alert_sent)
        return;
    uint8_t alert[2] = {description == 0 ? 1 : 2, description}; /* warning only for close */
    uint8_t rec[2 + TLS13_OVERHEAD];
    struct iovec iov = {.iov_base = (void *)alert, .iov_len = 2};
    long n = tls13_seal(c->tls->aead, &c->wr, c->suite, TLS13_ALERT, &iov, 1, 2, rec);
    if (n <= 0)
        return;
    c->wr.seq++;
    c->alert_sent = true;
    (void)send_some(c->fd, rec, (size_t)n);
}

void tls_conn_free(struct tls_conn *c, bool notify)
{
    if (c == NULL)
        return;
    if (c->ssl != NULL) {
        if (notify && SSL_is_init_finished(c->ssl))
            SSL_shutdown(c->ssl); /* one try at close_notify; the socket closes either way */
        SSL_free(c->ssl);
        ERR_clear_error();
    } else if (notify) {
        send_alert(c, 0); /* close_notify */
    }
    free(c->wpend);
    free(c->rpend);
    struct tls_context *tls = c->tls;
    OPENSSL_cleanse(c, sizeof *c);
    free(c);
    tls_context_unref(tls);
}

bool tls_conn_renegotiating(const struct tls_conn *c)
{
    return c->hs_starts > 1;
}

bool tls_conn_resumed(const struct tls_conn *c)
{
    return c->ssl != NULL ? SSL_session_reused(c->ssl) == 1 : c->resumed;
}

bool tls_conn_detached(const struct tls_conn *c)
{
    return c->ssl == NULL;
}

/* ---- the handshake (OpenSSL) ---- */

/* What a failed SSL_* call (rc <= 0) means. */
static int result(SSL *ssl, int rc, char *why, size_t whylen)
{
    int e = SSL_get_error(ssl, rc);
    switch (e) {
    case SSL_ERROR_WANT_READ: return TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE: return TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN: ERR_clear_error(); return TLS_CLOSED;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0) {
            int saved = errno;
            if (saved == 0)
                return TLS_CLOSED;
            snprintf(why, whylen, "%s", strerror(saved));
            return TLS_FAILED;
        }
        tls_ssl_error_text(why, whylen, "TLS error"); /* OpenSSL queued the reason */
        return TLS_FAILED;
    default: tls_ssl_error_text(why, whylen, "TLS error"); return TLS_FAILED;
    }
}

/* After a complete handshake: to the record layer of tls_record.h when it can carry on. */
static void detach(struct tls_conn *c)
{
    SSL *ssl = c->ssl;
    const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
    enum tls13_suite s = cipher != NULL ? tls13_suite_of(SSL_CIPHER_get_protocol_id(cipher)) : 0;
    size_t rd_len = (size_t)c->rd.seq, wr_len = (size_t)c->wr.seq; /* secret lengths */
    bool can = SSL_version(ssl) == TLS1_3_VERSION && s != 0 && c->got_client_secret &&
               c->got_server_secret && c->client_finished && c->server_finished &&
               SSL_has_pending(ssl) == 0 && c->hs_starts == 1;
    if (!can || tls13_keys_init(&c->rd, s, c->rd.secret, rd_len) != 0 ||
        tls13_keys_init(&c->wr, s, c->wr.secret, wr_len) != 0) {
        OPENSSL_cleanse(&c->rd, sizeof c->rd);
        OPENSSL_cleanse(&c->wr, sizeof c->wr);
        SSL_set_msg_callback(ssl, NULL); /* no more counting for a connection that stays */
        return;
    }
    c->rd.seq = c->records_in;
    c->wr.seq = c->records_out;
    c->suite = s;
    c->resumed = SSL_session_reused(ssl) == 1;
    SSL_free(ssl);
    ERR_clear_error();
    c->ssl = NULL;
}

int tls_conn_handshake(struct tls_conn *c, char *why, size_t whylen)
{
    if (c->ssl == NULL)
        return 1;
    ERR_clear_error();
    errno = 0;
    int rc = SSL_do_handshake(c->ssl);
    if (rc == 1) {
        detach(c);
        return 1;
    }
    rc = result(c->ssl, rc, why, whylen);
    uint64_t got = BIO_number_read(SSL_get_rbio(c->ssl));
    if (rc == TLS_WANT_READ && got > HANDSHAKE_MAX_BYTES) {
        snprintf(why, whylen, "handshake messages too large (%llu bytes, at most %u)",
                 (unsigned long long)got, HANDSHAKE_MAX_BYTES);
        return TLS_FAILED;
    }
    return rc;
}

/* ---- records with OpenSSL (TLS 1.2, or a connection that could not detach) ---- */

static ssize_t ssl_read(struct tls_conn *c, uint8_t *p, size_t cap, char *why, size_t whylen)
{
    ERR_clear_error();
    errno = 0;
    int n = SSL_read(c->ssl, p, cap > INT_MAX ? INT_MAX : (int)cap);
    return n > 0 ? n : result(c->ssl, n, why, whylen);
}

/* The front of iov[0..n) from (i, off) as at most `max` bytes in out[0..*nout) (up to outcap
 * pieces); returns the bytes. */
static size_t take_front(const struct iovec *iov, int n, int i, size_t off, size_t max,
                         struct iovec *out, int outcap, int *nout)
{
    size_t len = 0;
    int k = 0;
    for (; i < n && len < max && k < outcap; i++, off = 0) {
        size_t piece = iov[i].iov_len - off;
        if (piece > max - len)
            piece = max - len;
        if (piece == 0)
            continue;
        out[k].iov_base = (uint8_t *)iov[i].iov_base + off;
        out[k].iov_len = piece;
        k++;
        len += piece;
    }
    *nout = k;
    return len;
}

/* Moves (i, off) forward by len bytes. */
static void advance(const struct iovec *iov, int n, int *i, size_t *off, size_t len)
{
    while (len > 0 && *i < n) {
        size_t rest = iov[*i].iov_len - *off;
        if (len < rest) {
            *off += len;
            return;
        }
        len -= rest;
        *off = 0;
        (*i)++;
    }
    while (*i < n && iov[*i].iov_len == *off) { /* skip empty pieces */
        *off = 0;
        (*i)++;
    }
}

static ssize_t ssl_writev(struct tls_conn *c, const struct iovec *iov, int n, uint8_t *stage,
                          size_t stage_cap, char *why, size_t whylen)
{
    ssize_t total = 0;
    int i = 0;
    size_t off = 0;
    advance(iov, n, &i, &off, 0);
    while (i < n) {
        /* One record's worth from the front. A retry after WANT_WRITE must offer at least as
         * many bytes as the blocked write, the same ones first: the queue only grows at its
         * end, and the choice below never offers fewer once more is queued. */
        const uint8_t *src = (const uint8_t *)iov[i].iov_base + off;
        size_t len = iov[i].iov_len - off;
        if (len >= stage_cap) {
            len = stage_cap;
        } else if (i + 1 < n) {
            struct iovec parts[64];
            int k = 0;
            len = take_front(iov, n, i, off, stage_cap, parts, 64, &k);
            size_t at = 0;
            for (int j = 0; j < k; j++) {
                memcpy(stage + at, parts[j].iov_base, parts[j].iov_len);
                at += parts[j].iov_len;
            }
            src = stage;
        }
        ERR_clear_error();
        errno = 0;
        int w = SSL_write(c->ssl, src, (int)len);
        if (w <= 0) {
            int r = result(c->ssl, w, why, whylen);
            if (r == TLS_CLOSED) {
                snprintf(why, whylen, "peer closed");
                r = TLS_FAILED;
            }
            return total > 0 ? total : r;
        }
        total += w;
        advance(iov, n, &i, &off, (size_t)w);
    }
    return total;
}

/* ---- records of a detached connection (tls_record.h) ---- */

/* Sends what is left of the last sealed record: 1 all sent, 0 the socket is full, -1 error. */
static int flush_pending(struct tls_conn *c, char *why, size_t whylen)
{
    while (c->wpend_off < c->wpend_len) {
        ssize_t w = send_some(c->fd, c->wpend + c->wpend_off, c->wpend_len - c->wpend_off);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (w <= 0) {
            snprintf(why, whylen, "%s", w < 0 ? strerror(errno) : "send returned 0");
            return -1;
        }
        c->wpend_off += (uint32_t)w;
    }
    free(c->wpend);
    c->wpend = NULL;
    c->wpend_len = c->wpend_off = 0;
    return 1;
}

/* Sends a sealed record rec[0..len): 1 sent (seq advanced), 0 nothing sent (the socket is full;
 * the record is dropped and seq kept), 2 part sent (the rest kept in wpend, seq advanced), -1. */
static int send_record(struct tls_conn *c, const uint8_t *rec, size_t len, size_t plain, char *why,
                       size_t whylen)
{
    ssize_t w = send_some(c->fd, rec, len);
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    if (w <= 0) {
        snprintf(why, whylen, "%s", w < 0 ? strerror(errno) : "send returned 0");
        return -1;
    }
    c->wr.seq++;
    if ((size_t)w == len)
        return 1;
    c->wpend = malloc(len - (size_t)w);
    if (c->wpend == NULL) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    memcpy(c->wpend, rec + w, len - (size_t)w);
    c->wpend_len = (uint32_t)(len - (size_t)w);
    c->wpend_off = 0;
    c->wpend_plain = (uint32_t)plain;
    return 2;
}

/* Our KeyUpdate (RFC 8446 4.6.3), update_not_requested, then the next write keys. Same results
 * as send_record. */
static int send_key_update(struct tls_conn *c, uint8_t *stage, char *why, size_t whylen)
{
    static const uint8_t msg[5] = {24, 0, 0, 1, 0}; /* key_update, length 1, not requested */
    struct iovec iov = {.iov_base = (void *)msg, .iov_len = sizeof msg};
    long n =
        tls13_seal(c->tls->aead, &c->wr, c->suite, TLS13_HANDSHAKE, &iov, 1, sizeof msg, stage);
    if (n < 0) {
        snprintf(why, whylen, "cannot seal a KeyUpdate");
        return -1;
    }
    int r = send_record(c, stage, (size_t)n, 0, why, whylen);
    if (r <= 0)
        return r;
    c->owe_key_update = false;
    if (tls13_keys_update(&c->wr, c->suite) != 0) {
        snprintf(why, whylen, "cannot derive the next write keys");
        return -1;
    }
    return r;
}

static ssize_t rec_writev(struct tls_conn *c, const struct iovec *iov, int n, uint8_t *stage,
                          size_t stage_cap, char *why, size_t whylen)
{
    if (c->alert_sent || stage_cap < TLS13_OVERHEAD + 1) {
        snprintf(why, whylen, "%s",
                 c->alert_sent ? "the connection ended with an alert" : "stage below 23 bytes");
        return TLS_FAILED;
    }
    ssize_t total = 0;
    int i = 0;
    size_t off = 0;
    advance(iov, n, &i, &off, 0);
    if (c->wpend != NULL) {
        size_t offered = 0;
        for (int k = 0; k < n; k++)
            offered += iov[k].iov_len;
        if (offered < c->wpend_plain) { /* the contract: the same bytes in front again */
            snprintf(why, whylen, "a write retried with fewer bytes than the record under way");
            return TLS_FAILED;
        }
        int r = flush_pending(c, why, whylen);
        if (r <= 0)
            return r < 0 ? TLS_FAILED : TLS_WANT_WRITE;
        total = c->wpend_plain; /* the caller offers those bytes first again: taken now */
        advance(iov, n, &i, &off, c->wpend_plain);
        c->wpend_plain = 0;
    }
    size_t max =
        stage_cap - TLS13_OVERHEAD < TLS13_MAX_PLAIN ? stage_cap - TLS13_OVERHEAD : TLS13_MAX_PLAIN;
    while (i < n) {
        if (c->wr.seq >= KEY_UPDATE_AFTER)
            c->owe_key_update = true;
        int r;
        if (c->owe_key_update) {
            r = send_key_update(c, stage, why, whylen);
        } else {
            struct iovec parts[64];
            int k = 0;
            size_t len = take_front(iov, n, i, off, max, parts, 64, &k);
            long rec = tls13_seal(c->tls->aead, &c->wr, c->suite, TLS13_APPLICATION_DATA, parts, k,
                                  len, stage);
            if (rec < 0) {
                snprintf(why, whylen, "cannot seal a record");
                return TLS_FAILED;
            }
            r = send_record(c, stage, (size_t)rec, len, why, whylen);
            if (r == 1) {
                total += (ssize_t)len;
                advance(iov, n, &i, &off, len);
            }
        }
        if (r < 0)
            return TLS_FAILED;
        if (r != 1) /* the socket is full (the rest of a record waits in wpend) */
            return total > 0 ? total : TLS_WANT_WRITE;
    }
    return total;
}

/* Records in a row that carry no application data (zero-length application data, KeyUpdate,
 * user_canceled) before the connection is failed: OpenSSL's bound (MAX_EMPTY_RECORDS and
 * its key-update count), so that a peer cannot hold the read loop with records that cost as
 * much to open as to send and never yield a byte. */
#define IDLE_RECORDS_MAX 32

static int fail_with(char *why, size_t whylen, const char *text, int alert)
{
    snprintf(why, whylen, "%s", text);
    return alert;
}

/* The handshake messages of one record (RFC 8446 4.6.3, 5.1): KeyUpdate only (the server asks
 * for no client certificate, so nothing else may follow the handshake). A message may be cut
 * across records (the front kept in hs_frag); a KeyUpdate must end its record, as the keys
 * change after it. 0, or the alert to send (why filled). */
static int post_handshake(struct tls_conn *c, const uint8_t *p, size_t len, char *why,
                          size_t whylen)
{
    if (len == 0)
        return fail_with(why, whylen, "an empty handshake record", TLS13_UNEXPECTED_MESSAGE);
    while (len > 0) {
        uint8_t m[5];
        size_t have = c->hs_frag_len;
        memcpy(m, c->hs_frag, have);
        size_t take = len < sizeof m - have ? len : sizeof m - have;
        memcpy(m + have, p, take);
        have += take;
        p += take;
        len -= take;
        if (m[0] != 24) {
            snprintf(why, whylen, "unexpected handshake message %u after the handshake", m[0]);
            return TLS13_UNEXPECTED_MESSAGE;
        }
        if (have >= 4 && (m[1] != 0 || m[2] != 0 || m[3] != 1))
            return fail_with(why, whylen, "a KeyUpdate whose length is not 1", TLS13_DECODE_ERROR);
        if (have < sizeof m) { /* the rest comes in the next record */
            memcpy(c->hs_frag, m, have);
            c->hs_frag_len = (uint8_t)have;
            return 0;
        }
        c->hs_frag_len = 0;
        if (m[4] > 1)
            return fail_with(why, whylen, "a KeyUpdate with request_update neither 0 nor 1",
                             TLS13_ILLEGAL_PARAMETER);
        if (len > 0)
            return fail_with(why, whylen, "a KeyUpdate not at the end of its record",
                             TLS13_UNEXPECTED_MESSAGE);
        if (tls13_keys_update(&c->rd, c->suite) != 0)
            return fail_with(why, whylen, "cannot derive the next read keys", TLS13_INTERNAL_ERROR);
        if (m[4] == 1)
            c->owe_key_update = true; /* one of ours, before our next application data */
    }
    return 0;
}

/* What one opened record of type `type` with plaintext q[0..n) means: 0 (taken; application
 * data is the caller's), or the alert to send (why filled; -1: none, the peer's alert). */
static int on_record(struct tls_conn *c, uint8_t type, const uint8_t *q, size_t n, char *why,
                     size_t whylen)
{
    if (c->hs_frag_len > 0 && type != TLS13_HANDSHAKE)
        return fail_with(why, whylen, "a record inside a cut handshake message",
                         TLS13_UNEXPECTED_MESSAGE);
    bool idle = type != TLS13_APPLICATION_DATA || n == 0;
    if (idle && ++c->idle_records > IDLE_RECORDS_MAX)
        return fail_with(why, whylen, "too many records without application data",
                         TLS13_UNEXPECTED_MESSAGE);
    if (!idle)
        c->idle_records = 0;
    if (type == TLS13_APPLICATION_DATA)
        return 0;
    if (type == TLS13_HANDSHAKE)
        return post_handshake(c, q, n, why, whylen);
    if (type != TLS13_ALERT) {
        snprintf(why, whylen, "unexpected record content type %u", type);
        return TLS13_UNEXPECTED_MESSAGE;
    }
    if (n != 2)
        return fail_with(why, whylen, "an alert that is not 2 bytes", TLS13_DECODE_ERROR);
    if (q[1] == 0 || q[1] == 90) {
        c->peer_closed = q[1] == 0; /* close_notify; user_canceled is followed by one */
        return 0;
    }
    snprintf(why, whylen, "alert %u from the peer", (unsigned)q[1]);
    return -1;
}

/* Opens the complete records of p[0..have): their application data is moved to p[0..*out),
 * *used the bytes consumed. 0, or TLS_FAILED with why (and the alert RFC 8446 asks for sent). */
static int open_records(struct tls_conn *c, uint8_t *p, size_t have, size_t *out, size_t *used,
                        char *why, size_t whylen)
{
    size_t off = 0;
    *out = 0;
    while (have - off >= TLS13_HEADER && !c->peer_closed) {
        uint8_t *h = p + off;
        size_t body = (size_t)h[3] << 8 | h[4];
        int alert = 0;
        if (h[0] != TLS13_APPLICATION_DATA) /* change_cipher_spec too (RFC 8446 5) */
            alert = fail_with(why, whylen, "unexpected record type", TLS13_UNEXPECTED_MESSAGE);
        else if (body > TLS13_MAX_CIPHERTEXT) /* before waiting for it (5.2) */
            alert = fail_with(why, whylen, "record too large", TLS13_RECORD_OVERFLOW);
        else if (have - off < TLS13_HEADER + body)
            break;
        uint8_t type = 0, desc = 0;
        long n =
            alert != 0 ? -1 : tls13_open(c->tls->aead, &c->rd, c->suite, h, body, &type, &desc);
        if (alert == 0 && n < 0)
            alert = fail_with(why, whylen,
                              desc == TLS13_BAD_RECORD_MAC       ? "bad record MAC"
                              : desc == TLS13_RECORD_OVERFLOW    ? "record too large"
                              : desc == TLS13_UNEXPECTED_MESSAGE ? "a record without content type"
                                                                 : "record sequence exhausted",
                              desc);
        if (alert == 0)
            alert = on_record(c, type, h + TLS13_HEADER, (size_t)n, why, whylen);
        if (alert != 0) {
            if (alert > 0)
                send_alert(c, (uint8_t)alert);
            return TLS_FAILED;
        }
        off += TLS13_HEADER + body;
        if (type == TLS13_APPLICATION_DATA) {
            memmove(p + *out, h + TLS13_HEADER, (size_t)n);
            *out += (size_t)n;
        }
    }
    *used = off;
    return 0;
}

/* Keeps p[0..len) (the start of a record) until more arrives. */
static int keep_partial(struct tls_conn *c, const uint8_t *p, size_t len, char *why, size_t whylen)
{
    if (len == 0)
        return 0;
    c->rpend = malloc(len);
    if (c->rpend == NULL) {
        snprintf(why, whylen, "out of memory");
        return TLS_FAILED;
    }
    memcpy(c->rpend, p, len);
    c->rpend_len = (uint32_t)len;
    return 0;
}

static ssize_t rec_read(struct tls_conn *c, uint8_t *p, size_t cap, char *why, size_t whylen)
{
    if (cap < TLS_READ_MIN) {
        snprintf(why, whylen, "read buffer below TLS_READ_MIN");
        return TLS_FAILED;
    }
    size_t have = 0;
    if (c->rpend != NULL) {
        memcpy(p, c->rpend, c->rpend_len);
        have = c->rpend_len;
        free(c->rpend);
        c->rpend = NULL;
        c->rpend_len = 0;
    }
    for (;;) {
        if (c->peer_closed)
            return TLS_CLOSED;
        ssize_t n = recv(c->fd, p + have, cap - have, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return keep_partial(c, p, have, why, whylen) == 0 ? TLS_WANT_READ : TLS_FAILED;
        if (n < 0) {
            snprintf(why, whylen, "%s", strerror(errno));
            return TLS_FAILED;
        }
        if (n == 0) {
            if (have == 0)
                return TLS_CLOSED; /* without close_notify: an ordinary close, as for OpenSSL */
            snprintf(why, whylen, "peer closed in the middle of a record");
            return TLS_FAILED;
        }
        have += (size_t)n;
        size_t out = 0, used = 0;
        if (open_records(c, p, have, &out, &used, why, whylen) != 0)
            return TLS_FAILED;
        if (out > 0) {
            if (!c->peer_closed && keep_partial(c, p + used, have - used, why, whylen) != 0)
                return TLS_FAILED;
            return (ssize_t)out;
        }
        memmove(p, p + used, have - used); /* nothing for the caller yet: read on */
        have -= used;
    }
}

/* ---- the interface ---- */

ssize_t tls_conn_read(struct tls_conn *c, uint8_t *p, size_t cap, char *why, size_t whylen)
{
    return c->ssl != NULL ? ssl_read(c, p, cap, why, whylen) : rec_read(c, p, cap, why, whylen);
}

ssize_t tls_conn_writev(struct tls_conn *c, const struct iovec *iov, int n, uint8_t *stage,
                        size_t stage_cap, char *why, size_t whylen)
{
    if (c->ssl != NULL)
        return ssl_writev(c, iov, n, stage, stage_cap, why, whylen);
    return rec_writev(c, iov, n, stage, stage_cap, why, whylen);
}
