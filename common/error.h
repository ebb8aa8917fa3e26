/* error.h: the one error vocabulary of sioc. Every decoder in common/ returns bytes consumed
 * (>= 0) or one of these negative codes; sioc_strerror names them for log lines. */
#ifndef SIOC_ERROR_H
#define SIOC_ERROR_H

enum sioc_error {
    SIOC_OK = 0,
    SIOC_EAGAIN = -1,  /* input is incomplete: feed more bytes and call again */
    SIOC_EPROTO = -2,  /* input violates the protocol */
    SIOC_ETOOBIG = -3, /* input (or output) exceeds a named limit */
    SIOC_ENOMEM = -4,  /* an allocation failed */
    SIOC_EDEPTH = -5,  /* nesting deeper than the module's limit */
    SIOC_EUTF8 = -6,   /* text that must be UTF-8 is not */
    SIOC_EINVAL = -7,  /* the caller passed an invalid argument (not a peer error) */
    SIOC_ENOTSUP = -8, /* well-formed but not supported (disabled feature or version) */
};

/* Returns a static, human-readable name for `err` (a negative sioc_error or SIOC_OK);
 * "unknown error" for anything else. Never NULL. */
const char *sioc_strerror(int err);

#endif
