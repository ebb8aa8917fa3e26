/* api.h: the broker's HTTP API under /v1/ (DESIGN.md §2 sioc-broker): emit, join, leave and
 * disconnect published in the @socket.io/redis-emitter format, and the registry queries, each
 * answered from one Redis script while the request is held. JSON in and out; errors are
 * {"error": "..."} with a 4xx/5xx status; bearer auth when an api-key is configured. */
#ifndef SIOC_BROKER_API_H
#define SIOC_BROKER_API_H

#include <stdbool.h>

struct broker;
struct bk_api;
struct http_conn;
struct http_server_request;

/* Returns NULL when out of memory. */
struct bk_api *bk_api_new(struct broker *b);
/* Answers nothing more: held requests are dropped (their connections are closed by the
 * caller's http_server_free). NULL is a no-op. */
void bk_api_free(struct bk_api *api);
/* Handles a request whose path starts with /v1/ (answers it now or when Redis replies). */
void bk_api_handle(struct bk_api *api, struct http_conn *conn, struct http_server_request *req);

#endif
