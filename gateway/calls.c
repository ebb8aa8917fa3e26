/* calls.c: the per-socket list of pending worker calls (see calls.h). */
#include "gateway/calls.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"

struct slice call_id(const struct call *c)
{
    return (struct slice){c->text, c->id_len};
}

struct slice call_to(const struct call *c)
{
    return (struct slice){c->text + c->id_len, c->to_len};
}

int calls_add(struct call **head, uint64_t ack_id, struct slice id, struct slice to)
{
    size_t n = 0;
    for (const struct call *c = *head; c != NULL; c = c->next)
        n++;
    if (n >= CALLS_MAX_PER_SOCKET)
        return SIOC_ETOOBIG;
    if (id.len > UINT16_MAX || to.len > UINT16_MAX)
        return SIOC_EINVAL;
    struct call *c = malloc(sizeof *c + id.len + to.len);
    if (c == NULL)
        return SIOC_ENOMEM;
    c->ack_id = ack_id;
    c->id_len = (uint16_t)id.len;
    c->to_len = (uint16_t)to.len;
    if (id.len > 0)
        memcpy(c->text, id.p, id.len);
    if (to.len > 0)
        memcpy(c->text + id.len, to.p, to.len);
    c->next = *head;
    *head = c;
    return SIOC_OK;
}

struct call *calls_take(struct call **head, uint64_t ack_id)
{
    for (struct call **at = head; *at != NULL; at = &(*at)->next) {
        if ((*at)->ack_id == ack_id) {
            struct call *c = *at;
            *at = c->next;
            return c;
        }
    }
    return NULL;
}

struct call *calls_pop(struct call **head)
{
    struct call *c = *head;
    if (c != NULL)
        *head = c->next;
    return c;
}
