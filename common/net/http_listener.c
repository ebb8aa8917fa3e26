/* http_listener.c: the listening socket of an http_server (http_server.h): binding, accepting,
 * the connection limit with its reserve for health checks, and accept-error episodes (out of
 * descriptors: pause, back off, say so once), the bound port and peer addresses. What an
 * accepted socket becomes is http_server.c's business: the listener hands it up through the
 * function http_listener_open was given, and calls nothing of http_server.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "common/net/http_server_internal.h"

void http_listener_reserve_remove(struct http_server *srv, struct http_conn *conn)
{
    for (size_t i = 0; i < srv->reserve_count; i++) {
        if (srv->reserve[i] == conn) {
            memmove(srv->reserve + i, srv->reserve + i + 1,
                    (srv->reserve_count - i - 1) * sizeof *srv->reserve);
            srv->reserve_count--;
            break;
        }
    }
    conn->over_limit_conn = false;
}

static void listener_event(struct http_server *srv, bool trouble, const char *what)
{
    if (srv->cfg.on_listener != NULL)
        srv->cfg.on_listener(srv->cfg.ctx, trouble, what);
}

void http_listener_conn_gone(struct http_server *srv)
{
    if (srv->at_limit && srv->conn_count - srv->reserve_count < srv->cfg.max_connections) {
        srv->at_limit = false;
        listener_event(srv, false, "below the connection limit again");
    }
}

/* A connection was accepted: an accept-error episode, if any, is over once accepts have gone
 * ACCEPT_QUIET_MS without failing (at the descriptor limit one accept often succeeds between
 * two failures: that is still the same episode, logged once). */
static void accept_recovered(struct http_server *srv)
{
    if (!srv->accept_failing)
        return;
    /* accepts make progress: the next failure backs off from the shortest pause again (at the
     * limit each round frees descriptors for a few accepts; rounds a second apart would leave a
     * health check queued behind idle connections for tens of seconds) */
    srv->backoff_ms = 0;
    if (deadline_clock_ms() - srv->accept_last_failure < ACCEPT_QUIET_MS)
        return;
    char what[128];
    snprintf(what, sizeof what, "accepting again after %u failures in %llu ms",
             srv->accept_failures,
             (unsigned long long)(deadline_clock_ms() - srv->accept_failed_at));
    srv->accept_failing = false;
    srv->accept_failures = 0;
    listener_event(srv, false, what);
}

static void accept_cb(struct evconnlistener *listener, evutil_socket_t fd, struct sockaddr *addr,
                      int addrlen, void *arg)
{
    (void)listener;
    (void)addr;
    (void)addrlen;
    struct http_server *srv = arg;
    accept_recovered(srv);
    size_t max = srv->cfg.max_connections;
    bool over = max != 0 && srv->conn_count - srv->reserve_count >= max;
    if (over && !srv->at_limit) {
        char what[96];
        snprintf(what, sizeof what, "connection limit reached (%zu, %zu more for health checks)",
                 max, srv->cfg.reserve_connections);
        srv->at_limit = true;
        listener_event(srv, true, what);
    }
    if (over && srv->cfg.reserve_connections == 0) {
        evutil_closesocket(fd);
        return;
    }
    if (over && srv->reserve_count == srv->cfg.reserve_connections) {
        /* The reserve is full: its oldest connection (most likely one that sends nothing)
         * makes room, so that a health check that connects and asks at once is answered. */
        struct http_conn *oldest = srv->reserve[0];
        http_listener_reserve_remove(srv, oldest);
        srv->close(oldest, false, END_EVICTED);
    }
    srv->accepted(srv, fd, over, false);
}

void http_listener_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct http_server *srv = arg;
    if (srv->listener != NULL)
        evconnlistener_enable(srv->listener);
}

/* accept() failed with something other than a retriable error (libevent retries EAGAIN,
 * EINTR, ECONNABORTED itself). Out of descriptors or memory, accepting at once again would
 * fail again and spin: pause the listener, back off, say so once per episode. */
static void accept_error_cb(struct evconnlistener *listener, void *arg)
{
    struct http_server *srv = arg;
    int err = EVUTIL_SOCKET_ERROR();
    evconnlistener_disable(listener);
    srv->accept_failures++;
    srv->accept_last_failure = deadline_clock_ms();
    srv->backoff_ms = srv->backoff_ms == 0
                          ? ACCEPT_BACKOFF_MIN_MS
                          : (srv->backoff_ms * 2 > ACCEPT_BACKOFF_MAX_MS ? ACCEPT_BACKOFF_MAX_MS
                                                                         : srv->backoff_ms * 2);
    if (!srv->accept_failing) {
        char what[160];
        snprintf(what, sizeof what, "accept failed: %s; accepts paused, retried every %u-%u ms",
                 evutil_socket_error_to_string(err), ACCEPT_BACKOFF_MIN_MS, ACCEPT_BACKOFF_MAX_MS);
        srv->accept_failing = true;
        srv->accept_failed_at = deadline_clock_ms();
        listener_event(srv, true, what);
    }
    struct timeval tv = {(time_t)(srv->backoff_ms / 1000),
                         (suseconds_t)(srv->backoff_ms % 1000) * 1000};
    evtimer_add(srv->accept_retry, &tv);
}

/* "host:port" or "[v6]:port" (port 0 = any free port) -> socket address; names resolve once
 * at startup. */
static bool parse_listen(const char *listen, struct sockaddr_storage *ss, int *sslen)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (colon == NULL || colon == listen || (size_t)(colon - listen) >= sizeof host)
        return false;
    size_t hlen = (size_t)(colon - listen);
    const char *h = listen;
    if (h[0] == '[' && hlen >= 2 && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || res == NULL)
        return false;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sslen = (int)res->ai_addrlen;
    freeaddrinfo(res);
    return true;
}

bool http_listener_open(struct http_server *srv, const char *listen,
                        void (*accepted)(struct http_server *srv, int fd, bool over, bool plain),
                        void (*close)(struct http_conn *conn, bool flush, enum conn_end why),
                        char *err, size_t errlen)
{
    srv->accepted = accepted;
    srv->close = close;
    struct sockaddr_storage ss;
    int sslen = 0;
    memset(&ss, 0, sizeof ss);
    if (listen == NULL || !parse_listen(listen, &ss, &sslen)) {
        snprintf(err, errlen, "cannot parse listen address '%s' (want host:port)",
                 listen ? listen : "");
        return false;
    }
    srv->listener =
        evconnlistener_new_bind(srv->base, accept_cb, srv,
                                LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                                1024, (struct sockaddr *)&ss, sslen);
    if (srv->listener == NULL) {
        snprintf(err, errlen, "cannot listen on %s: %s", listen, strerror(errno));
        return false;
    }
    evconnlistener_set_error_cb(srv->listener, accept_error_cb);
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    if (getsockname(evconnlistener_get_fd(srv->listener), (struct sockaddr *)&bound, &blen) == 0) {
        if (bound.ss_family == AF_INET)
            srv->port = ntohs(((struct sockaddr_in *)(void *)&bound)->sin_port);
        else if (bound.ss_family == AF_INET6)
            srv->port = ntohs(((struct sockaddr_in6 *)(void *)&bound)->sin6_port);
    }
    return true;
}

void http_server_stop_listening(struct http_server *srv)
{
    if (srv->listener != NULL) {
        evconnlistener_free(srv->listener);
        srv->listener = NULL;
    }
    evtimer_del(srv->accept_retry);
}

/* "ip:port" or "[ip6]:port". */
void http_listener_format_peer(const struct sockaddr *addr, char *out, size_t cap)
{
    snprintf(out, cap, "?");
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)(const void *)addr;
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &in4->sin_addr, ip, sizeof ip);
        snprintf(out, cap, "%s:%u", ip, ntohs(in4->sin_port));
    } else if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)addr;
        char ip[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        snprintf(out, cap, "[%s]:%u", ip, ntohs(in6->sin6_port));
    }
}

/* ---- addresses and counts ---- */

uint16_t http_server_port(const struct http_server *srv)
{
    return srv->port;
}

size_t http_server_connection_count(const struct http_server *srv)
{
    return srv->conn_count;
}

const char *http_conn_peer(const struct http_conn *conn)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char *out = conn->srv->peer;
    if (getpeername(event_get_fd(&conn->ev), (struct sockaddr *)&ss, &len) == 0)
        http_listener_format_peer((const struct sockaddr *)&ss, out, sizeof conn->srv->peer);
    else
        snprintf(out, sizeof conn->srv->peer, "?");
    return out;
}
