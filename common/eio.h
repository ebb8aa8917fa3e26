/* eio.h: the Engine.IO codec (PROTOCOL.md 1): v4 and v3 packets, polling payloads (0x1e-joined
 * v4, `<len>:` v3 text, v3 XHR2 binary), the open packet and sid format, the error codes and
 * bodies of 1.2 with the request validation order, and JSONP wrapping (1.5.7).
 * Pure: no I/O, no timers, no sessions. Query parsing, HTTP framing, WebSocket framing and the
 * session table belong to the http, ws and gateway modules. */
#ifndef SIOC_EIO_H
#define SIOC_EIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Length of a session id (PROTOCOL.md 1.3: 15 bytes of base64 without padding). */
#define EIO_SID_LEN 20

enum eio_version {
    EIO_V3 = 3,
    EIO_V4 = 4,
};

/* PROTOCOL.md 1.4: the value is the type digit. */
enum eio_packet_type {
    EIO_PACKET_OPEN = 0,
    EIO_PACKET_CLOSE = 1,
    EIO_PACKET_PING = 2,
    EIO_PACKET_PONG = 3,
    EIO_PACKET_MESSAGE = 4,
    EIO_PACKET_UPGRADE = 5,
    EIO_PACKET_NOOP = 6,
};

/* One packet. Decoders fill it with borrowed pointers (each decoder states for how long);
 * encoders only read it. `binary` false: `data` is the text after the type digit (may be
 * empty). `binary` true: `data` is the raw bytes; in v4 the type is always EIO_PACKET_MESSAGE. */
struct eio_packet {
    enum eio_packet_type type;
    bool binary;
    struct slice data;
};

/* ---- single packets (a WebSocket message, or one v4 polling segment) ---- */

/* Decodes one text packet p[0..len): `<digit 0-6><data>`, or `b…` for binary: v4 `b<base64>`
 * (a message), v3 `b<digit><base64>`. Base64 is Node's lenient decoder (PROTOCOL.md 1.4).
 * Text data is not checked for UTF-8 (the WebSocket layer validates text frames; Node reads
 * polling bodies leniently). A binary packet empties `bin` (buf_reset) and decodes into it; then
 * out->data points into bin->data, valid until `bin` is next modified. A text packet leaves `bin`
 * alone and out->data points into p. `bin` must not be NULL.
 * Returns SIOC_OK; SIOC_EPROTO for an empty packet or unknown type character; or bin's error
 * (SIOC_ETOOBIG past bin->limit, SIOC_ENOMEM). */
int eio_packet_decode(enum eio_version version, const uint8_t *p, size_t len, struct buf *bin,
                      struct eio_packet *out);

/* Decodes a WebSocket binary message. v4: the whole frame is message data (no type byte).
 * v3 (PROTOCOL.md 1.12): the first byte is the type (0..6), the rest is data; empty or an
 * unknown type is SIOC_EPROTO. out->data points into p. Returns SIOC_OK or SIOC_EPROTO. */
int eio_binary_frame_decode(enum eio_version version, const uint8_t *p, size_t len,
                            struct eio_packet *out);

/* Appends the text form of `pkt` (a WebSocket text message or one v4 polling segment):
 * `<digit><data>`, or for binary v4 `b<base64>` / v3 `b<digit><base64>` (standard, padded).
 * Returns SIOC_OK; SIOC_EINVAL for a v4 binary packet that is not a message; or out's error.
 * On error `out` is truncated back to its length at entry. */
int eio_packet_encode(struct buf *out, enum eio_version version, const struct eio_packet *pkt);

/* Appends a v3 WebSocket binary message: the type byte, then the data. v4 binary messages are
 * the data itself and need no encoder. Returns SIOC_OK or out's error (rolled back). */
int eio_v3_binary_frame_encode(struct buf *out, const struct eio_packet *pkt);

/* ---- polling payloads ---- */

enum eio_payload_format {
    EIO_PAYLOAD_V4,        /* packets joined by 0x1e (PROTOCOL.md 1.5.1) */
    EIO_PAYLOAD_V3_TEXT,   /* `<len>:<packet>…`, len in UTF-16 units (1.12) */
    EIO_PAYLOAD_V3_BINARY, /* XHR2: marker, digit bytes, 0xff, bytes (1.12) */
};

/* Iterates over the packets of one complete request body without allocating (except base64
 * binary, decoded into the caller's `bin`). Node decodes a payload front to back, hands each
 * valid packet to the session and stops at the first invalid one, which closes the session with
 * "parse error" (PROTOCOL.md 1.5.1, 1.5.3, 1.12). So the caller processes every packet the
 * iterator yields and, on an error, then closes the session. Fields are private. */
struct eio_payload_iter {
    const uint8_t *p;
    size_t len;
    size_t pos; /* bytes consumed so far (public: how far decoding got) */
    enum eio_payload_format format;
    bool done;
    int err;
};

/* Starts iterating p[0..len). Borrows p: it must stay unchanged while the iterator is used. */
void eio_payload_iter_init(struct eio_payload_iter *it, enum eio_payload_format format,
                           const uint8_t *p, size_t len);

/* Produces the next packet. Returns 1 with *out filled, 0 at the end of the payload, or a
 * negative error that is sticky (every later call returns it again):
 *   SIOC_EPROTO  malformed: empty v4 body or segment (so a trailing 0x1e is an error), unknown
 *                type, v3 length not [0-9]+, not matching, or splitting a surrogate pair, a
 *                truncated entry, an XHR2 marker other than 0/1 or digit byte above 9;
 *   SIOC_EUTF8   a v3 text payload entry that is not valid UTF-8 (its length is undefined);
 *   SIOC_ETOOBIG / SIOC_ENOMEM from `bin`.
 * An empty v3 text body is SIOC_EPROTO; `0:` is the empty list (and `0:` entries are skipped,
 * as Node does); an empty XHR2 body is the empty list. Lengths are bounded by the bytes left,
 * so no declared length can overflow or allocate. Lifetimes of out->data: as
 * eio_packet_decode (into p, or into `bin` until `bin` is next modified). */
int eio_payload_next(struct eio_payload_iter *it, struct buf *bin, struct eio_packet *out);

/* Appends the v4 payload of pkts[0..n): text forms joined by 0x1e, no trailing separator
 * (n == 0 appends nothing). Returns SIOC_OK, SIOC_EINVAL (see eio_packet_encode) or out's
 * error; on error `out` is rolled back to its length at entry. */
int eio_payload_encode(struct buf *out, const struct eio_packet *pkts, size_t n);

/* Appends the v3 text payload: `<UTF-16 units>:<text form>` per packet, binary as `b<digit>…`;
 * n == 0 gives `0:`. Text data must be valid UTF-8 (else SIOC_EUTF8). Rolled back on error. */
int eio_v3_payload_encode(struct buf *out, const struct eio_packet *pkts, size_t n);

/* Appends the v3 XHR2 binary payload: per packet a marker (0 text, 1 binary), the decimal
 * digits of the entry length as bytes 0..9, 0xff, then the UTF-8 text form (length in bytes)
 * or the type byte and the data. Returns SIOC_OK or out's error (rolled back). */
int eio_v3_binary_payload_encode(struct buf *out, const struct eio_packet *pkts, size_t n);

/* ---- handshake (PROTOCOL.md 1.3) ---- */

struct eio_open {
    const char *sid;             /* NUL-terminated; normally EIO_SID_LEN chars */
    const char *const *upgrades; /* transport names, e.g. {"websocket"}; may be NULL if n == 0 */
    size_t upgrades_len;
    uint64_t ping_interval_ms; /* default 25000 */
    uint64_t ping_timeout_ms;  /* default 20000 */
    uint64_t max_payload;      /* maxHttpBufferSize, default 1000000 */
};

/* Appends the open packet `0{"sid":…,"upgrades":[…],"pingInterval":…,"pingTimeout":…,
 * "maxPayload":…}` (same for v3, as Node sends it). Strings are JSON-escaped. Returns SIOC_OK or
 * out's error (rolled back). */
int eio_open_encode(struct buf *out, const struct eio_open *open);

/* Writes the 20-character id Node's base64id makes from 12 random bytes and the low 24 bits of
 * `counter` (big-endian): base64 with '+' -> '-', '/' -> '_', no padding. No NUL is written.
 * The caller supplies the randomness (e.g. RAND_bytes) and owns the counter. */
void eio_sid_format(const uint8_t random12[12], uint32_t counter, char out[EIO_SID_LEN]);

/* ---- request validation and errors (PROTOCOL.md 1.2) ---- */

enum eio_error_code {
    EIO_ERR_NONE = -1, /* eio_check_request: the request may proceed */
    EIO_ERR_UNKNOWN_TRANSPORT = 0,
    EIO_ERR_UNKNOWN_SID = 1,
    EIO_ERR_BAD_HANDSHAKE_METHOD = 2,
    EIO_ERR_BAD_REQUEST = 3,
    EIO_ERR_FORBIDDEN = 4,
    EIO_ERR_UNSUPPORTED_PROTOCOL_VERSION = 5,
};

enum eio_transport {
    EIO_TRANSPORT_NONE = 0,
    EIO_TRANSPORT_POLLING = 1,
    EIO_TRANSPORT_WEBSOCKET = 2,
};

/* The facts eio_check_request needs, already extracted by the caller. A slice with p == NULL
 * means "parameter absent". The gateway looks the sid up first (that is its job) and reports
 * the result through `session`. */
struct eio_request {
    struct slice transport;      /* query `transport` */
    struct slice eio;            /* query `EIO` */
    bool has_sid;                /* query `sid` present and non-empty */
    bool is_get;                 /* method is exactly GET */
    bool is_upgrade;             /* a WebSocket upgrade request */
    bool origin_invalid;         /* Origin holds characters invalid in a header value */
    bool forbidden;              /* the allowRequest hook refused (false without a hook) */
    unsigned enabled_transports; /* bit set of enum eio_transport */
    bool allow_eio3;
    /* when has_sid: */
    bool session_found;
    enum eio_transport session_transport; /* the session's current transport */
    enum eio_version session_version;
};

/* Applies the checks of PROTOCOL.md 1.2 in Node's order: transport, origin, sid (unknown,
 * transport or protocol mismatch) or handshake (method, websocket without upgrade, hook), then
 * the protocol version of a handshake. Returns EIO_ERR_NONE and sets *transport and *version
 * (the session's for a sid request; EIO "4" -> v4, anything else v3 for a handshake), or the
 * error code to answer with (outputs untouched). Not modelled: what happens after acceptance,
 * e.g. an upgrade with transport=polling or of an upgraded session (101 then close). */
enum eio_error_code eio_check_request(const struct eio_request *req, enum eio_transport *transport,
                                      enum eio_version *version);

/* The exact message of a code 0..5 ("Transport unknown", …); NULL for any other value. */
const char *eio_error_message(enum eio_error_code code);
/* The HTTP status of a polling error: 403 for EIO_ERR_FORBIDDEN, 400 for the others; 0 for a
 * value outside 0..5. */
int eio_error_status(enum eio_error_code code);
/* Appends the polling error body `{"code":N,"message":"…"}` (message JSON-escaped; `message`
 * NULL means the standard one). Returns SIOC_OK, SIOC_EINVAL for a code outside 0..5, or out's
 * error (rolled back). */
int eio_error_body_json(struct buf *out, enum eio_error_code code, const char *message);
/* Appends the whole raw response Node writes to a refused upgrade socket (always 400):
 * `HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-type: text/html\r\n
 * Content-Length: <n>\r\n\r\n<message>`. Same arguments and returns as eio_error_body_json. */
int eio_error_upgrade_response(struct buf *out, enum eio_error_code code, const char *message);

/* ---- JSONP (PROTOCOL.md 1.5.7) ---- */

/* Appends `___eio[<digits of j>]("<payload as a JSON string>");`. Like Node, every non-digit of
 * `j` is dropped, and the string is JSON.stringify's (\" \\ \b \f \n \r \t, other controls as
 * \u00xx) with U+2028/U+2029 escaped. Payload bytes >= 0x80 are copied as they are (the
 * payload is UTF-8). Returns SIOC_OK or out's error (rolled back). */
int eio_jsonp_encode(struct buf *out, struct slice j, const uint8_t *payload, size_t len);

/* Most form pairs of a JSONP POST body looked at (Node's querystring.parse maxKeys). */
#define EIO_JSONP_MAX_PAIRS 1000

/* Decodes the body of a JSONP POST p[0..len) (PROTOCOL.md 1.5.7) as engine.io 6's polling-jsonp
 * does: the form-urlencoded field `d` (names and values percent-decoded, '+' as space, invalid
 * escapes kept; only the first EIO_JSONP_MAX_PAIRS pairs count), then in its value every `\n`
 * (backslash, n) becomes a newline unless a backslash precedes it, and then every `\\n` becomes
 * `\n`. Appends the resulting payload (raw bytes, not checked for UTF-8) to `out`.
 * Returns SIOC_OK; SIOC_EPROTO when `d` is absent or repeated (Node then ignores the body: its
 * qs.parse gives no string); or out's error (SIOC_ETOOBIG past out->limit, SIOC_ENOMEM). On
 * error `out` is rolled back to its length at entry. Allocates only scratch the size of len. */
int eio_jsonp_body_decode(const uint8_t *p, size_t len, struct buf *out);

#endif
