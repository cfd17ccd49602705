/* peer_msg.c - the PeerEnvelope on requests between ringtail processes (see peer_msg.h and
 * proto/ringtail/peer/v1/peer.proto for the field numbers). */
#include "peer_msg.h"

#include <stdio.h>
#include <string.h>

/* PeerEnvelope fields */
enum {
    F_KIND = 1,
    F_SENDER = 2,
    F_RING_HASH = 3,
    F_ANNOUNCE = 4,
    F_TRACES = 5,
    F_DECISIONS = 6,
    F_NOT_SAMPLED = 7,
    F_DEADLINE = 8,
};
/* TraceState fields */
enum { T_ID = 1, T_AGE = 2, T_ROOT_AGE = 3, T_FLAGS = 4 };
/* Decision fields */
enum { D_ID = 1, D_POLICY = 2, D_COUNT = 3 };

/* ---- writing ------------------------------------------------------------------------------ */

void rt_peer_env_writer_init(rt_peer_env_writer *w)
{
    memset(w, 0, sizeof *w);
    rt_buf_init(&w->head);
    rt_buf_init(&w->not_sampled);
}

void rt_peer_env_writer_free(rt_peer_env_writer *w)
{
    rt_buf_free(&w->head);
    rt_buf_free(&w->not_sampled);
}

void rt_peer_env_begin(rt_peer_env_writer *w, rt_peer_kind kind, const char *sender,
                       uint64_t ring_hash)
{
    rt_buf_reset(&w->head);
    rt_buf_reset(&w->not_sampled);
    w->traces = w->decisions = 0;
    rt_pb_append_tag(&w->head, F_KIND, RT_PB_WT_VARINT);
    rt_pb_append_varint(&w->head, (uint64_t)kind);
    if (sender && sender[0]) {
        rt_pb_append_len_field(&w->head, F_SENDER, sender, strlen(sender));
    }
    rt_pb_append_tag(&w->head, F_RING_HASH, RT_PB_WT_FIXED64);
    rt_pb_append_fixed64(&w->head, ring_hash);
}

void rt_peer_env_announce(rt_peer_env_writer *w, rt_peer_announce a)
{
    rt_pb_append_tag(&w->head, F_ANNOUNCE, RT_PB_WT_VARINT);
    rt_pb_append_varint(&w->head, (uint64_t)a);
}

void rt_peer_env_deadline(rt_peer_env_writer *w, uint64_t unix_ns)
{
    rt_pb_append_tag(&w->head, F_DEADLINE, RT_PB_WT_FIXED64);
    rt_pb_append_fixed64(&w->head, unix_ns);
}

void rt_peer_env_trace(rt_peer_env_writer *w, const rt_peer_trace *t)
{
    size_t body =
        rt_pb_len_field_size(T_ID, 16) + rt_pb_tag_size(T_AGE) + rt_pb_varint_size(t->age_ns);
    if (t->flags & RT_PEER_TS_ROOT) {
        body += rt_pb_tag_size(T_ROOT_AGE) + rt_pb_varint_size(t->root_age_ns);
    }
    if (t->flags) {
        body += rt_pb_tag_size(T_FLAGS) + rt_pb_varint_size(t->flags);
    }
    rt_pb_append_len_prefix(&w->head, F_TRACES, body);
    rt_pb_append_len_field(&w->head, T_ID, t->trace_id, 16);
    rt_pb_append_tag(&w->head, T_AGE, RT_PB_WT_VARINT);
    rt_pb_append_varint(&w->head, t->age_ns);
    if (t->flags & RT_PEER_TS_ROOT) {
        rt_pb_append_tag(&w->head, T_ROOT_AGE, RT_PB_WT_VARINT);
        rt_pb_append_varint(&w->head, t->root_age_ns);
    }
    if (t->flags) {
        rt_pb_append_tag(&w->head, T_FLAGS, RT_PB_WT_VARINT);
        rt_pb_append_varint(&w->head, t->flags);
    }
    w->traces++;
}

void rt_peer_env_decision(rt_peer_env_writer *w, const uint8_t trace_id[16], bool sampled,
                          const char *policy, double count)
{
    w->decisions++;
    if (!sampled) {
        rt_buf_append(&w->not_sampled, trace_id, 16);
        return;
    }
    size_t plen = policy ? strlen(policy) : 0;
    if (plen > RT_PEER_POLICY_MAX) {
        plen = RT_PEER_POLICY_MAX;
    }
    size_t body =
        rt_pb_len_field_size(D_ID, 16) + (plen ? rt_pb_len_field_size(D_POLICY, plen) : 0);
    if (count != 0.0) {
        body += rt_pb_tag_size(D_COUNT) + 8;
    }
    rt_pb_append_len_prefix(&w->head, F_DECISIONS, body);
    rt_pb_append_len_field(&w->head, D_ID, trace_id, 16);
    if (plen) {
        rt_pb_append_len_field(&w->head, D_POLICY, policy, plen);
    }
    if (count != 0.0) {
        uint64_t bits;
        memcpy(&bits, &count, 8);
        rt_pb_append_tag(&w->head, D_COUNT, RT_PB_WT_FIXED64);
        rt_pb_append_fixed64(&w->head, bits);
    }
}

static size_t env_body_size(const rt_peer_env_writer *w)
{
    size_t n = w->head.len;
    if (w->not_sampled.len) {
        n += rt_pb_len_field_size(F_NOT_SAMPLED, w->not_sampled.len);
    }
    return n;
}

size_t rt_peer_env_size(const rt_peer_env_writer *w)
{
    return rt_pb_len_field_size(RT_PEER_FIELD, env_body_size(w));
}

void rt_peer_env_finish(rt_peer_env_writer *w, rt_buf *req)
{
    rt_pb_append_len_prefix(req, RT_PEER_FIELD, env_body_size(w));
    rt_buf_append(req, w->head.data, w->head.len);
    if (w->not_sampled.len) {
        rt_pb_append_len_field(req, F_NOT_SAMPLED, w->not_sampled.data, w->not_sampled.len);
    }
    rt_buf_reset(&w->head);
    rt_buf_reset(&w->not_sampled);
    w->traces = w->decisions = 0;
}

/* ---- reading ------------------------------------------------------------------------------ */

/* The 16-byte trace_id (field 1 of TraceState and Decision) at *pos; 0, or -1. */
static int read_trace_id(rt_pb_slice m, size_t *pos, uint8_t out[16])
{
    rt_pb_slice s;
    if (rt_pb_read_len(m.p, m.len, pos, &s) != 0 || s.len != 16) {
        return -1;
    }
    memcpy(out, s.p, 16);
    return 0;
}

/* Read one TraceState / Decision message; 0 or -1 with a reason. */
static int read_trace(rt_pb_slice m, rt_peer_trace *out, const char **why)
{
    memset(out, 0, sizeof *out);
    bool have_id = false;
    size_t pos = 0;
    while (pos < m.len) {
        uint32_t f;
        int wt;
        if (rt_pb_read_tag(m.p, m.len, &pos, &f, &wt) != 0) {
            *why = "TraceState: bad tag";
            return -1;
        }
        uint64_t v;
        if (f == T_ID && wt == RT_PB_WT_LEN) {
            if (read_trace_id(m, &pos, out->trace_id) != 0) {
                *why = "TraceState.trace_id: not 16 bytes";
                return -1;
            }
            have_id = true;
        } else if ((f == T_AGE || f == T_ROOT_AGE || f == T_FLAGS) && wt == RT_PB_WT_VARINT) {
            if (rt_pb_read_varint(m.p, m.len, &pos, &v) != 0) {
                *why = "TraceState: bad varint";
                return -1;
            }
            if (f == T_AGE) {
                out->age_ns = v;
            } else if (f == T_ROOT_AGE) {
                out->root_age_ns = v;
            } else {
                out->flags = (uint32_t)v;
            }
        } else if (f <= T_FLAGS) {
            *why = "TraceState: wrong wire type";
            return -1;
        } else if (rt_pb_skip(m.p, m.len, &pos, wt) != 0) {
            *why = "TraceState: truncated field";
            return -1;
        }
    }
    if (!have_id) {
        *why = "TraceState: no trace_id";
        return -1;
    }
    return 0;
}

static int read_decision(rt_pb_slice m, rt_peer_decision *out, const char **why)
{
    memset(out, 0, sizeof *out);
    out->sampled = true;
    out->policy = (rt_pb_slice){(const uint8_t *)"", 0};
    bool have_id = false;
    size_t pos = 0;
    while (pos < m.len) {
        uint32_t f;
        int wt;
        if (rt_pb_read_tag(m.p, m.len, &pos, &f, &wt) != 0) {
            *why = "Decision: bad tag";
            return -1;
        }
        rt_pb_slice s;
        if (f == D_ID && wt == RT_PB_WT_LEN) {
            if (read_trace_id(m, &pos, out->trace_id) != 0) {
                *why = "Decision.trace_id: not 16 bytes";
                return -1;
            }
            have_id = true;
        } else if (f == D_POLICY && wt == RT_PB_WT_LEN) {
            if (rt_pb_read_len(m.p, m.len, &pos, &s) != 0 || s.len > RT_PEER_POLICY_MAX) {
                *why = "Decision.policy: truncated or too long";
                return -1;
            }
            out->policy = s;
        } else if (f == D_COUNT && wt == RT_PB_WT_FIXED64) {
            uint64_t bits;
            if (rt_pb_read_fixed64(m.p, m.len, &pos, &bits) != 0) {
                *why = "Decision.adjusted_count: truncated";
                return -1;
            }
            memcpy(&out->count, &bits, 8);
            if (!(out->count >= 0.0)) { /* also refuses NaN */
                *why = "Decision.adjusted_count: negative or NaN";
                return -1;
            }
        } else if (f <= D_COUNT) {
            *why = "Decision: wrong wire type";
            return -1;
        } else if (rt_pb_skip(m.p, m.len, &pos, wt) != 0) {
            *why = "Decision: truncated field";
            return -1;
        }
    }
    if (!have_id) {
        *why = "Decision: no trace_id";
        return -1;
    }
    return 0;
}

/* Check the envelope `m` and fill env. */
static int read_env(rt_pb_slice m, rt_peer_env *env, const char **why)
{
    size_t pos = 0;
    while (pos < m.len) {
        uint32_t f;
        int wt;
        if (rt_pb_read_tag(m.p, m.len, &pos, &f, &wt) != 0) {
            *why = "bad tag";
            return -1;
        }
        uint64_t v;
        rt_pb_slice s;
        switch (f) {
        case F_KIND:
        case F_ANNOUNCE:
            if (wt != RT_PB_WT_VARINT || rt_pb_read_varint(m.p, m.len, &pos, &v) != 0) {
                *why = f == F_KIND ? "kind: not a varint" : "announce: not a varint";
                return -1;
            }
            if (f == F_KIND) {
                if (v < RT_PEER_FORWARD || v > RT_PEER_ROUTED) {
                    *why = "kind: unknown";
                    return -1;
                }
                env->kind = (rt_peer_kind)v;
            } else {
                env->announce =
                    v <= RT_PEER_ANNOUNCE_LEAVING ? (rt_peer_announce)v : RT_PEER_ANNOUNCE_NONE;
            }
            break;
        case F_SENDER:
            if (wt != RT_PB_WT_LEN || rt_pb_read_len(m.p, m.len, &pos, &s) != 0) {
                *why = "sender: not a string";
                return -1;
            }
            env->sender = s;
            break;
        case F_RING_HASH:
        case F_DEADLINE:
            if (wt != RT_PB_WT_FIXED64 || rt_pb_read_fixed64(m.p, m.len, &pos, &v) != 0) {
                *why = f == F_RING_HASH ? "ring_hash: not a fixed64"
                                        : "deadline_unix_ns: not a fixed64";
                return -1;
            }
            if (f == F_RING_HASH) {
                env->ring_hash = v;
            } else {
                env->deadline_unix_ns = v;
            }
            break;
        case F_TRACES:
        case F_DECISIONS: {
            if (wt != RT_PB_WT_LEN || rt_pb_read_len(m.p, m.len, &pos, &s) != 0) {
                *why = f == F_TRACES ? "traces: truncated" : "decisions: truncated";
                return -1;
            }
            if (f == F_TRACES) {
                rt_peer_trace t;
                if (read_trace(s, &t, why) != 0) {
                    return -1;
                }
                env->n_traces++;
            } else {
                rt_peer_decision d;
                if (read_decision(s, &d, why) != 0) {
                    return -1;
                }
                env->n_decisions++;
            }
            break;
        }
        case F_NOT_SAMPLED:
            if (wt != RT_PB_WT_LEN || rt_pb_read_len(m.p, m.len, &pos, &s) != 0 ||
                s.len % 16 != 0) {
                *why = "not_sampled_ids: not a whole number of 16-byte ids";
                return -1;
            }
            env->not_sampled = s;
            break;
        default:
            if (rt_pb_skip(m.p, m.len, &pos, wt) != 0) {
                *why = "truncated field";
                return -1;
            }
        }
    }
    if (env->kind == RT_PEER_NONE) {
        *why = "kind: missing";
        return -1;
    }
    env->n_decisions += env->not_sampled.len / 16;
    return 0;
}

int rt_peer_env_read(const uint8_t *req, size_t len, rt_peer_env *env, char *err, size_t errlen)
{
    memset(env, 0, sizeof *env);
    rt_pb_slice found = {NULL, 0};
    size_t pos = 0;
    while (pos < len) {
        size_t at = pos;
        uint32_t f;
        int wt;
        if (rt_pb_read_tag(req, len, &pos, &f, &wt) != 0 || rt_pb_skip(req, len, &pos, wt) != 0) {
            snprintf(err, errlen, "request: malformed field at byte %zu", at);
            return -1;
        }
        if (f == RT_PEER_FIELD) {
            if (wt != RT_PB_WT_LEN) {
                snprintf(err, errlen, "ringtail peer envelope (field %u): wrong wire type %d",
                         RT_PEER_FIELD, wt);
                return -1;
            }
            size_t p = at;
            rt_pb_read_tag(req, len, &p, &f, &wt);
            rt_pb_read_len(req, len, &p, &found);
        }
    }
    if (found.p == NULL) {
        return 0;
    }
    const char *why = "";
    rt_peer_env e;
    memset(&e, 0, sizeof e);
    e.body = found;
    if (read_env(found, &e, &why) != 0) {
        snprintf(err, errlen, "ringtail peer envelope (field %u): %s", RT_PEER_FIELD, why);
        return -1;
    }
    *env = e;
    return 0;
}

/* Next field `want` (LEN) of the envelope body from *pos. */
static int next_len(const rt_peer_env *env, size_t *pos, uint32_t want, rt_pb_slice *out)
{
    const rt_pb_slice m = env->body;
    while (*pos < m.len) {
        uint32_t f;
        int wt;
        if (rt_pb_read_tag(m.p, m.len, pos, &f, &wt) != 0) {
            return 0;
        }
        if (f == want && wt == RT_PB_WT_LEN) {
            return rt_pb_read_len(m.p, m.len, pos, out) == 0;
        }
        if (rt_pb_skip(m.p, m.len, pos, wt) != 0) {
            return 0;
        }
    }
    return 0;
}

int rt_peer_env_next_trace(const rt_peer_env *env, size_t *pos, rt_peer_trace *out)
{
    rt_pb_slice s;
    const char *why;
    while (next_len(env, pos, F_TRACES, &s)) {
        if (read_trace(s, out, &why) == 0) {
            return 1;
        }
    }
    return 0;
}

int rt_peer_env_next_decision(const rt_peer_env *env, size_t *pos, rt_peer_decision *out)
{
    const char *why;
    /* Positions up to body.len walk the sampled decisions; past it, the not-sampled ids. */
    if (*pos <= env->body.len) {
        rt_pb_slice s;
        while (next_len(env, pos, F_DECISIONS, &s)) {
            if (read_decision(s, out, &why) == 0) {
                return 1;
            }
        }
        *pos = env->body.len + 1;
    }
    size_t i = *pos - env->body.len - 1;
    if (i + 16 > env->not_sampled.len) {
        return 0;
    }
    memset(out, 0, sizeof *out);
    memcpy(out->trace_id, env->not_sampled.p + i, 16);
    out->sampled = false;
    out->policy = (rt_pb_slice){(const uint8_t *)"", 0};
    *pos += 16;
    return 1;
}
