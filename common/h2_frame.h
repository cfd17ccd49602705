/* h2_frame.h - gRPC message framing over HTTP/2 DATA: the 5-byte length prefix, an incremental
 * reader for one unary message, and the grpc-message percent-encoding. Shared by the gRPC
 * server and client.
 *
 * A gRPC message on the wire is: 1 byte compressed-flag (0 or 1), 4 bytes big-endian length,
 * then `length` bytes. A unary call carries exactly one message in each direction.
 */
#ifndef RT_H2_FRAME_H
#define RT_H2_FRAME_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RT_H2_FRAME_PREFIX_LEN 5

/* Write the prefix of a message of `len` bytes into out[0..4]. */
void rt_h2_frame_encode_prefix(uint8_t out[RT_H2_FRAME_PREFIX_LEN], bool compressed, uint32_t len);
/* Read a prefix. Returns 0, or -1 if the flag byte is neither 0 nor 1. */
int rt_h2_frame_decode_prefix(const uint8_t in[RT_H2_FRAME_PREFIX_LEN], bool *compressed,
                              uint32_t *len);

/* Incremental reader of ONE gRPC message from a stream of DATA chunks. Zero-initialise (or use
 * RT_H2_FRAME_READER_INIT) before the first chunk. The message bytes are appended to the `msg`
 * buffer passed to rt_h2_frame_read(); nothing is copied until the prefix has been checked, so
 * an oversized length is refused before anything is buffered. */
typedef struct rt_h2_frame_reader {
    uint8_t prefix[RT_H2_FRAME_PREFIX_LEN];
    size_t prefix_got; /* bytes of the prefix seen so far */
    bool compressed;   /* valid once prefix_got == 5 */
    uint32_t msg_len;  /* valid once prefix_got == 5 */
    size_t msg_got;    /* bytes of the message seen so far */
} rt_h2_frame_reader;

#define RT_H2_FRAME_READER_INIT                                                                    \
    {                                                                                              \
        {0}, 0, false, 0, 0                                                                        \
    }

typedef enum rt_h2_frame_rc {
    RT_H2_FRAME_OK = 0,         /* consumed; call again with more, or check _state at the end */
    RT_H2_FRAME_BAD_FLAG = -1,  /* compressed-flag byte not 0 or 1 */
    RT_H2_FRAME_TOO_LARGE = -2, /* the prefix announced more than max_len bytes */
    RT_H2_FRAME_EXTRA = -3,     /* bytes after the first complete message (a second message) */
} rt_h2_frame_rc;

/* Feed `n` bytes. Message bytes go to `msg` (appended). Returns RT_H2_FRAME_OK or one of the
 * negative codes; after an error the reader must not be fed again. */
rt_h2_frame_rc rt_h2_frame_read(rt_h2_frame_reader *r, const uint8_t *p, size_t n, size_t max_len,
                                rt_buf *msg);

typedef enum rt_h2_frame_state {
    RT_H2_FRAME_EMPTY = 0,   /* no byte received: zero messages */
    RT_H2_FRAME_PARTIAL = 1, /* a prefix or a message was cut short */
    RT_H2_FRAME_COMPLETE = 2 /* exactly one complete message */
} rt_h2_frame_state;

/* Where the reader stands (check it when the peer ends the stream). */
rt_h2_frame_state rt_h2_frame_reader_state(const rt_h2_frame_reader *r);

/* Percent-encode `s` for a grpc-message header (bytes outside 0x20..0x7E and '%' become %XX),
 * into `out` of `cap` bytes, always NUL-terminated; truncates at a whole escape. Returns out. */
char *rt_h2_frame_percent_encode(const char *s, char *out, size_t cap);
/* Decode a grpc-message value of `len` bytes into `out` (NUL-terminated, truncated to cap-1);
 * malformed escapes are kept as they are, as the gRPC spec asks. Returns out. */
char *rt_h2_frame_percent_decode(const char *s, size_t len, char *out, size_t cap);

#endif
