/* alloc.c - abort-on-OOM allocation wrappers (see alloc.h). */
#include "alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t size)
{
    fprintf(stderr, "level=fatal msg=\"out of memory\" bytes=%zu\n", size);
    abort();
}

void *rt_malloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (p == NULL) {
        oom(size);
    }
    return p;
}

void *rt_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL) {
        oom(n * size);
    }
    return p;
}

void *rt_realloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (p == NULL) {
        oom(size);
    }
    return p;
}

char *rt_strdup(const char *s)
{
    return rt_strndup(s, strlen(s));
}

char *rt_strndup(const char *s, size_t n)
{
    char *p = rt_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *rt_sprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *out = NULL;
    int n = vasprintf(&out, fmt, ap);
    va_end(ap);
    if (n < 0) {
        oom(0);
    }
    return out;
}
