/* otlp_call.h - the inside of rt_otlp_call, shared by http_server.c and grpc_server.c.
 *
 * Each transport embeds `rt_otlp_call` as the FIRST member of its own per-request struct and
 * sets `respond` to its own function; rt_otlp_call_respond() (otlp_ingest.c) dispatches through
 * it. `respond` must send the answer if the client is still there, then free the request.
 */
#ifndef RT_OTLP_CALL_H
#define RT_OTLP_CALL_H

#include "otlp_server.h"

struct rt_otlp_call {
    void (*respond)(rt_otlp_call *call, const rt_otlp_result *res);
    rt_otlp_transport transport;
    char peer[64];
};

#endif
