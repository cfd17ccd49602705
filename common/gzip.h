/* gzip.h - bounded gzip inflate / deflate (OTLP bodies and gRPC messages), with ISA-L's igzip
 * (why: gzip.c). Output is plain gzip (RFC 1952) any reader takes; input from any writer. */
#ifndef RT_GZIP_H
#define RT_GZIP_H

#include "buf.h"

#include <stdbool.h>

/* Inflate a gzip (or zlib) stream, appending to `out`. Returns 0; -1 if the data is not valid
 * gzip (message in err); -2 if the output would exceed `max_out` bytes. Concatenated gzip
 * members are accepted. */
int rt_gzip_inflate(const uint8_t *in, size_t len, size_t max_out, rt_buf *out, char *err,
                    size_t errlen);
/* Deflate `in` as one gzip member appended to `out`. `level` is igzip's, 0..3 (fastest to
 * smallest; 1 compresses like zlib's level 1 at a fifth of its CPU); above 3 means 3. */
void rt_gzip_deflate(const uint8_t *in, size_t len, int level, rt_buf *out);

/* A gzip member written in pieces: the bytes are compressed as they are written (while still
 * in cache, with no copy of the whole input kept), and finish ends the member. The writer is
 * reused for the next member (its window and tables are allocated once). */
typedef struct rt_gzip_writer rt_gzip_writer;
rt_gzip_writer *rt_gzip_writer_new(int level);
void rt_gzip_writer_write(rt_gzip_writer *w, const uint8_t *in, size_t len, rt_buf *out);
/* End the member in `out`; the next write starts a new member. */
void rt_gzip_writer_finish(rt_gzip_writer *w, rt_buf *out);
void rt_gzip_writer_free(rt_gzip_writer *w);

#endif
