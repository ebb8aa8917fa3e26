/* http_server_internal.h: what the files of the HTTP connection layer share (http_server.c:
 * connections, requests, output; http_listener.c: the listening socket, accepts, the
 * connection limit and its reserve; TLS through common/net/tls.h). Not a public header: only
 * those files include it. */
#ifndef SIOC_NET_HTTP_SERVER_INTERNAL_H
#define SIOC_NET_HTTP_SERVER_INTERNAL_H

#include <event2/event_struct.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/deadline.h"
#include "common/http.h"
#include "common/list.h"
#include "common/net/deadline_timer.h"
#include "common/net/http_server.h"

struct evconnlistener;
struct tls_conn;

#define DEFAULT_MAX_BODY (1u << 20)
#define DEFAULT_HEAD_TIMEOUT_MS 10000
#define DEFAULT_IDLE_TIMEOUT_MS 60000
#define READ_CHUNK (64u * 1024)   /* the shared read buffer */
#define READS_PER_EVENT 4         /* fairness: at most this many reads per wake-up */
#define PIPELINE_MAX (64u * 1024) /* unread input kept while a response is pending */
#define DEFAULT_OUTPUT_SOFT (256u * 1024)
#define DEFAULT_OUTPUT_HARD (16u << 20)
#define ACCEPT_BACKOFF_MIN_MS 100u /* after an accept error (EMFILE...), then doubling */
#define ACCEPT_BACKOFF_MAX_MS 1000u
#define ACCEPT_QUIET_MS 2000u   /* accepts without a failure that end an episode */
#define WRITE_IOV_MAX 256       /* segments per sendmsg */
#define INLINE_SEGS 1           /* output segments kept in the connection itself */
#define SMALL_BYTES 24          /* owned writes this short live inside their segment */
#define OWNED_BLOCK_MIN 256     /* owned copies start at this capacity, later ones append */
#define SPARE_REQUESTS 8        /* finished request states kept for reuse by the server */
#define SPARE_STORAGE_MAX 16384 /* ... with their storage, when it is no larger than this */
#define DEFAULT_HANDSHAKE_TIMEOUT_MS 10000
#define TLS_STAGE 16384 /* plaintext of one TLS record (RFC 8446 5.1): output is gathered to it */

enum conn_state {
    CONN_READING_HEAD,
    CONN_READING_BODY,
    CONN_WAITING_RESPONSE, /* the owner has the request */
    CONN_RESPONDING,       /* between respond_begin and respond_end */
    CONN_RAW,              /* upgraded: bytes go to the owner */
    CONN_CLOSING,          /* flushing output, then freed */
    CONN_DEAD,             /* freed from the loop by the work event */
};

/* Deferred work on a connection, done by the server's work event (never under a caller). */
enum {
    WORK_INPUT = 1, /* process buffered input (after a response, after an upgrade) */
    WORK_FLUSH = 2, /* write queued output */
    WORK_FREE = 4,  /* destroy */
    WORK_LOST = 8,  /* the output hard limit was passed: close, telling the owner */
    WORK_TELL = 16, /* closing with a flush: the owner's on_close (the flush goes on alone) */
};

/* Why a connection ended: the first cause wins; its text is the reason the owner's on_close
 * gets (http_server.h "How a connection ends"). */
enum conn_end {
    END_NONE,              /* still open */
    END_LOCAL,             /* http_conn_close: "local close" */
    END_TRANSPORT_CLOSE,   /* the peer closed */
    END_TRANSPORT_ERROR,   /* a socket (or TLS) error */
    END_NO_MEMORY,         /* an allocation for the connection failed */
    END_OUTPUT_LIMIT,      /* the output hard limit was passed */
    END_TLS_HANDSHAKE,     /* the TLS handshake failed */
    END_TLS_RENEGOTIATION, /* the peer tried to renegotiate */
    END_SHUTDOWN,          /* http_server_close_all / http_server_free */
    END_EVICTED,           /* the reserve was full: the oldest reserve connection makes room */
};

/* Parse state of the request in progress; freed between requests. */
struct conn_request {
    struct http_parser parser;
    struct http_request head;
    struct http_framing framing;
    struct http_body body;
    struct buf storage; /* head bytes, then the de-chunked body */
    size_t head_len;
    struct http_server_request pub;
};

/* One piece of queued output. */
enum seg_kind { SEG_REF, SEG_OWNED, SEG_SMALL };
struct out_seg {
    uint32_t len;
    uint8_t kind;
    union {
        struct {
            const uint8_t *p;
            void (*release)(const void *p, size_t len, void *arg);
            void *arg; /* SEG_OWNED: the block's capacity */
        } ref;
        uint8_t small[SMALL_BYTES];
    } u;
};

struct http_conn {
    struct http_server *srv;
    struct list_node link;        /* in the server's `conns` */
    struct http_conn *work_next;  /* on the work list while work != 0 */
    struct deadline_node timeout; /* in head_wait, idle_wait or handshake_wait, or none */
    struct event ev; /* the socket: EV_READ unless paused, EV_WRITE while output blocks */
    short interest;  /* the flags `ev` is added with (0 = not added) */
    uint8_t state;   /* enum conn_state */
    uint8_t work;
    uint8_t end; /* enum conn_end: END_NONE until the connection is closing or dead */
    bool close_after_response;
    bool has_owner;
    bool paused;
    bool input_stalled;   /* input waits because output is above the soft limit */
    bool over_limit_conn; /* accepted into the reserve above max_connections */
    bool over_limit;      /* output hard limit passed: writes are dropped, WORK_LOST is queued */
    bool lingering;       /* CONN_CLOSING, all written and the write side shut: input is read and
                           * dropped until the peer closes (or head_timeout_ms), so that what the peer
                           * still sends cannot make the kernel reset the connection before the peer
                           * has read our last answer (a 413 to an upload in progress) */
    /* TLS (http_server_config.tls) */
    bool tls_sniff;       /* the first byte has not arrived: TLS or plain is not known yet */
    bool tls_handshaking; /* conn->tls is set, its handshake is not complete */
    bool tls_wants_write; /* the handshake or a read waits for the socket to be writable */
    bool plain_on_tls;    /* plain HTTP on the TLS port: plain_paths only */
    struct tls_conn *tls; /* NULL on plain connections */
    struct http_conn_owner owner;
    struct conn_request *req;
    uint8_t *in; /* unconsumed input; NULL when there is none */
    uint32_t in_len, in_cap;
    struct out_seg *out; /* seg_inline, or a heap array while more are queued */
    uint32_t out_head, out_count, out_cap;
    size_t out_off;   /* bytes of out[out_head] already written */
    size_t out_bytes; /* queued and not yet written */
    struct out_seg seg_inline[INLINE_SEGS];
};

struct http_server {
    struct event_base *base;
    struct evconnlistener *listener;
    struct http_server_config cfg;
    uint16_t port;
    struct list_node conns; /* every connection (struct http_conn.link) */
    size_t conn_count;
    bool reads_paused;                  /* http_server_pause_reading */
    struct http_conn *work, *work_tail; /* connections with deferred work, in order */
    struct event *work_event;
    struct deadline_list head_wait;      /* a request head started: head_timeout_ms to finish */
    struct deadline_list idle_wait;      /* keep-alive without a request: idle_timeout_ms */
    struct deadline_list handshake_wait; /* TLS: accepted, handshake_timeout_ms to complete it */
    uint8_t *tls_stage; /* TLS_STAGE bytes through which TLS records are gathered (TLS only) */
    struct deadline_timer timer; /* for the earliest deadline of the three lists */
    uint8_t *scratch;            /* READ_CHUNK bytes every read lands in first */
    /* accept episodes (http_server_config.on_listener) */
    bool at_limit;              /* connections reached max_connections */
    struct http_conn **reserve; /* the reserve connections, oldest first */
    size_t reserve_count;
    bool accept_failing;          /* accepts fail (EMFILE...): the listener is paused */
    unsigned accept_failures;     /* in this episode */
    unsigned backoff_ms;          /* the next pause */
    uint64_t accept_failed_at;    /* when the episode started (ms, deadline clock) */
    uint64_t accept_last_failure; /* ms of the latest accept failure */
    struct event *accept_retry;   /* re-enables the listener */
    char peer[64]; /* http_conn_peer's answer (connections do not keep their address) */
    /* Where the listener hands an accepted socket and how it closes a connection it evicts
     * from the reserve: http_server.c's functions, given to http_listener_open (the listener
     * is the lower layer and never calls http_server.c). */
    void (*accepted)(struct http_server *srv, int fd, bool over, bool plain);
    void (*close)(struct http_conn *conn, bool flush, enum conn_end why);
    /* Request parse states (3 KB each) are reused, not allocated per request. */
    struct conn_request *spare[SPARE_REQUESTS];
    unsigned spare_count;
};

/* ---- http_listener.c ---- */

/* Binds and listens on `listen`; fills srv->listener and srv->port, and keeps `accepted` (makes
 * a connection of an accepted socket, which it owns from then on; `over` puts it in the reserve
 * above max_connections) and `close` (closes a connection with a cause: the listener evicts
 * the oldest of a full reserve). Returns false
 * (and fills err) on failure. */
bool http_listener_open(struct http_server *srv, const char *listen,
                        void (*accepted)(struct http_server *srv, int fd, bool over, bool plain),
                        void (*close)(struct http_conn *conn, bool flush, enum conn_end why),
                        char *err, size_t errlen);
/* Takes a connection out of the reserve (it is closing, or gone). */
void http_listener_reserve_remove(struct http_server *srv, struct http_conn *conn);
/* The retry timer's callback (srv->accept_retry): re-enables the listener after a back-off. */
void http_listener_retry_cb(evutil_socket_t fd, short what, void *arg);
/* "ip:port" or "[ip6]:port" of addr into out (http_conn_peer). */
struct sockaddr;
void http_listener_format_peer(const struct sockaddr *addr, char *out, size_t cap);
/* A connection was freed: ends a "connection limit" episode when below the limit again. */
void http_listener_conn_gone(struct http_server *srv);

#endif
