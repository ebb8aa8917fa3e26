/* static_files.c: confined, whole-file static serving (see static_files.h). */
#include "gateway/static_files.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_STATIC_FILE (16u << 20)

static const char *content_type(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "application/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".map", "application/json"},
        {".png", "image/png"},
        {".svg", "image/svg+xml"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"},
    };
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot != NULL && i < sizeof types / sizeof types[0]; i++) {
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    }
    return "application/octet-stream";
}

bool static_serve_file(struct http_conn *conn, const struct http_server_request *req,
                       const char *file)
{
    struct slice m = req->head->method;
    bool head = m.len == 4 && memcmp(m.p, "HEAD", 4) == 0;
    if (!head && !(m.len == 3 && memcmp(m.p, "GET", 3) == 0))
        return false;
    FILE *f = fopen(file, "rb");
    if (f == NULL)
        return false;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) ||
        (size_t)st.st_size > MAX_STATIC_FILE) {
        fclose(f);
        return false;
    }
    size_t size = (size_t)st.st_size;
    char *data = malloc(size ? size : 1);
    bool ok = data != NULL && fread(data, 1, size, f) == size;
    fclose(f);
    if (ok) {
        struct http_field fields[] = {{"Content-Type", content_type(file)},
                                      {"Cache-Control", "no-cache"}};
        if (head) {
            http_conn_respond_begin(conn, 200, fields, 2, size, false);
            http_conn_respond_end(conn);
        } else {
            http_conn_respond(conn, 200, fields, 2, data, size, false);
        }
    }
    free(data);
    return ok;
}

bool static_serve_dir(struct http_conn *conn, const struct http_server_request *req,
                      const char *dir)
{
    struct slice path = req->path;
    if (path.len == 0 || path.p[0] != '/' || path.len > 512 || memchr(path.p, '\0', path.len))
        return false;
    char rel[520];
    memcpy(rel, path.p, path.len);
    rel[path.len] = '\0';
    if (strcmp(rel, "/") == 0)
        strcpy(rel, "/index.html");
    /* confine to the directory: no parent segments, no hidden files, no backslashes or NULs */
    if (strstr(rel, "/.") != NULL || strchr(rel, '\\') != NULL)
        return false;
    char full[1100];
    int n = snprintf(full, sizeof full, "%s%s", dir, rel);
    if (n <= 0 || (size_t)n >= sizeof full)
        return false;
    return static_serve_file(conn, req, full);
}
