/* alloc.h - allocation wrappers that abort on out-of-memory, so call sites stay short.
 *
 * ringtail treats OOM as fatal: a half-handled allocation failure in a network daemon is worse
 * than a clean crash that the supervisor restarts. Every allocation in the tree goes through
 * these.
 */
#ifndef RT_ALLOC_H
#define RT_ALLOC_H

#include <stddef.h>

void *rt_malloc(size_t size);
void *rt_calloc(size_t n, size_t size);
void *rt_realloc(void *ptr, size_t size);
char *rt_strdup(const char *s);
char *rt_strndup(const char *s, size_t n);
/* Like asprintf(), aborting on failure. */
char *rt_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
