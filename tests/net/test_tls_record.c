/* test_tls_record.c: the TLS 1.3 record layer of a detached connection (tls_record.c,
 * tls_conn.c) against RFC 8446 5 and 4.6.3. The RFC 8448 section 3 trace is the known answer
 * (traffic keys and both application records). The rest runs a server tls_conn and an OpenSSL
 * client on a socketpair in this process: once the handshake is over the client's traffic
 * secrets (its key log) let the test seal crafted records itself (raw_seal: EVP directly, not
 * the code under test) and inject them, and the alert the server answers with is read back by
 * the OpenSSL client. Certificates are made with the openssl CLI in a temp dir. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "common/net/tls.h"
#include "common/net/tls_record.h"
#include "tests/unit/test.h"

static char dir[64];
static struct tls_context *server_tls;
static struct tls13_aead *aead;

/* ---- helpers ---- */

static size_t unhex(const char *h, uint8_t *out, size_t cap)
{
    size_t n = 0;
    for (; h[0] != '\0' && h[1] != '\0' && n < cap; h += 2) {
        if (h[0] == ' ') {
            h--;
            continue;
        }
        unsigned v = 0;
        sscanf(h, "%2x", &v);
        out[n++] = (uint8_t)v;
    }
    return n;
}

/* The client's side of a connection: its secrets from its key log. */
struct pair {
    SSL *cli;
    struct tls_conn *srv;
    int cfd, sfd;
    enum tls13_suite suite;
    uint8_t csecret[48], ssecret[48];
    size_t clen, slen;
    struct tls13_keys ck; /* the client's write keys (for injection) */
};

static struct pair *keylog_target;
static SSL_SESSION *resume_with; /* pair_open resumes it, with 0-RTT data if it allows */

static void client_keylog(const SSL *ssl, const char *line)
{
    (void)ssl;
    struct pair *p = keylog_target;
    bool c = strncmp(line, "CLIENT_TRAFFIC_SECRET_0 ", 24) == 0;
    if (p == NULL || (!c && strncmp(line, "SERVER_TRAFFIC_SECRET_0 ", 24) != 0))
        return;
    const char *hex = strchr(line + 24, ' ') + 1;
    size_t n = unhex(hex, c ? p->csecret : p->ssecret, 48);
    *(c ? &p->clen : &p->slen) = n;
}

static SSL_CTX *client_ctx(const char *suite)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_ciphersuites(ctx, suite);
    SSL_CTX_set_keylog_callback(ctx, client_keylog);
    return ctx;
}

static void nonblock(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Runs both handshakes to their end. With `coalesce`, the client's Finished and `early` (sealed
 * by the client's OpenSSL right after it) reach the server in one write: the server must not
 * lose the bytes after its Finished. */
static bool pair_open(struct pair *p, const char *suite, bool coalesce, const char *early)
{
    memset(p, 0, sizeof *p);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return false;
    p->cfd = sv[0];
    p->sfd = sv[1];
    nonblock(p->cfd);
    nonblock(p->sfd);
    SSL_CTX *ctx = client_ctx(suite);
    p->cli = SSL_new(ctx);
    SSL_CTX_free(ctx); /* the SSL holds a reference */
    SSL_set_fd(p->cli, p->cfd);
    SSL_set_connect_state(p->cli);
    if (resume_with != NULL)
        SSL_set_session(p->cli, resume_with);
    BIO *mem = NULL;
    if (coalesce) {
        mem = BIO_new(BIO_s_mem());
        SSL_set0_wbio(p->cli, mem);
    }
    p->srv = tls_conn_new(server_tls, p->sfd);
    keylog_target = p;
    int cdone = 0, sdone = 0;
    char why[200];
    size_t early_len = 0; /* ClientHello and 0-RTT data go out at once */
    if (resume_with != NULL && SSL_SESSION_get_max_early_data(resume_with) > 0 &&
        SSL_write_early_data(p->cli, "early", 5, &early_len) != 1)
        return false;
    for (int i = 0; i < 200 && (cdone != 1 || sdone != 1); i++) {
        if (cdone != 1)
            cdone = SSL_do_handshake(p->cli);
        if (mem != NULL) { /* ClientHello goes at once; the Finished waits for `early` */
            char *data = NULL;
            long n = BIO_get_mem_data(mem, &data);
            if (n > 0 && cdone != 1) {
                if (write(p->cfd, data, (size_t)n) != n)
                    return false;
                (void)BIO_reset(mem);
            } else if (cdone == 1) {
                if (early != NULL && SSL_write(p->cli, early, (int)strlen(early)) <= 0)
                    return false;
                n = BIO_get_mem_data(mem, &data);
                if (write(p->cfd, data, (size_t)n) != n)
                    return false;
                SSL_set0_wbio(p->cli, BIO_new_socket(p->cfd, BIO_NOCLOSE));
                mem = NULL;
            }
        }
        if (sdone != 1) {
            sdone = tls_conn_handshake(p->srv, why, sizeof why);
            if (sdone != 1 && sdone != TLS_WANT_READ && sdone != TLS_WANT_WRITE) {
                fprintf(stderr, "  server handshake: %d %s\n", sdone, why);
                return false;
            }
        }
    }
    keylog_target = NULL;
    if (cdone != 1 || sdone != 1 || p->clen == 0) {
        fprintf(stderr, "  handshake: client %d (%d), server %d\n", cdone,
                SSL_get_error(p->cli, cdone), sdone);
        ERR_print_errors_fp(stderr);
        return false;
    }
    p->suite = tls13_suite_of(SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(p->cli)));
    return tls13_keys_init(&p->ck, p->suite, p->csecret, p->clen) == 0;
}

static void pair_close(struct pair *p)
{
    tls_conn_free(p->srv, false);
    SSL_free(p->cli);
    close(p->cfd);
    close(p->sfd);
}

/* Seals inner[0..len) (TLSInnerPlaintext: content, type, zeros) as the client would, with EVP
 * directly; returns the record's length. */
static size_t raw_seal(const struct tls13_keys *k, enum tls13_suite s, const uint8_t *inner,
                       size_t len, uint8_t *out)
{
    const EVP_CIPHER *c = s == TLS13_AES_128_GCM   ? EVP_aes_128_gcm()
                          : s == TLS13_AES_256_GCM ? EVP_aes_256_gcm()
                                                   : EVP_chacha20_poly1305();
    uint8_t nonce[12];
    memcpy(nonce, k->iv, 12);
    for (int i = 0; i < 8; i++)
        nonce[11 - i] ^= (uint8_t)(k->seq >> (8 * i));
    size_t body = len + 16;
    out[0] = 23;
    out[1] = out[2] = 3;
    out[3] = (uint8_t)(body >> 8);
    out[4] = (uint8_t)body;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0;
    EVP_EncryptInit_ex(ctx, c, NULL, k->key, nonce);
    EVP_EncryptUpdate(ctx, NULL, &n, out, 5);
    EVP_EncryptUpdate(ctx, out + 5, &n, inner, (int)len);
    EVP_EncryptFinal_ex(ctx, out + 5 + n, &n);
    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, out + 5 + len);
    EVP_CIPHER_CTX_free(ctx);
    return 5 + body;
}

/* Appends a client record of `type` with content c[0..len) and `pad` zeros to buf (at *at). */
static void add_record(struct pair *p, uint8_t *buf, size_t *at, uint8_t type, const void *c,
                       size_t len, size_t pad)
{
    static uint8_t inner[TLS13_MAX_PLAIN + 256];
    memcpy(inner, c, len);
    inner[len] = type;
    memset(inner + len + 1, 0, pad);
    *at += raw_seal(&p->ck, p->suite, inner, len + 1 + pad, buf + *at);
    p->ck.seq++;
}

static bool send_raw(struct pair *p, const uint8_t *b, size_t len)
{
    return write(p->cfd, b, len) == (ssize_t)len;
}

/* One record injected. */
static bool inject(struct pair *p, uint8_t type, const void *c, size_t len)
{
    static uint8_t rec[TLS13_MAX_PLAIN + 256 + 64];
    size_t at = 0;
    add_record(p, rec, &at, type, c, len, 0);
    return send_raw(p, rec, at);
}

/* What the server reads now: bytes into out, or a TLS_* result. */
static ssize_t srv_read(struct pair *p, uint8_t *out, size_t cap)
{
    static uint8_t buf[TLS_READ_MIN];
    char why[200];
    ssize_t n = tls_conn_read(p->srv, buf, sizeof buf, why, sizeof why);
    if (n > 0)
        memcpy(out, buf, (size_t)n < cap ? (size_t)n : cap);
    if (n == TLS_FAILED && getenv("TEST_TLS_VERBOSE") != NULL)
        fprintf(stderr, "server: %s\n", why);
    return n;
}

/* The alert the server sent, as the OpenSSL client reads it: its description, or -1. */
static int client_alert(struct pair *p)
{
    char c[64];
    ERR_clear_error();
    for (int i = 0; i < 4; i++) {
        int n = SSL_read(p->cli, c, sizeof c);
        if (n > 0)
            continue;
        unsigned long e = ERR_peek_last_error();
        int r = ERR_GET_REASON(e);
        ERR_clear_error();
        return r > SSL_AD_REASON_OFFSET ? r - SSL_AD_REASON_OFFSET : -1;
    }
    return -1;
}

static const char *SUITES[3] = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                                "TLS_CHACHA20_POLY1305_SHA256"};

/* ---- known answers ---- */

/* RFC 8448 3 (simple 1-RTT, TLS_AES_128_GCM_SHA256): the application traffic secrets give the
 * published keys and ivs, and the 50-byte records of both sides come out byte for byte (the
 * server's at seq 1: its NewSessionTicket took 0) and open again. */
static void test_rfc8448_known_answer(void)
{
    static const struct {
        const char *secret, *key, *iv, *record;
        uint64_t seq;
    } v[2] = {
        {"a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643",
         "9f02283b6c9c07efc26bb9f2ac92e356", "cf782b88dd83549aadf1e984",
         "17030300432e937e11ef4ac740e538ad36005fc4a46932fc3225d05f82aa1b36e30efaf97d90e6dffc602d"
         "cb501a59a8fcc49c4bf2e5f0a21c0047c2abf332540dd032e167c2955d",
         1},
        {"9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5",
         "17422dda596ed5d9acd890e3c63f5051", "5b78923dee08579033e523d9",
         "1703030043a23f7054b62c94d0affafe8228ba55cbefacea42f914aa66bcab3f2b9819a8a5b46b395bd5"
         "4a9a20441e2b62974e1f5a6292a2977014bd1e3deae63aeebb21694915e4",
         0},
    };
    uint8_t plain[50];
    for (int i = 0; i < 50; i++)
        plain[i] = (uint8_t)i;
    for (int i = 0; i < 2; i++) {
        uint8_t secret[32], key[16], iv[12], want[80], got[80];
        unhex(v[i].secret, secret, sizeof secret);
        unhex(v[i].key, key, sizeof key);
        unhex(v[i].iv, iv, sizeof iv);
        size_t wlen = unhex(v[i].record, want, sizeof want);
        struct tls13_keys k;
        CHECK(tls13_keys_init(&k, TLS13_AES_128_GCM, secret, 32) == 0);
        CHECK_MEM(k.key, 16, key, 16);
        CHECK_MEM(k.iv, 12, iv, 12);
        k.seq = v[i].seq;
        struct iovec iov[2] = {{plain, 20}, {plain + 20, 30}};
        long n = tls13_seal(aead, &k, TLS13_AES_128_GCM, TLS13_APPLICATION_DATA, iov, 2, 50, got);
        CHECK(n == (long)wlen);
        CHECK_MEM(got, n > 0 ? (size_t)n : 0, want, wlen);
        uint8_t type = 0, alert = 0;
        CHECK(tls13_open(aead, &k, TLS13_AES_128_GCM, want, wlen - 5, &type, &alert) == 50);
        CHECK(type == TLS13_APPLICATION_DATA && k.seq == v[i].seq + 1);
        CHECK_MEM(want + 5, 50, plain, 50);
    }
}

/* RFC 8446 5.3: the sequence number does not wrap; the last one is refused both ways. */
static void test_sequence_never_wraps(void)
{
    struct tls13_keys k;
    uint8_t secret[32] = {1}, rec[64], type = 0, alert = 0;
    CHECK(tls13_keys_init(&k, TLS13_CHACHA20_POLY1305, secret, 32) == 0);
    struct iovec iov = {(void *)"hi", 2};
    k.seq = UINT64_MAX - 1;
    long n = tls13_seal(aead, &k, TLS13_CHACHA20_POLY1305, 23, &iov, 1, 2, rec);
    CHECK(n == 2 + TLS13_OVERHEAD);
    CHECK(tls13_open(aead, &k, TLS13_CHACHA20_POLY1305, rec, (size_t)n - 5, &type, &alert) == 2);
    CHECK(k.seq == UINT64_MAX);
    CHECK(tls13_seal(aead, &k, TLS13_CHACHA20_POLY1305, 23, &iov, 1, 2, rec) == -1);
    CHECK(tls13_open(aead, &k, TLS13_CHACHA20_POLY1305, rec, (size_t)n - 5, &type, &alert) == -1);
    CHECK(alert == TLS13_INTERNAL_ERROR && k.seq == UINT64_MAX);
}

/* ---- records a client may send ---- */

/* The client's Finished and its first records in one segment (what a browser does): the server
 * detaches with nothing lost (OpenSSL reads no further than the Finished: no read-ahead). */
static void test_finished_and_data_in_one_segment(void)
{
    for (int i = 0; i < 3; i++) {
        struct pair p;
        CHECK(pair_open(&p, SUITES[i], true, "hello after finished"));
        CHECK(tls_conn_detached(p.srv));
        uint8_t got[64];
        ssize_t n = srv_read(&p, got, sizeof got);
        CHECK(n == 20);
        CHECK_MEM(got, n > 0 ? (size_t)n : 0, "hello after finished", 20);
        pair_close(&p);
    }
}

/* Padding (5.4), many records in one segment, and a KeyUpdate from OpenSSL's own client
 * followed by data under the next keys: all taken, in order. */
static void test_padding_and_coalesced_records(void)
{
    for (int i = 0; i < 3; i++) {
        struct pair p;
        CHECK(pair_open(&p, SUITES[i], false, NULL));
        static uint8_t buf[4096];
        size_t at = 0;
        add_record(&p, buf, &at, 23, "ab", 2, 300);
        add_record(&p, buf, &at, 23, "", 0, 0);
        add_record(&p, buf, &at, 23, "cd", 2, 0);
        CHECK(send_raw(&p, buf, at));
        uint8_t got[64];
        ssize_t n = srv_read(&p, got, sizeof got);
        CHECK(n == 4);
        CHECK_MEM(got, n > 0 ? (size_t)n : 0, "abcd", 4);
        pair_close(&p);
    }
}

/* A KeyUpdate cut across two records (5.1 allows it) is followed; a record of another type in
 * between is unexpected_message. */
static void test_key_update_split_across_records(void)
{
    for (int i = 0; i < 3; i++) {
        struct pair p;
        CHECK(pair_open(&p, SUITES[i], false, NULL));
        static const uint8_t ku[5] = {24, 0, 0, 1, 0};
        CHECK(inject(&p, 22, ku, 3));
        CHECK(inject(&p, 22, ku + 3, 2));
        CHECK(tls13_keys_update(&p.ck, p.suite) == 0);
        CHECK(inject(&p, 23, "next keys", 9));
        uint8_t got[64];
        ssize_t n = srv_read(&p, got, sizeof got);
        CHECK(n == 9);
        CHECK_MEM(got, n > 0 ? (size_t)n : 0, "next keys", 9);
        CHECK(inject(&p, 22, ku, 2));
        CHECK(inject(&p, 23, "x", 1));
        CHECK(srv_read(&p, got, sizeof got) == TLS_FAILED);
        CHECK(client_alert(&p) == SSL_AD_UNEXPECTED_MESSAGE);
        pair_close(&p);
    }
}

/* Two KeyUpdates in one record: the first changes the keys, so the second crossed a key change
 * (RFC 8446 5.1): unexpected_message, not two updates. */
static void test_key_updates_coalesced_refused(void)
{
    struct pair p;
    CHECK(pair_open(&p, SUITES[0], false, NULL));
    static const uint8_t two[10] = {24, 0, 0, 1, 0, 24, 0, 0, 1, 0};
    CHECK(inject(&p, 22, two, sizeof two));
    uint8_t got[16];
    CHECK(srv_read(&p, got, sizeof got) == TLS_FAILED);
    CHECK(client_alert(&p) == SSL_AD_UNEXPECTED_MESSAGE);
    pair_close(&p);
}

/* KeyUpdates asking for ours, several before the server writes: one KeyUpdate in answer, before
 * the data (4.6.3), and the OpenSSL client follows it. */
static int updates_seen;

static void count_updates(int write_p, int version, int type, const void *buf, size_t len, SSL *ssl,
                          void *arg)
{
    (void)version;
    (void)ssl;
    (void)arg;
    if (!write_p && type == SSL3_RT_HANDSHAKE && len >= 1 && ((const uint8_t *)buf)[0] == 24)
        updates_seen++;
}

static void test_key_update_requests_answered_once(void)
{
    struct pair p;
    CHECK(pair_open(&p, SUITES[2], false, NULL));
    static const uint8_t ku[5] = {24, 0, 0, 1, 1};
    for (int i = 0; i < 5; i++) {
        CHECK(inject(&p, 22, ku, 5));
        CHECK(tls13_keys_update(&p.ck, p.suite) == 0);
    }
    CHECK(inject(&p, 23, "q", 1));
    uint8_t got[16], stage[4096];
    CHECK(srv_read(&p, got, sizeof got) == 1 && got[0] == 'q');
    char why[200];
    struct iovec iov = {(void *)"answer", 6};
    CHECK(tls_conn_writev(p.srv, &iov, 1, stage, sizeof stage, why, sizeof why) == 6);
    SSL_set_msg_callback(p.cli, count_updates);
    updates_seen = 0;
    char c[16] = "";
    int n = 0;
    for (int i = 0; i < 4 && n <= 0; i++)
        n = SSL_read(p.cli, c, sizeof c);
    CHECK(n == 6 && memcmp(c, "answer", 6) == 0);
    CHECK(updates_seen == 1);
    pair_close(&p);
}

/* ---- records a client must not send (RFC 8446 5, 6) ---- */

/* The record and the alert it earns. */
static void expect_alert(int suite, const uint8_t *rec, size_t len, int alert, const char *what)
{
    struct pair p;
    CHECK(pair_open(&p, SUITES[suite], false, NULL));
    CHECK(send_raw(&p, rec, len));
    uint8_t got[16];
    ssize_t n = srv_read(&p, got, sizeof got);
    int a = client_alert(&p);
    if (n != TLS_FAILED || a != alert)
        fprintf(stderr, "  %s: read %zd, alert %d (want %d)\n", what, n, a, alert);
    CHECK(n == TLS_FAILED);
    CHECK(a == alert);
    pair_close(&p);
}

/* Builds one client record of pair-independent shape: the keys come from a fresh pair, so the
 * cases below open their own (crafted records need that pair's keys). */
static void test_refused_records_and_their_alerts(void)
{
    static uint8_t rec[TLS13_MAX_PLAIN + 512];
    /* change_cipher_spec after the handshake (5: "MUST abort with unexpected_message") */
    static const uint8_t ccs[6] = {20, 3, 3, 0, 1, 1};
    expect_alert(0, ccs, sizeof ccs, SSL_AD_UNEXPECTED_MESSAGE, "change_cipher_spec");
    /* a plaintext handshake record */
    static const uint8_t hs[9] = {22, 3, 3, 0, 4, 24, 0, 0, 0};
    expect_alert(0, hs, sizeof hs, SSL_AD_UNEXPECTED_MESSAGE, "plaintext handshake");
    /* a length above 2^14 + 256: record_overflow, before its body arrives (5.2) */
    static const uint8_t big[5] = {23, 3, 3, 0x41, 0x01};
    expect_alert(1, big, sizeof big, SSL_AD_RECORD_OVERFLOW, "ciphertext 2^14+257");

    struct {
        uint8_t type;
        size_t len, pad, count;
        const uint8_t *content;
        int alert;
        const char *what;
    } cases[] = {
        /* all zeros: no content type (5.4) */
        {0, 0, 40, 1, NULL, SSL_AD_UNEXPECTED_MESSAGE, "all-zero inner plaintext"},
        /* content of 2^14 + 1 bytes (5.2/5.4) */
        {23, TLS13_MAX_PLAIN + 1, 0, 1, NULL, SSL_AD_RECORD_OVERFLOW, "content 2^14+1"},
        /* a zero-length handshake fragment (5.1) */
        {22, 0, 0, 1, NULL, SSL_AD_UNEXPECTED_MESSAGE, "empty handshake record"},
        /* a NewSessionTicket, a Finished from the client */
        {22, 5, 0, 1, (const uint8_t *)"\x04\x00\x00\x01\x00", SSL_AD_UNEXPECTED_MESSAGE,
         "client NewSessionTicket"},
        {22, 5, 0, 1, (const uint8_t *)"\x14\x00\x00\x01\x00", SSL_AD_UNEXPECTED_MESSAGE,
         "post-handshake Finished"},
        /* KeyUpdate with request_update 2 (4.6.3: illegal_parameter), of length 2 */
        {22, 5, 0, 1, (const uint8_t *)"\x18\x00\x00\x01\x02", SSL_AD_ILLEGAL_PARAMETER,
         "request_update 2"},
        {22, 6, 0, 1, (const uint8_t *)"\x18\x00\x00\x02\x00\x00", SSL_AD_DECODE_ERROR,
         "KeyUpdate of length 2"},
        /* an alert of 3 bytes */
        {21, 3, 0, 1, (const uint8_t *)"\x01\x00\x00", SSL_AD_DECODE_ERROR, "3-byte alert"},
        /* a protected change_cipher_spec (5) */
        {20, 1, 0, 1, (const uint8_t *)"\x01", SSL_AD_UNEXPECTED_MESSAGE, "protected ccs"},
        /* 40 empty application records in a row: no byte for the reader, ever (OpenSSL's
         * bound is 32) */
        {23, 0, 0, 40, NULL, SSL_AD_UNEXPECTED_MESSAGE, "40 empty records"},
        /* 40 user_canceled warnings */
        {21, 2, 0, 40, (const uint8_t *)"\x01\x5a", SSL_AD_UNEXPECTED_MESSAGE, "40 user_canceled"},
    };
    static uint8_t zeros[TLS13_MAX_PLAIN + 1];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct pair p;
        CHECK(pair_open(&p, SUITES[i % 3], false, NULL));
        size_t at = 0;
        for (size_t j = 0; j < cases[i].count; j++) {
            const void *c = cases[i].content != NULL ? cases[i].content : zeros;
            if (cases[i].type == 0) { /* inner plaintext of zeros only */
                static uint8_t inner[64];
                at += raw_seal(&p.ck, p.suite, inner, cases[i].pad, rec + at);
                p.ck.seq++;
            } else {
                add_record(&p, rec, &at, cases[i].type, c, cases[i].len, cases[i].pad);
            }
        }
        CHECK(send_raw(&p, rec, at));
        uint8_t got[16];
        ssize_t n = srv_read(&p, got, sizeof got);
        int a = client_alert(&p);
        if (n != TLS_FAILED || a != cases[i].alert)
            fprintf(stderr, "  %s: read %zd, alert %d (want %d)\n", cases[i].what, n, a,
                    cases[i].alert);
        CHECK(n == TLS_FAILED);
        CHECK(a == cases[i].alert);
        pair_close(&p);
    }
    /* the control: 20 empty records, then one byte, is fine */
    struct pair p;
    CHECK(pair_open(&p, SUITES[0], false, NULL));
    size_t at = 0;
    for (int j = 0; j < 20; j++)
        add_record(&p, rec, &at, 23, "", 0, 0);
    add_record(&p, rec, &at, 23, "z", 1, 0);
    CHECK(send_raw(&p, rec, at));
    uint8_t got[16];
    CHECK(srv_read(&p, got, sizeof got) == 1 && got[0] == 'z');
    pair_close(&p);
}

/* After a fatal alert nothing more goes out (RFC 8446 6.2): neither application data nor a
 * close_notify, which would be sealed under the alert's sequence number (a nonce used twice).
 * The raw bytes the server sent: its ticket, the alert, nothing else. */
static void test_nothing_after_a_fatal_alert(void)
{
    struct pair p;
    CHECK(pair_open(&p, SUITES[0], false, NULL));
    static const uint8_t forged[37] = {23, 3, 3, 0, 32, 1, 2, 3};
    CHECK(send_raw(&p, forged, sizeof forged));
    uint8_t got[16], stage[256];
    CHECK(srv_read(&p, got, sizeof got) == TLS_FAILED);
    char why[200];
    struct iovec iov = {(void *)"late", 4};
    CHECK(tls_conn_writev(p.srv, &iov, 1, stage, sizeof stage, why, sizeof why) == TLS_FAILED);
    tls_conn_free(p.srv, true);
    p.srv = NULL;
    static uint8_t raw[8192];
    ssize_t n = read(p.cfd, raw, sizeof raw);
    int records = 0;
    size_t last = 0;
    for (size_t at = 0; n > 0 && at + 5 <= (size_t)n; records++) {
        last = 5 + ((size_t)raw[at + 3] << 8 | raw[at + 4]);
        at += last;
    }
    CHECK(records == 2);
    CHECK(last == 2 + TLS13_OVERHEAD); /* the alert */
    pair_close(&p);
}

/* 0-RTT is off (RFC 8446 2.3, 8: replayable): the ticket promises no early data (so a client
 * sends none; OpenSSL's server accepts none without max_early_data), and the resumed
 * connection detaches with its sequence numbers right. */
static void test_no_early_data_and_resumption(void)
{
    struct pair p;
    CHECK(pair_open(&p, SUITES[1], false, NULL));
    char c[8];
    CHECK(SSL_read(p.cli, c, sizeof c) <= 0); /* takes the ticket */
    SSL_SESSION *sess = SSL_get1_session(p.cli);
    CHECK(sess != NULL && SSL_SESSION_is_resumable(sess) == 1);
    CHECK(sess != NULL && SSL_SESSION_get_max_early_data(sess) == 0);
    SSL_shutdown(p.cli); /* else OpenSSL marks the session not resumable */
    pair_close(&p);
    if (sess == NULL)
        return;
    resume_with = sess;
    bool ok = pair_open(&p, SUITES[1], false, NULL);
    resume_with = NULL;
    CHECK(ok);
    if (ok) {
        CHECK(SSL_session_reused(p.cli) == 1);
        CHECK(tls_conn_detached(p.srv));
        CHECK(tls_conn_resumed(p.srv));
        CHECK(SSL_write(p.cli, "late", 4) == 4);
        uint8_t got[16];
        ssize_t n = srv_read(&p, got, sizeof got);
        CHECK(n == 4);
        CHECK_MEM(got, n > 0 ? (size_t)n : 0, "late", 4);
        SSL_shutdown(p.cli);
    }
    pair_close(&p);
    /* a client that sends 0-RTT data anyway: rejected, skipped, not counted, not delivered */
    SSL_SESSION *insist = SSL_SESSION_dup(sess);
    CHECK(insist != NULL && SSL_SESSION_set_max_early_data(insist, 16384) == 1);
    resume_with = insist;
    ok = insist != NULL && pair_open(&p, SUITES[1], false, NULL);
    resume_with = NULL;
    CHECK(ok);
    if (ok) {
        CHECK(SSL_get_early_data_status(p.cli) == SSL_EARLY_DATA_REJECTED);
        CHECK(tls_conn_detached(p.srv));
        CHECK(SSL_write(p.cli, "1-rtt", 5) == 5);
        uint8_t got[16];
        ssize_t n = srv_read(&p, got, sizeof got);
        CHECK(n == 5);
        CHECK_MEM(got, n > 0 ? (size_t)n : 0, "1-rtt", 5);
    }
    pair_close(&p);
    SSL_SESSION_free(insist);
    SSL_SESSION_free(sess);
}

/* ---- set-up ---- */

static bool make_cert(void)
{
    snprintf(dir, sizeof dir, "/tmp/sioc-tlsrec-test-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return false;
    char cmd[600];
    snprintf(cmd, sizeof cmd,
             "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
             "-keyout k.pem -out c.pem -days 2 -subj '/CN=sioc-test' >/dev/null 2>&1",
             dir);
    return system(cmd) == 0;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    aead = tls13_aead_new();
    RUN(test_rfc8448_known_answer);
    RUN(test_sequence_never_wraps);
    if (!make_cert()) {
        fprintf(stderr, "openssl could not make the test certificate\n");
        printf("test_tls_record: 0 passed, 1 failed\n");
        return 1;
    }
    char cert[128], key[128], err[512];
    snprintf(cert, sizeof cert, "%s/c.pem", dir);
    snprintf(key, sizeof key, "%s/k.pem", dir);
    struct tls_options o = {cert, key, NULL, NULL};
    server_tls = tls_context_new(&o, err, sizeof err);
    if (server_tls == NULL) {
        fprintf(stderr, "tls_context_new: %s\n", err);
        return 1;
    }
    RUN(test_finished_and_data_in_one_segment);
    RUN(test_padding_and_coalesced_records);
    RUN(test_key_update_split_across_records);
    RUN(test_key_updates_coalesced_refused);
    RUN(test_key_update_requests_answered_once);
    RUN(test_refused_records_and_their_alerts);
    RUN(test_nothing_after_a_fatal_alert);
    RUN(test_no_early_data_and_resumption);
    tls_context_free(server_tls);
    tls13_aead_free(aead);
    char rm[128];
    snprintf(rm, sizeof rm, "rm -rf %s", dir);
    if (system(rm) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return test_summary("test_tls_record");
}
