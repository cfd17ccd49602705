/* grpc_server.h - OTLP/gRPC server: TraceService/Export over HTTP/2 (nghttp2 on libevent),
 * h2c or TLS with ALPN "h2" (see otlp_server.h). */
#ifndef RT_GRPC_SERVER_H
#define RT_GRPC_SERVER_H

#include "otlp_server.h"

#include <event2/event.h>

typedef struct rt_grpc_server rt_grpc_server;

rt_grpc_server *rt_grpc_server_new(struct event_base *base, const char *listen,
                                   const rt_otlp_server_opts *opts, char *err, size_t errlen);
uint16_t rt_grpc_server_port(const rt_grpc_server *srv);
void rt_grpc_server_free(rt_grpc_server *srv);

#endif
