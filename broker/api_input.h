/* api_input.h: validation of the broker API's inputs (DESIGN.md §2 sioc-broker): JSON request
 * bodies (transcoded to MessagePack with common/json.h, then checked field by field: unknown
 * fields, wrong types, duplicates and empty names are refused with a message naming the field),
 * the socket selectors (rooms, users as user-room names, sids), and percent-encoded path
 * segments and query values. Pure: no I/O. */
#ifndef SIOC_BROKER_API_INPUT_H
#define SIOC_BROKER_API_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/adapter.h"
#include "common/buf.h"

/* /v1/emit's "ack": {"timeout": ms} (docs/api.md): the bounds of the timeout. */
#define API_ACK_TIMEOUT_MIN_MS 1u
#define API_ACK_TIMEOUT_MAX_MS 120000u

/* Which endpoint a body is for: decides the fields it may carry. */
enum api_body_kind { API_BODY_EMIT, API_BODY_JOIN, API_BODY_LEAVE, API_BODY_DISCONNECT };

/* A list of strings kept as its MessagePack array encoding (inside api_body.mp). */
struct api_list {
    bool present;
    struct slice raw;
    uint32_t count;
};

/* A validated body. Slices point into `mp` and live until api_body_deinit. */
struct api_body {
    struct buf mp;    /* the body as MessagePack */
    struct slice nsp; /* "/" when absent */
    struct slice event;
    bool has_args;
    struct slice args_items; /* the encoded elements of args, without the array header */
    uint32_t args_count;
    struct api_list rooms, users, sids, except, to;
    bool is_volatile;
    bool close;
    bool has_ack;            /* emit only: wait for each socket's ack (broker/calls.h) */
    uint32_t ack_timeout_ms; /* API_ACK_TIMEOUT_MIN_MS..API_ACK_TIMEOUT_MAX_MS when has_ack */
};

/* Parses and validates body[0..len) for `kind`. Returns true, or false with a one-line message
 * in err (for a 400). The body must be released with api_body_deinit either way. */
bool api_body_parse(struct api_body *out, enum api_body_kind kind, const uint8_t *body, size_t len,
                    char *err, size_t errlen);
void api_body_deinit(struct api_body *b);

/* The target sockets of a request: rooms, plus user_room % uid for each user, plus each sid (a
 * socket is in the room named by its id). Names point into the body or into `names`. */
struct api_selector {
    struct adapter_rooms rooms;
    struct adapter_rooms except;
    struct buf names; /* storage of the user-room names */
};

/* Fills *sel from b (user_room has exactly one %s). Returns true, or false with a message in err
 * (too many names: more than ADAPTER_MAX_ROOMS). Release with api_selector_deinit. */
bool api_selector_build(struct api_selector *sel, const struct api_body *b, const char *user_room,
                        char *err, size_t errlen);
void api_selector_deinit(struct api_selector *sel);
/* Fills rooms from a list of the body (the `to` of join/leave). */
bool api_list_to_rooms(const struct api_list *list, struct adapter_rooms *rooms);

/* Decodes %XX escapes (and '+' as a space when `plus_is_space`, for query values) of p[0..len)
 * into a new NUL-terminated string of *out_len bytes (free() it). Returns NULL for a bad escape,
 * an embedded NUL, or out of memory. */
char *api_percent_decode(const uint8_t *p, size_t len, bool plus_is_space, size_t *out_len);
/* Finds `name` in an application/x-www-form-urlencoded query and returns its raw value slice
 * in *value; false when absent. */
bool api_query_get(struct slice query, const char *name, struct slice *value);

#endif
