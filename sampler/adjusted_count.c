/* adjusted_count.c - adjusted counts as OTel thresholds (`ot=th:<hex>`) and the rewrite of a kept
 * span's W3C tracestate (see adjusted_count.h for the rules). */
#include "adjusted_count.h"
#include "base64.h"

#include <math.h>
#include <string.h>

/* W3C allows at most this many list members in one tracestate. */
#define TS_MAX_MEMBERS 32

/* 14 hex digits hold the 56-bit threshold. */
#define TH_DIGITS 14

/* A borrowed byte range of the caller's input. */
typedef struct slice {
    const uint8_t *p;
    size_t n;
} slice;

uint64_t rt_adj_threshold(double count)
{
    /* !(count > 1) also catches NaN. */
    if (!(count > 1.0)) {
        return 0;
    }
    /* 2^56 * probability. long double (64-bit mantissa on x86-64, quad elsewhere) makes this
     * the exactly rounded quotient: in double, 2^56 / count is off by up to 4 units above 2^53. */
    long double keep = roundl((long double)RT_ADJ_MAX_THRESHOLD / count);
    if (keep >= (long double)RT_ADJ_MAX_THRESHOLD) {
        return 0;
    }
    if (keep < 1.0L) {
        return RT_ADJ_MAX_THRESHOLD - 1; /* the smallest probability 56 bits can say */
    }
    return RT_ADJ_MAX_THRESHOLD - (uint64_t)keep;
}

double rt_adj_count(uint64_t threshold)
{
    if (threshold >= RT_ADJ_MAX_THRESHOLD) {
        threshold = RT_ADJ_MAX_THRESHOLD - 1;
    }
    return (double)RT_ADJ_MAX_THRESHOLD / (double)(RT_ADJ_MAX_THRESHOLD - threshold);
}

size_t rt_adj_threshold_hex(uint64_t threshold, char out[15])
{
    static const char digits[] = "0123456789abcdef";
    if (threshold >= RT_ADJ_MAX_THRESHOLD) {
        threshold = RT_ADJ_MAX_THRESHOLD - 1;
    }
    if (threshold == 0) {
        out[0] = '0';
        out[1] = '\0';
        return 1;
    }
    for (int i = TH_DIGITS - 1; i >= 0; i--) {
        out[i] = digits[threshold & 0xf];
        threshold >>= 4;
    }
    size_t n = TH_DIGITS;
    while (out[n - 1] == '0') { /* threshold != 0, so some digit is not '0' */
        n--;
    }
    out[n] = '\0';
    return n;
}

bool rt_adj_threshold_parse(const char *hex, size_t len, uint64_t *threshold)
{
    if (len == 0 || len > TH_DIGITS) {
        return false;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        int d = rt_hex_digit((uint8_t)hex[i]);
        if (d < 0) {
            return false;
        }
        v = (v << 4) | (uint64_t)d;
    }
    *threshold = v << (4 * (TH_DIGITS - len)); /* missing digits are trailing zeros */
    return true;
}

/* --- tracestate ------------------------------------------------------------------------------ */

static bool is_ows(uint8_t c)
{
    return c == ' ' || c == '\t';
}

static slice trim_ows(slice s)
{
    while (s.n > 0 && is_ows(s.p[0])) {
        s.p++;
        s.n--;
    }
    while (s.n > 0 && is_ows(s.p[s.n - 1])) {
        s.n--;
    }
    return s;
}

/* Cut the next `sep`-separated piece of `*rest` into `*piece`; false once `*rest` is used up.
 * A trailing separator yields one final empty piece, as splitting does. */
static bool next_piece(slice *rest, uint8_t sep, bool *more, slice *piece)
{
    if (!*more) {
        return false;
    }
    const uint8_t *end = rest->n ? memchr(rest->p, sep, rest->n) : NULL;
    if (end) {
        piece->p = rest->p;
        piece->n = (size_t)(end - rest->p);
        rest->n -= piece->n + 1;
        rest->p = end + 1;
    } else {
        *piece = *rest;
        rest->p += rest->n;
        rest->n = 0;
        *more = false;
    }
    return true;
}

static bool slice_eq(slice s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && memcmp(s.p, lit, n) == 0;
}

/* The list member `m` (already trimmed) is the OTel one: key exactly "ot". */
static bool member_is_ot(slice m)
{
    return m.n >= 3 && m.p[0] == 'o' && m.p[1] == 't' && m.p[2] == '=';
}

/* An OTel sub-key: lcalpha *(lcalpha / DIGIT). */
static bool ot_key_ok(slice k)
{
    if (k.n == 0 || !(k.p[0] >= 'a' && k.p[0] <= 'z')) {
        return false;
    }
    for (size_t i = 1; i < k.n; i++) {
        uint8_t c = k.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
            return false;
        }
    }
    return true;
}

/* An OTel sub-value: *(ALPHA / DIGIT / "." / "_" / "-"). */
static bool ot_value_ok(slice v)
{
    for (size_t i = 0; i < v.n; i++) {
        uint8_t c = v.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            return false;
        }
    }
    return true;
}

/* rv is exactly 14 hex digits. */
static bool rv_value_ok(slice v)
{
    if (v.n != TH_DIGITS) {
        return false;
    }
    for (size_t i = 0; i < v.n; i++) {
        if (rt_hex_digit(v.p[i]) < 0) {
            return false;
        }
    }
    return true;
}

/* Split one sub-member "key:value" at its first ':'. False when there is no ':'. */
static bool split_sub(slice sub, slice *key, slice *val)
{
    const uint8_t *colon = sub.n ? memchr(sub.p, ':', sub.n) : NULL;
    if (!colon) {
        return false;
    }
    key->p = sub.p;
    key->n = (size_t)(colon - sub.p);
    val->p = colon + 1;
    val->n = sub.n - key->n - 1;
    return true;
}

/* What the existing `ot` value says. */
typedef struct ot_info {
    bool present;    /* the tracestate has an ot member (the left-most one is used) */
    bool keep_subs;  /* well-formed with a parsable (or no) th: copy its non-th sub-keys */
    bool th_valid;   /* keep_subs and it carries a th, parsed into th */
    uint64_t th;     /* the earlier stage's threshold when th_valid */
    size_t n_non_th; /* keep_subs: sub-keys other than th */
    slice rv;        /* !keep_subs: the whole "rv:<14 hex>" sub-member to keep, or n == 0 */
} ot_info;

/* Classify the ot value `v` (the bytes after "ot="). Well-formed means every ';'-separated piece
 * is key:value by the OTel grammar, with th and rv at most once each. */
static void ot_analyse(slice v, ot_info *info)
{
    bool wellformed = v.n > 0;
    size_t n_th = 0, n_rv = 0, n_non_th = 0;
    slice th_val = {NULL, 0}, rv_sub = {NULL, 0};
    bool rv_good = false;

    slice rest = v, sub;
    bool more = true;
    while (next_piece(&rest, ';', &more, &sub)) {
        slice key = {NULL, 0}, val = {NULL, 0};
        if (!split_sub(sub, &key, &val) || !ot_key_ok(key) || !ot_value_ok(val)) {
            wellformed = false;
            /* still look for an rv in a malformed value: it is worth keeping when unambiguous */
            if (split_sub(sub, &key, &val) && slice_eq(key, "rv")) {
                n_rv++;
            }
            continue;
        }
        if (slice_eq(key, "th")) {
            n_th++;
            th_val = val;
            continue;
        }
        n_non_th++;
        if (slice_eq(key, "rv")) {
            n_rv++;
            rv_sub = sub;
            rv_good = rv_value_ok(val);
        }
    }
    if (n_rv > 1) {
        wellformed = false; /* which randomness is meant is unknowable */
    }

    info->present = true;
    info->th_valid = false;
    info->keep_subs = false;
    info->n_non_th = 0;
    info->rv.p = NULL;
    info->rv.n = 0;
    if (wellformed && n_th <= 1) {
        if (n_th == 0) {
            info->keep_subs = true;
        } else if (rt_adj_threshold_parse((const char *)th_val.p, th_val.n, &info->th)) {
            info->keep_subs = true;
            info->th_valid = true;
        }
    }
    if (info->keep_subs) {
        info->n_non_th = n_non_th;
    } else if (n_rv == 1 && rv_good) {
        info->rv = rv_sub;
    }
}

/* The threshold of a stage with count `count` (> 1 or == 1) after an earlier stage with
 * threshold t0: keep probability (2^56 - t0) / 2^56 divided by count, never below t0. */
static uint64_t threshold_after(uint64_t t0, double count)
{
    if (count == 1.0) {
        return t0;
    }
    uint64_t d0 = RT_ADJ_MAX_THRESHOLD - t0;
    long double keep = roundl((long double)d0 / count); /* long double: see rt_adj_threshold */
    uint64_t d = keep < 1.0L ? 1 : (uint64_t)keep;
    if (d > d0) {
        d = d0; /* a later stage never lowers T, whatever the rounding */
    }
    return RT_ADJ_MAX_THRESHOLD - d;
}

static void append_sep(rt_buf *out, size_t start, uint8_t sep)
{
    if (out->len > start) {
        rt_buf_append_byte(out, sep);
    }
}

/* Append the new ot member ("ot=th:..;..." or, with no threshold, "ot=<kept sub-keys>"). The
 * caller decided it is not empty. */
static void write_ot(rt_buf *out, size_t start, const ot_info *info, slice ot_value, bool have_th,
                     uint64_t t)
{
    append_sep(out, start, ',');
    rt_buf_append(out, "ot=", 3);
    size_t vstart = out->len;
    if (have_th) {
        char hex[15];
        size_t n = rt_adj_threshold_hex(t, hex);
        rt_buf_append(out, "th:", 3);
        rt_buf_append(out, hex, n);
    }
    if (!info->present) {
        return;
    }
    if (info->keep_subs) {
        slice rest = ot_value, sub;
        bool more = true;
        while (next_piece(&rest, ';', &more, &sub)) {
            slice key = {NULL, 0}, val = {NULL, 0};
            split_sub(sub, &key, &val); /* well-formed: cannot fail */
            if (slice_eq(key, "th")) {
                continue;
            }
            append_sep(out, vstart, ';');
            rt_buf_append(out, sub.p, sub.n);
        }
    } else if (info->rv.n > 0) {
        append_sep(out, vstart, ';');
        rt_buf_append(out, info->rv.p, info->rv.n);
    }
}

/* The rewrite walks `in` twice without copying it: once to find the left-most ot member, once
 * to write. Sub-key order in the new ot value: th first (as the OTel
 * collector writes it), then every other kept sub-key in its original order. Later duplicate ot
 * members (invalid W3C) are dropped so the output has unique keys. */
double rt_adj_tracestate_rewrite(const uint8_t *in, size_t len, double count, rt_buf *out)
{
    bool known = !(isnan(count) || count <= 0.0);
    if (known && count < 1.0) {
        count = 1.0; /* a stage cannot stand for fewer spans than it kept */
    }

    /* Pass 1: find the left-most ot member. */
    ot_info info = {0};
    slice ot_value = {NULL, 0};
    slice rest = {in, len}, m;
    bool more = len > 0;
    while (next_piece(&rest, ',', &more, &m)) {
        m = trim_ows(m);
        if (member_is_ot(m) && !info.present) {
            ot_value.p = m.p + 3;
            ot_value.n = m.n - 3;
            ot_analyse(ot_value, &info);
        }
    }

    /* The threshold to write and the count to return. */
    double combined = RT_ADJ_UNKNOWN;
    uint64_t t = 0;
    if (known) {
        if (info.th_valid) {
            t = threshold_after(info.th, count);
            combined = count * rt_adj_count(info.th);
        } else {
            t = rt_adj_threshold(count);
            combined = count;
        }
        if (combined > (double)RT_ADJ_MAX_THRESHOLD) {
            combined = (double)RT_ADJ_MAX_THRESHOLD; /* what 56 bits of threshold can say */
        }
    }
    bool write_ot_member;
    if (known) {
        write_ot_member = true;
    } else if (info.keep_subs) {
        write_ot_member = info.n_non_th > 0;
    } else {
        write_ot_member = info.rv.n > 0;
    }

    /* Pass 2: write. */
    rt_buf_reserve(out, len + 24);
    size_t start = out->len;
    size_t budget = TS_MAX_MEMBERS;
    if (write_ot_member) {
        write_ot(out, start, &info, ot_value, known, t);
        budget--;
    }
    rest.p = in;
    rest.n = len;
    more = len > 0;
    while (budget > 0 && next_piece(&rest, ',', &more, &m)) {
        m = trim_ows(m);
        if (m.n == 0 || member_is_ot(m)) {
            continue;
        }
        append_sep(out, start, ',');
        rt_buf_append(out, m.p, m.n);
        budget--;
    }
    return combined;
}
