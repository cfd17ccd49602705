// compare.js - the checking half of the SDK interop test: reads what rt-otlp-dump wrote (one
// OTLP/JSON ExportTraceServiceRequest per line) and the SDK's own record written by send.js,
// and checks that every span of the run arrived exactly once with every field intact.
//
//   node compare.js --expect FILE --dump FILE [--wait-ms N] [--label NAME]
//
// The run's spans are those under a resource whose "interop.run_id" equals the expectation's
// run id. Prints one summary line and exits 0 when all is intact; otherwise prints every
// difference (path, expected, got) and exits 1. Exit 2 on bad arguments or unreadable files.
//
// The expectation holds SDK values; they are mapped to OTLP the way the JS exporters document
// and implement it (otlp-transformer): span kind = API kind + 1; status codes are equal;
// flags = W3C trace flags | 0x100 (has-is-remote) | 0x200 if the parent/link is remote;
// a JS number is an intValue when Number.isInteger() and a doubleValue otherwise; null inside
// an array is an empty AnyValue; a missing version/message/tracestate is the empty string.
// One loss is the SDK's own: the JSON exporter writes intValue as a JSON number in JavaScript's
// shortest round-trip form, so 2^62 goes out as 4611686018427388000; for that exporter the
// expected integer is that decimal, for proto and gRPC it is the exact value.
// The dump side is read by the rt-otlp-dump contract: hex lowercase ids, enums as integers,
// 64-bit integers as decimal strings, absent fields meaning their proto3 defaults.
'use strict';

const fs = require('node:fs');

const MAX_REPORTED = 200;

function usage(msg) {
    process.stderr.write(`compare.js: ${msg}\n`);
    process.stderr.write(
        'usage: node compare.js --expect FILE --dump FILE [--wait-ms N] [--label NAME]\n');
    process.exit(2);
}

function parseArgs(argv) {
    const opts = {waitMs: 5000};
    const names =
        {'--expect': 'expect', '--dump': 'dump', '--wait-ms': 'waitMs', '--label': 'label'};
    for (let i = 0; i < argv.length; i += 2) {
        const name = names[argv[i]];
        if (!name || i + 1 >= argv.length) {
            usage(`unknown or incomplete option "${argv[i]}"`);
        }
        opts[name] = argv[i + 1];
    }
    if (!opts.expect || !opts.dump) {
        usage('--expect and --dump are required');
    }
    opts.waitMs = Number(opts.waitMs);
    if (!Number.isFinite(opts.waitMs) || opts.waitMs < 0) {
        usage('--wait-ms must be a non-negative number');
    }
    return opts;
}

// ---- canonical values ------------------------------------------------------------------------
// Both sides become the same plain shapes: AnyValue -> {t: kind, v: value}, where ints are
// decimal strings, doubles numbers, arrays lists of AnyValue, kvlists lists of {key, value}.

const INT64_MIN = -(2 ** 63);
const INT64_LIMIT = 2 ** 63;

function expectedAnyValue(v, ints) {
    if (v === null || v === undefined) {
        return {t: 'empty'};
    }
    if (typeof v === 'string') {
        return {t: 'string', v};
    }
    if (typeof v === 'boolean') {
        return {t: 'bool', v};
    }
    if (typeof v === 'number') {
        if (Number.isInteger(v) && v >= INT64_MIN && v < INT64_LIMIT) {
            return {t: 'int', v: ints(v)};
        }
        return {t: 'double', v};
    }
    if (Array.isArray(v)) {
        return {t: 'array', v: v.map(x => expectedAnyValue(x, ints))};
    }
    throw new Error(`expectation holds an attribute value of unexpected type ${typeof v}`);
}

function expectedAttributes(attrs, ints) {
    const out = new Map();
    for (const key of Object.keys(attrs || {})) {
        out.set(key, expectedAnyValue(attrs[key], ints));
    }
    return out;
}

function hrToNanos(t) {
    return (BigInt(t[0]) * 1000000000n + BigInt(t[1])).toString();
}

function spanFlags(traceFlags, isRemote) {
    return ((traceFlags & 0xff) | 0x100 | (isRemote ? 0x200 : 0)) >>> 0;
}

// `ints` renders an integral JS number as the decimal the exporter puts on the wire.
function expectedSpan(s, ints) {
    const attributes = a => expectedAttributes(a, ints);
    return {
        traceId: s.traceId,
        spanId: s.spanId,
        traceState: s.traceState,
        parentSpanId: s.parentSpanId,
        flags: spanFlags(s.traceFlags, s.parentIsRemote),
        name: s.name,
        kind: s.kind + 1,
        startTimeUnixNano: hrToNanos(s.startTime),
        endTimeUnixNano: hrToNanos(s.endTime),
        attributes: attributes(s.attributes),
        droppedAttributesCount: s.droppedAttributesCount,
        events: s.events.map(e => ({
                                 timeUnixNano: hrToNanos(e.time),
                                 name: e.name,
                                 attributes: attributes(e.attributes),
                                 droppedAttributesCount: e.droppedAttributesCount,
                             })),
        droppedEventsCount: s.droppedEventsCount,
        links: s.links.map(l => ({
                               traceId: l.context.traceId,
                               spanId: l.context.spanId,
                               traceState: l.context.traceState,
                               flags: spanFlags(l.context.traceFlags, l.context.isRemote),
                               attributes: attributes(l.attributes),
                               droppedAttributesCount: l.droppedAttributesCount,
                           })),
        droppedLinksCount: s.droppedLinksCount,
        status: {code: s.status.code, message: s.status.message},
        resource: {
            attributes: attributes(s.resource.attributes),
            droppedAttributesCount: 0,
            schemaUrl: s.resource.schemaUrl,
        },
        scope: {
            name: s.scope.name,
            version: s.scope.version,
            attributes: new Map(),
            droppedAttributesCount: 0,
            schemaUrl: s.scope.schemaUrl,
        },
    };
}

// Reading the dump: every deviation from the contract's encoding is a problem reported under
// the field's path, and the value read as well as can be so the comparison still runs.
class DumpReader {
    constructor(problems) {
        this.problems = problems;
    }

    bad(path, msg) {
        this.problems.push(`${path}: ${msg}`);
    }

    str(obj, key, path) {
        const v = obj[key];
        if (v === undefined) {
            return '';
        }
        if (typeof v !== 'string') {
            this.bad(`${path}.${key}`, `expected a string, got ${JSON.stringify(v)}`);
            return String(v);
        }
        return v;
    }

    hexId(obj, key, path, len, optional) {
        const v = this.str(obj, key, path);
        if (v === '' && optional) {
            return '';
        }
        if (!new RegExp(`^[0-9a-f]{${len}}$`).test(v)) {
            this.bad(
                `${path}.${key}`, `expected ${len} lowercase hex digits, got ${JSON.stringify(v)}`);
        }
        return v.toLowerCase();
    }

    uint(obj, key, path) {
        const v = obj[key];
        if (v === undefined) {
            return 0;
        }
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
            this.bad(`${path}.${key}`, `expected a non-negative integer, got ${JSON.stringify(v)}`);
            return Number(v);
        }
        return v;
    }

    // 64-bit integers: the contract says decimal strings.
    int64(obj, key, path, unsigned) {
        const v = obj[key];
        if (v === undefined) {
            return '0';
        }
        const re = unsigned ? /^(0|[1-9][0-9]*)$/ : /^(0|-?[1-9][0-9]*)$/;
        if (typeof v !== 'string' || !re.test(v)) {
            this.bad(
                `${path}.${key}`,
                `expected a decimal string (64-bit integer), got ${JSON.stringify(v)}`);
            return String(v);
        }
        return v;
    }

    list(obj, key, path) {
        const v = obj[key];
        if (v === undefined) {
            return [];
        }
        if (!Array.isArray(v)) {
            this.bad(`${path}.${key}`, `expected an array, got ${JSON.stringify(v)}`);
            return [];
        }
        return v;
    }

    anyValue(av, path) {
        if (av === undefined || av === null) {
            return {t: 'empty'};
        }
        const keys = Object.keys(av);
        if (keys.length > 1) {
            this.bad(path, `AnyValue has more than one value: ${keys.join(', ')}`);
        }
        if (keys.length === 0) {
            return {t: 'empty'};
        }
        const k = keys[0];
        const v = av[k];
        switch (k) {
            case 'stringValue':
                return {t: 'string', v: this.str(av, k, path)};
            case 'boolValue':
                if (typeof v !== 'boolean') {
                    this.bad(
                        `${path}.boolValue`, `expected true or false, got ${JSON.stringify(v)}`);
                }
                return {t: 'bool', v};
            case 'intValue':
                return {t: 'int', v: this.int64(av, k, path, false)};
            case 'doubleValue':
                if (typeof v !== 'number') {
                    this.bad(
                        `${path}.doubleValue`, `expected a JSON number, got ${JSON.stringify(v)}`);
                }
                return {t: 'double', v};
            case 'arrayValue':
                return {
                    t: 'array',
                    v: this.list(v || {}, 'values', `${path}.arrayValue`)
                           .map((x, i) => this.anyValue(x, `${path}.arrayValue.values[${i}]`)),
                };
            case 'kvlistValue':
                return {t: 'kvlist', v: this.attributes(v || {}, 'values', `${path}.kvlistValue`)};
            case 'bytesValue':
                return {t: 'bytes', v: this.str(av, k, path)};
            default:
                this.bad(path, `unknown AnyValue field "${k}"`);
                return {t: 'unknown', v};
        }
    }

    // KeyValue list -> Map; a key seen twice is a problem of its own.
    attributes(obj, key, path) {
        const out = new Map();
        this.list(obj, key, path).forEach((kv, i) => {
            const p = `${path}.${key}[${i}]`;
            const k = this.str(kv, 'key', p);
            if (out.has(k)) {
                this.bad(p, `attribute key "${k}" appears more than once`);
            }
            out.set(k, this.anyValue(kv.value, `${p}{${k}}`));
        });
        return out;
    }

    status(obj, path) {
        const st = obj.status || {};
        return {
            code: this.uint(st, 'code', `${path}.status`),
            message: this.str(st, 'message', `${path}.status`)
        };
    }

    span(sp, path, resource, scope) {
        return {
            traceId: this.hexId(sp, 'traceId', path, 32, false),
            spanId: this.hexId(sp, 'spanId', path, 16, false),
            traceState: this.str(sp, 'traceState', path),
            parentSpanId: this.hexId(sp, 'parentSpanId', path, 16, true),
            flags: this.uint(sp, 'flags', path),
            name: this.str(sp, 'name', path),
            kind: this.uint(sp, 'kind', path),
            startTimeUnixNano: this.int64(sp, 'startTimeUnixNano', path, true),
            endTimeUnixNano: this.int64(sp, 'endTimeUnixNano', path, true),
            attributes: this.attributes(sp, 'attributes', path),
            droppedAttributesCount: this.uint(sp, 'droppedAttributesCount', path),
            events: this.list(sp, 'events', path).map((e, i) => {
                const p = `${path}.events[${i}]`;
                return {
                    timeUnixNano: this.int64(e, 'timeUnixNano', p, true),
                    name: this.str(e, 'name', p),
                    attributes: this.attributes(e, 'attributes', p),
                    droppedAttributesCount: this.uint(e, 'droppedAttributesCount', p),
                };
            }),
            droppedEventsCount: this.uint(sp, 'droppedEventsCount', path),
            links: this.list(sp, 'links', path).map((l, i) => {
                const p = `${path}.links[${i}]`;
                return {
                    traceId: this.hexId(l, 'traceId', p, 32, false),
                    spanId: this.hexId(l, 'spanId', p, 16, false),
                    traceState: this.str(l, 'traceState', p),
                    flags: this.uint(l, 'flags', p),
                    attributes: this.attributes(l, 'attributes', p),
                    droppedAttributesCount: this.uint(l, 'droppedAttributesCount', p),
                };
            }),
            droppedLinksCount: this.uint(sp, 'droppedLinksCount', path),
            status: this.status(sp, path),
            resource,
            scope,
        };
    }
}

// Every span of the run found in the dump, with where it was found.
function collect(lines, runId, problems) {
    const reader = new DumpReader(problems);
    const found = [];
    const requests = new Set();
    lines.forEach((line, li) => {
        let req;
        try {
            req = JSON.parse(line);
        } catch (e) {
            problems.push(`dump line ${li + 1}: not JSON (${e.message})`);
            return;
        }
        (req.resourceSpans || []).forEach((rs, ri) => {
            const rpath = `line ${li + 1}: resourceSpans[${ri}]`;
            const res = rs.resource || {};
            const runAttr = (res.attributes || []).find(kv => kv && kv.key === 'interop.run_id');
            if (!runAttr || !runAttr.value || runAttr.value.stringValue !== runId) {
                return;
            }
            requests.add(li);
            const resource = {
                attributes: reader.attributes(res, 'attributes', `${rpath}.resource`),
                droppedAttributesCount:
                    reader.uint(res, 'droppedAttributesCount', `${rpath}.resource`),
                schemaUrl: reader.str(rs, 'schemaUrl', rpath),
            };
            reader.list(rs, 'scopeSpans', rpath).forEach((ss, si) => {
                const spath = `${rpath}.scopeSpans[${si}]`;
                const sc = ss.scope || {};
                const scope = {
                    name: reader.str(sc, 'name', `${spath}.scope`),
                    version: reader.str(sc, 'version', `${spath}.scope`),
                    attributes: reader.attributes(sc, 'attributes', `${spath}.scope`),
                    droppedAttributesCount:
                        reader.uint(sc, 'droppedAttributesCount', `${spath}.scope`),
                    schemaUrl: reader.str(ss, 'schemaUrl', spath),
                };
                reader.list(ss, 'spans', spath).forEach((sp, pi) => {
                    const path = `${spath}.spans[${pi}]`;
                    found.push({path, span: reader.span(sp, path, resource, scope)});
                });
            });
        });
    });
    return {found, requests: requests.size};
}

// ---- comparison ------------------------------------------------------------------------------

function show(v) {
    if (v === undefined) {
        return '(absent)';
    }
    if (v && typeof v === 'object' && 't' in v) {
        if (v.t === 'empty') {
            return 'empty AnyValue';
        }
        if (v.t === 'array') {
            return `array [${v.v.map(show).join(', ')}]`;
        }
        if (v.t === 'kvlist') {
            return `kvlist {${[...v.v].map(([k, x]) => `${k}: ${show(x)}`).join(', ')}}`;
        }
        return `${v.t} ${show(v.v)}`;
    }
    const s = JSON.stringify(v);
    return s.length > 120 ? `${s.slice(0, 100)}... (${s.length} chars)` : s;
}

// Where two long strings first differ, so a diff of a 9 KB value stays readable.
function stringHint(a, b) {
    if (typeof a !== 'string' || typeof b !== 'string' || (a.length < 60 && b.length < 60)) {
        return '';
    }
    let i = 0;
    while (i < a.length && i < b.length && a[i] === b[i]) {
        i++;
    }
    return ` (lengths ${a.length} vs ${b.length}, first difference at index ${i}: ` +
        `${JSON.stringify(a.slice(i, i + 12))} vs ${JSON.stringify(b.slice(i, i + 12))})`;
}

function sameValue(a, b) {
    if (a.t !== b.t) {
        return false;
    }
    if (a.t === 'empty') {
        return true;
    }
    if (a.t === 'array') {
        return a.v.length === b.v.length && a.v.every((x, i) => sameValue(x, b.v[i]));
    }
    if (a.t === 'kvlist') {
        return sameAttributes(a.v, b.v);
    }
    return a.v === b.v;
}

function sameAttributes(a, b) {
    if (a.size !== b.size) {
        return false;
    }
    for (const [k, v] of a) {
        if (!b.has(k) || !sameValue(v, b.get(k))) {
            return false;
        }
    }
    return true;
}

class Differ {
    constructor(problems) {
        this.problems = problems;
        this.checked = 0;
    }

    field(path, want, got) {
        this.checked++;
        if (want !== got) {
            this.problems.push(
                `${path}: expected ${show(want)}, got ${show(got)}${stringHint(want, got)}`);
        }
    }

    attributes(path, want, got) {
        for (const [k, w] of want) {
            this.checked++;
            if (!got.has(k)) {
                this.problems.push(`${path}{${k}}: missing (expected ${show(w)})`);
            } else if (!sameValue(w, got.get(k))) {
                const g = got.get(k);
                this.problems.push(
                    `${path}{${k}}: expected ${show(w)}, got ${show(g)}${stringHint(w.v, g.v)}`);
            }
        }
        for (const [k, g] of got) {
            if (!want.has(k)) {
                this.problems.push(`${path}{${k}}: unexpected attribute ${show(g)}`);
            }
        }
    }

    list(path, want, got, each) {
        this.field(`${path}.length`, want.length, got.length);
        for (let i = 0; i < Math.min(want.length, got.length); i++) {
            each(`${path}[${i}]`, want[i], got[i]);
        }
    }

    span(path, w, g) {
        for (const k
                 of ['traceId', 'spanId', 'traceState', 'parentSpanId', 'flags', 'name', 'kind',
                     'startTimeUnixNano', 'endTimeUnixNano', 'droppedAttributesCount',
                     'droppedEventsCount', 'droppedLinksCount']) {
            this.field(`${path}.${k}`, w[k], g[k]);
        }
        this.attributes(`${path}.attributes`, w.attributes, g.attributes);
        this.list(`${path}.events`, w.events, g.events, (p, we, ge) => {
            for (const k of ['timeUnixNano', 'name', 'droppedAttributesCount']) {
                this.field(`${p}.${k}`, we[k], ge[k]);
            }
            this.attributes(`${p}.attributes`, we.attributes, ge.attributes);
        });
        this.list(`${path}.links`, w.links, g.links, (p, wl, gl) => {
            for (const k
                     of ['traceId', 'spanId', 'traceState', 'flags', 'droppedAttributesCount']) {
                this.field(`${p}.${k}`, wl[k], gl[k]);
            }
            this.attributes(`${p}.attributes`, wl.attributes, gl.attributes);
        });
        this.field(`${path}.status.code`, w.status.code, g.status.code);
        this.field(`${path}.status.message`, w.status.message, g.status.message);
        this.attributes(
            `${path} resource.attributes`, w.resource.attributes, g.resource.attributes);
        this.field(
            `${path} resource.droppedAttributesCount`, w.resource.droppedAttributesCount,
            g.resource.droppedAttributesCount);
        this.field(`${path} resourceSpans.schemaUrl`, w.resource.schemaUrl, g.resource.schemaUrl);
        for (const k of ['name', 'version', 'droppedAttributesCount']) {
            this.field(`${path} scope.${k}`, w.scope[k], g.scope[k]);
        }
        this.attributes(`${path} scope.attributes`, w.scope.attributes, g.scope.attributes);
        this.field(`${path} scopeSpans.schemaUrl`, w.scope.schemaUrl, g.scope.schemaUrl);
    }
}

function readLines(file) {
    let text;
    try {
        text = fs.readFileSync(file, 'utf8');
    } catch (e) {
        return {lines: [], error: e.message};
    }
    // Only complete lines: the dump may be mid-write while we poll.
    const end = text.lastIndexOf('\n');
    return {lines: end < 0 ? [] : text.slice(0, end).split('\n').filter(l => l.length > 0)};
}

function countRunSpans(lines, runId) {
    // Cheap pre-count for polling; the real parse happens once at the end.
    let n = 0;
    for (const line of lines) {
        if (!line.includes(runId)) {
            continue;
        }
        try {
            collect([line], runId, []).found.forEach(() => n++);
        } catch (e) {
            // a broken line is reported by the final pass
        }
    }
    return n;
}

async function main() {
    const opts = parseArgs(process.argv.slice(2));
    let expectation;
    try {
        expectation = JSON.parse(fs.readFileSync(opts.expect, 'utf8'));
    } catch (e) {
        usage(`cannot read expectation ${opts.expect}: ${e.message}`);
    }
    const runId = expectation.runId;
    const label = opts.label || expectation.exporter;
    const ints = expectation.exporter === 'http' ? v => BigInt(String(v)).toString() :
                                                   v => BigInt(v).toString();
    const want = expectation.spans.map(s => expectedSpan(s, ints));

    // The dump writes a request before answering it, so by now everything should be there;
    // still, allow a little time for the file to catch up before judging.
    const deadline = Date.now() + opts.waitMs;
    let read = readLines(opts.dump);
    while (countRunSpans(read.lines, runId) < want.length && Date.now() < deadline) {
        await new Promise(r => setTimeout(r, 100));
        read = readLines(opts.dump);
    }
    if (read.error) {
        usage(`cannot read dump ${opts.dump}: ${read.error}`);
    }

    const problems = [];
    const {found, requests} = collect(read.lines, runId, problems);
    const byId = new Map();
    for (const f of found) {
        const key = `${f.span.traceId}/${f.span.spanId}`;
        if (!byId.has(key)) {
            byId.set(key, []);
        }
        byId.get(key).push(f);
    }

    const differ = new Differ(problems);
    const wantKeys = new Set();
    for (const w of want) {
        const key = `${w.traceId}/${w.spanId}`;
        wantKeys.add(key);
        const got = byId.get(key) || [];
        const label0 = `span "${w.name}" ${key}`;
        if (got.length === 0) {
            problems.push(`${label0}: never arrived`);
            continue;
        }
        if (got.length > 1) {
            problems.push(
                `${label0}: arrived ${got.length} times (${got.map(g => g.path).join('; ')})`);
        }
        differ.span(`${label0} [${got[0].path}]`, w, got[0].span);
    }
    for (const [key, got] of byId) {
        if (!wantKeys.has(key)) {
            problems.push(
                `span ${key} "${got[0].span.name}" at ${got[0].path}: not one the SDK recorded`);
        }
    }

    const okCalls = (expectation.exportCalls || []).filter(c => c.code === 0).length;
    if (requests !== okCalls) {
        problems.push(
            `the run's spans arrived in ${requests} Export requests, but the exporter ` +
            `made ${okCalls} successful export calls`);
    }

    const nAttrs = want.reduce((n, s) => n + s.attributes.size, 0);
    const nEvents = want.reduce((n, s) => n + s.events.length, 0);
    const nLinks = want.reduce((n, s) => n + s.links.length, 0);
    if (problems.length > 0) {
        process.stdout.write(
            `interop ${label}: FAILED, ${problems.length} problem(s) with run ${runId} ` +
            `in ${opts.dump}:\n`);
        for (const p of problems.slice(0, MAX_REPORTED)) {
            process.stdout.write(`  ${p}\n`);
        }
        if (problems.length > MAX_REPORTED) {
            process.stdout.write(`  ... and ${problems.length - MAX_REPORTED} more\n`);
        }
        process.exit(1);
    }
    process.stdout.write(
        `interop ${label}: ok: ${want.length} spans in ${requests} requests arrived ` +
        `once each, intact (${nAttrs} span attributes, ${nEvents} events, ` +
        `${nLinks} links, ${differ.checked} fields checked)\n`);
}

main().catch(e => {
    process.stderr.write(`compare.js: ${e && e.stack ? e.stack : e}\n`);
    process.exit(2);
});
