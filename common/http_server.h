/* http_server.h - OTLP/HTTP server on libevent: POST /v1/traces (see otlp_server.h). */
#ifndef RT_HTTP_SERVER_H
#define RT_HTTP_SERVER_H

#include "otlp_server.h"

#include <event2/event.h>

typedef struct rt_http_server rt_http_server;

/* Listen on `listen` ("host:port"; port 0 = any) on `base`. Returns NULL with a message in
 * `err` if the address cannot be bound. */
rt_http_server *rt_http_server_new(struct event_base *base, const char *listen,
                                   const rt_otlp_server_opts *opts, char *err, size_t errlen);
uint16_t rt_http_server_port(const rt_http_server *srv);
/* Stop listening and close connections. Calls still held by the handler stay valid until
 * they are responded to (the answer is then dropped). */
void rt_http_server_free(rt_http_server *srv);

#endif
