/* gzip.h - bounded gzip inflate / deflate on whole buffers (OTLP bodies and gRPC messages). */
#ifndef RT_GZIP_H
#define RT_GZIP_H

#include "buf.h"

/* Inflate a gzip (or zlib) stream, appending to `out`. Returns 0; -1 if the data is not valid
 * gzip (message in err); -2 if the output would exceed `max_out` bytes. Concatenated gzip
 * members are accepted. */
int rt_gzip_inflate(const uint8_t *in, size_t len, size_t max_out, rt_buf *out, char *err,
                    size_t errlen);
/* Deflate `in` as one gzip member appended to `out` (level 6 unless 1..9 given). */
void rt_gzip_deflate(const uint8_t *in, size_t len, int level, rt_buf *out);

#endif
