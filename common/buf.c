/* buf.c - growable byte buffer (see buf.h). */
#include "buf.h"

#include "alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rt_buf_init(rt_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void rt_buf_free(rt_buf *b)
{
    free(b->data);
    rt_buf_init(b);
}

uint8_t *rt_buf_reserve(rt_buf *b, size_t extra)
{
    if (b->cap - b->len < extra) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->len < extra) {
            cap *= 2;
        }
        b->data = rt_realloc(b->data, cap);
        b->cap = cap;
    }
    return b->data + b->len;
}

void rt_buf_append(rt_buf *b, const void *p, size_t n)
{
    if (n == 0) {
        return;
    }
    memcpy(rt_buf_reserve(b, n), p, n);
    b->len += n;
}

void rt_buf_append_byte(rt_buf *b, uint8_t c)
{
    *rt_buf_reserve(b, 1) = c;
    b->len++;
}

void rt_buf_append_str(rt_buf *b, const char *s)
{
    rt_buf_append(b, s, strlen(s));
}

void rt_buf_printf(rt_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n > 0) {
        char *dst = (char *)rt_buf_reserve(b, (size_t)n + 1);
        vsnprintf(dst, (size_t)n + 1, fmt, ap2);
        b->len += (size_t)n;
    }
    va_end(ap2);
}

uint8_t *rt_buf_steal(rt_buf *b, size_t *len)
{
    uint8_t *p = b->data;
    if (len) {
        *len = b->len;
    }
    rt_buf_init(b);
    return p;
}
