/* admin.h - the admin HTTP port of both binaries: /metrics, /healthz, /readyz and extra pages.
 *
 * Served with libevent's evhttp on the caller's event_base (one thread):
 *   GET /metrics  the registry in Prometheus text format 0.0.4
 *                 (Content-Type: text/plain; version=0.0.4; charset=utf-8)
 *   GET /healthz  200 "ok" while the process runs
 *   GET /readyz   200 "ready", or 503 "not ready: <reason>" when the readiness callback says so
 *   GET <path>    pages added with rt_admin_add_handler() ("/ring", "/config", ...)
 * Unknown paths get 404, methods other than GET and HEAD get 405 with "Allow: GET, HEAD".
 * The query string is not part of the path match; handlers receive it.
 */
#ifndef RT_ADMIN_H
#define RT_ADMIN_H

#include "buf.h"
#include "metrics.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rt_admin rt_admin;

/* Readiness: return true when ready; otherwise write a short reason ("ring not loaded") into
 * `reason` (capacity `cap`) and return false. Runs on the admin's event_base thread. */
typedef bool (*rt_admin_ready_fn)(void *arg, char *reason, size_t cap);

/* An extra GET page. Append the body to `body`; set *content_type to a static string if the
 * default "text/plain; charset=utf-8" does not fit. `query` is the raw query string or NULL.
 * Returns the HTTP status (200, 400, ...). Runs on the admin's event_base thread. */
typedef int (*rt_admin_handler_fn)(void *arg, const char *query, rt_buf *body,
                                   const char **content_type);

/* Listen on `listen` ("host:port", port 0 = any free port) and serve on `base`. `reg` is
 * borrowed and must outlive the admin. Returns NULL with a message in `err` if the address
 * cannot be bound. */
rt_admin *rt_admin_new(struct event_base *base, const char *listen, rt_metrics_registry *reg,
                       char *err, size_t errlen);
/* Set (or with fn NULL, clear) the readiness callback. Without one /readyz answers 200. */
void rt_admin_set_ready_fn(rt_admin *admin, rt_admin_ready_fn fn, void *arg);
/* Serve GET `path` (exact match, copied) with fn(arg, ...). Adding a path again replaces its
 * handler. Returns 0, or -1 for a built-in path, a path not starting with '/' or a NULL fn. */
int rt_admin_add_handler(rt_admin *admin, const char *path, rt_admin_handler_fn fn, void *arg);
/* The bound port (useful with port 0). */
uint16_t rt_admin_port(const rt_admin *admin);
/* Close the listener and open connections and free everything. NULL is allowed. Must run on the
 * event_base's thread (or after its loop has stopped). */
void rt_admin_free(rt_admin *admin);

#endif
