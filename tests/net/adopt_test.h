/* adopt_test.h: a client of an http_server in the same process without a TCP port (header-only):
 * one end of a socketpair the server adopts (http_server_adopt), the test reading and writing
 * the other. The net tests of the close protocol drive every layer through it. */
#ifndef SIOC_TEST_ADOPT_H
#define SIOC_TEST_ADOPT_H

#include <sys/socket.h>

#include "common/net/http_server.h"

/* The test's end (non-blocking), or -1 when no socketpair could be made. */
static inline int adopt_test_client(struct http_server *srv)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
        return -1;
    http_server_adopt(srv, sv[0]);
    return sv[1];
}

#endif
