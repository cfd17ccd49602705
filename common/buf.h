/* buf.h - a growable byte buffer (owned memory, amortised doubling). */
#ifndef RT_BUF_H
#define RT_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct rt_buf {
    uint8_t *data; /* owned; NULL until the first append */
    size_t len;
    size_t cap;
} rt_buf;

#define RT_BUF_INIT                                                                                \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

void rt_buf_init(rt_buf *b);
void rt_buf_free(rt_buf *b);
/* Make room for at least `extra` more bytes; returns a pointer to the first free byte. */
uint8_t *rt_buf_reserve(rt_buf *b, size_t extra);
void rt_buf_append(rt_buf *b, const void *p, size_t n);
void rt_buf_append_byte(rt_buf *b, uint8_t c);
void rt_buf_append_str(rt_buf *b, const char *s);
void rt_buf_printf(rt_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Forget the contents, keep the memory. */
static inline void rt_buf_reset(rt_buf *b)
{
    b->len = 0;
}
/* Hand the memory to the caller (who frees it); the buffer is left empty. */
uint8_t *rt_buf_steal(rt_buf *b, size_t *len);

#endif
