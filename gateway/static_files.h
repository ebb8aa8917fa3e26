/* static_files.h: serving files for the gateway's `static DIR` and `client-js FILE` options:
 * GET/HEAD only, paths confined to the directory (no "..", no hidden files), a content type by
 * extension, whole files read per request (meant for a demo page and the client bundle, not
 * for bulk assets). */
#ifndef SIOC_GATEWAY_STATIC_FILES_H
#define SIOC_GATEWAY_STATIC_FILES_H

#include <stdbool.h>

#include "common/net/http_server.h"

/* Serves `file` (a path) as the answer to req. Returns false (nothing sent) if it cannot be
 * read, so the caller can answer 404. */
bool static_serve_file(struct http_conn *conn, const struct http_server_request *req,
                       const char *file);
/* Serves req's path from directory `dir` ("/" maps to index.html). Returns false (nothing
 * sent) when there is no such file or the path is not acceptable. */
bool static_serve_dir(struct http_conn *conn, const struct http_server_request *req,
                      const char *dir);

#endif
