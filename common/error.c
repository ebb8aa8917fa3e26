/* error.c: names for the error codes of error.h. */
#include "common/error.h"

const char *sioc_strerror(int err)
{
    switch (err) {
    case SIOC_OK: return "ok";
    case SIOC_EAGAIN: return "incomplete input";
    case SIOC_EPROTO: return "protocol error";
    case SIOC_ETOOBIG: return "too big";
    case SIOC_ENOMEM: return "out of memory";
    case SIOC_EDEPTH: return "nesting too deep";
    case SIOC_EUTF8: return "invalid UTF-8";
    case SIOC_EINVAL: return "invalid argument";
    case SIOC_ENOTSUP: return "not supported";
    }
    return "unknown error";
}
