// send.js - the sending half of the SDK interop test: the real OpenTelemetry JS SDK builds a
// fixed set of spans covering every field OTLP carries and exports them through one real OTLP
// exporter (proto | http | grpc) to rt-otlp-dump; the spans as the SDK itself recorded them
// (an InMemorySpanExporter on the same providers) are written to --expect for compare.js.
//
//   node send.js --exporter proto|http|grpc --url URL --run-id ID --expect FILE
//                [--compression none|gzip]
//
// Exit status: 0 when every export call reported success, 1 otherwise (with the exporter's
// error on stderr), 2 on bad arguments.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');

// The exporters merge OTEL_EXPORTER_OTLP_* from the environment into their configuration
// (headers, compression, timeouts, certificates). The test must send what this file says and
// nothing a developer's shell happens to carry, so drop them before the SDK is loaded.
for (const key of Object.keys(process.env)) {
    if (key.startsWith('OTEL_')) {
        delete process.env[key];
    }
}

const api = require('@opentelemetry/api');
const {defaultResource, resourceFromAttributes} = require('@opentelemetry/resources');
const {
    BasicTracerProvider,
    BatchSpanProcessor,
    InMemorySpanExporter,
    SimpleSpanProcessor,
} = require('@opentelemetry/sdk-trace-base');

const EXPORTERS = {
    proto: () => require('@opentelemetry/exporter-trace-otlp-proto').OTLPTraceExporter,
    http: () => require('@opentelemetry/exporter-trace-otlp-http').OTLPTraceExporter,
    grpc: () => require('@opentelemetry/exporter-trace-otlp-grpc').OTLPTraceExporter,
};

function usage(msg) {
    process.stderr.write(`send.js: ${msg}\n`);
    process.stderr.write(
        'usage: node send.js --exporter proto|http|grpc --url URL --run-id ID --expect FILE ' +
        '[--compression none|gzip]\n');
    process.exit(2);
}

function parseArgs(argv) {
    const opts = {compression: 'none'};
    const names = {
        '--exporter': 'exporter',
        '--url': 'url',
        '--run-id': 'runId',
        '--expect': 'expect',
        '--compression': 'compression'
    };
    for (let i = 0; i < argv.length; i += 2) {
        const name = names[argv[i]];
        if (!name || i + 1 >= argv.length) {
            usage(`unknown or incomplete option "${argv[i]}"`);
        }
        opts[name] = argv[i + 1];
    }
    for (const need of ['exporter', 'url', 'runId', 'expect']) {
        if (!opts[need]) {
            usage(`missing --${need.replace(/[A-Z]/g, c => '-' + c.toLowerCase())}`);
        }
    }
    if (!EXPORTERS[opts.exporter]) {
        usage(`--exporter must be proto, http or grpc, not "${opts.exporter}"`);
    }
    if (opts.compression !== 'none' && opts.compression !== 'gzip') {
        usage(`--compression must be none or gzip, not "${opts.compression}"`);
    }
    return opts;
}

// Deterministic ids derived from the run id, so two runs never share a trace while one run is
// reproducible. The first ids are chosen to have leading zero bytes and all-ones bytes: a
// hex encoder that drops leading zeros or sign-extends shows up at once.
class SeededIdGenerator {
    constructor(seed) {
        this.seed = seed;
        this.traces = 0;
        this.spans = 0;
    }

    hex(kind, n, len) {
        return crypto.createHash('sha256')
            .update(`${this.seed}/${kind}/${n}`)
            .digest('hex')
            .slice(0, len);
    }

    generateTraceId() {
        const n = this.traces++;
        if (n === 0) {
            return '0000000000000000' + this.hex('trace', n, 16);
        }
        if (n === 1) {
            return 'ffffffffffffffff' + this.hex('trace', n, 16);
        }
        return this.hex('trace', n, 32);
    }

    generateSpanId() {
        const n = this.spans++;
        if (n === 0) {
            return '00000000' + this.hex('span', n, 8);
        }
        if (n === 1) {
            return 'ffffffff' + this.hex('span', n, 8);
        }
        return this.hex('span', n, 16);
    }
}

// Wraps the OTLP exporter to keep every export call's outcome: the BatchSpanProcessor only logs
// failures, and the test must fail loudly instead.
class RecordingExporter {
    constructor(inner) {
        this.inner = inner;
        this.calls = [];
    }

    export(spans, done) {
        this.inner.export(spans, result => {
            this.calls.push({
                spans: spans.length,
                code: result.code,
                error: result.error ? String(result.error.message || result.error) : undefined,
            });
            done(result);
        });
    }

    forceFlush() {
        return this.inner.forceFlush ? this.inner.forceFlush() : Promise.resolve();
    }

    shutdown() {
        return this.inner.shutdown();
    }
}

// Times are HrTime [seconds, nanoseconds] so every nanosecond is the SDK's own, not a float
// conversion. BASE is 2023-11-14T22:13:20.123456789Z.
const BASE_S = 1700000000;
function at(ms, ns = 0) {
    const total = BigInt(BASE_S) * 1000000000n + 123456789n + BigInt(ms) * 1000000n + BigInt(ns);
    return [Number(total / 1000000000n), Number(total % 1000000000n)];
}

// One attribute of every kind the JS API accepts, with values that stress the encoders: ints at
// the 32/53/62-bit edges and negative (10-byte varints), doubles that only survive an exact
// round trip (subnormal, 0.1), escapes and non-ASCII in strings, mixed int/double in one
// number array, and null holes in arrays (sent as empty AnyValues).
// Numbers outside [-2^63, 2^63) and NaN/Infinity are left out: the proto and JSON exporters
// encode those differently from each other (JSON.stringify turns NaN into null).
function everyKindAttributes(prefix) {
    const attrs = {
        [`${prefix}.string`]: 'plain string',
        [`${prefix}.string.empty`]: '',
        [`${prefix}.string.unicode`]: 'ünïcödé ✓ 日本語 🚀 Ω',
        [`${prefix}.string.escapes`]:
            'quote " backslash \\ slash / tab \t nl \n cr \r ctl \u0001\u001f',
        [`${prefix}.bool.true`]: true,
        [`${prefix}.bool.false`]: false,
        [`${prefix}.int.zero`]: 0,
        [`${prefix}.int.small`]: 42,
        [`${prefix}.int.negative`]: -42,
        [`${prefix}.int.u32max`]: 4294967295,
        [`${prefix}.int.i32min`]: -2147483648,
        [`${prefix}.int.safe_max`]: Number.MAX_SAFE_INTEGER,
        [`${prefix}.int.safe_min`]: Number.MIN_SAFE_INTEGER,
        [`${prefix}.int.2p62`]: 2 ** 62,
        [`${prefix}.int.neg2p62`]: -(2 ** 62),
        [`${prefix}.double`]: 3.141592653589793,
        [`${prefix}.double.tenth`]: 0.1,
        [`${prefix}.double.negative`]: -273.15,
        [`${prefix}.double.tiny`]: 5e-324,
        [`${prefix}.double.small`]: 2.5e-10,
        [`${prefix}.double.big_fraction`]: 4503599627370495.5,
        [`${prefix}.array.string`]: ['a', '', 'ü', 'x y'],
        [`${prefix}.array.bool`]: [true, false, true],
        [`${prefix}.array.int`]: [1, -1, 0, 2 ** 40, -(2 ** 53)],
        [`${prefix}.array.double`]: [1.5, -0.25, 1e-300, 12345.678],
        [`${prefix}.array.mixed_number`]: [1, 2.5, -3],
        [`${prefix}.array.empty`]: [],
        [`${prefix}.array.with_null`]: ['x', null, 'y'],
    };
    // A NUL inside a string is legal OTLP, but common/otlp_json turns it away (JSON) or cuts
    // the string at it (protobuf-c strings end at NUL), so it is opt-in until that is fixed.
    if (process.env.RT_INTEROP_NUL === '1') {
        attrs[`${prefix}.string.nul`] = 'before\u0000after';
    }
    return attrs;
}

// Builds the spans. Returns nothing; the spans end up in the processors.
function makeSpans(tracers, runId) {
    const {primary, secondary, bare, backend} = tracers;
    const ctxWith = span => api.trace.setSpan(api.ROOT_CONTEXT, span);
    const {SpanKind, SpanStatusCode, TraceFlags} = api;

    // Trace 1: a server request with a client call that fails, a producer and internal work.
    const root = primary.startSpan(
        'GET /checkout', {
            kind: SpanKind.SERVER,
            startTime: at(0),
            attributes: {...everyKindAttributes('attr'), 'interop.run_id': runId},
        },
        api.ROOT_CONTEXT);
    root.setAttribute('http.response.status_code', 200);
    root.setStatus({code: SpanStatusCode.OK, message: 'dropped by the SDK for OK'});

    const db = primary.startSpan(
        'db.query', {
            kind: SpanKind.CLIENT,
            startTime: at(10, 1),
            attributes:
                {'db.system': 'postgresql', 'db.statement': 'SELECT * FROM "carts" WHERE id = $1'},
        },
        ctxWith(root));
    db.addEvent(
        'retry', {'retry.attempt': 1, 'retry.delay_s': 0.25, 'retry.reason': 'timeout'}, at(11, 7));
    db.addEvent('no attributes', at(12));
    db.addEvent(
        'retry', {'retry.attempt': 2, 'retry.ok': false, 'retry.peers': ['a', 'b']},
        at(13, 999999));
    const err = new Error('connection reset by peer');
    err.name = 'ECONNRESET';
    db.recordException(err, at(14));
    db.setStatus(
        {code: SpanStatusCode.ERROR, message: 'connection reset by peer (after 2 retries)'});

    const inner = secondary.startSpan('decode rows', {startTime: at(15)}, ctxWith(db));
    inner.updateName('decode rows (renamed)');
    inner.end(at(16, 1));
    db.end(at(20, 999999));

    const publish = primary.startSpan(
        'orders publish', {
            kind: SpanKind.PRODUCER,
            startTime: at(21),
            attributes: {'messaging.system': 'kafka', 'messaging.batch.message_count': 3},
        },
        ctxWith(root));
    publish.end(at(22));

    // A status ERROR without a message, and a span whose end precedes its start (the SDK clamps
    // end to start; the expectation records what the SDK kept).
    const failed = bare.startSpan('validate', {startTime: at(23)}, ctxWith(root));
    failed.setStatus({code: SpanStatusCode.ERROR});
    failed.end(at(22));
    root.end(at(5000, 1));

    // Trace 2: a consumer continuing a remote, sampled trace with a tracestate; links back to
    // trace 1 (local, with attributes), to a remote unsampled context with its own tracestate,
    // and one link added after start.
    const remoteParent = {
        traceId: crypto.createHash('sha256').update(`${runId}/remote`).digest('hex').slice(0, 32),
        spanId:
            crypto.createHash('sha256').update(`${runId}/remote-span`).digest('hex').slice(0, 16),
        traceFlags: TraceFlags.SAMPLED,
        isRemote: true,
        traceState: api.createTraceState('ot=th:c;rv:ab,vendor=opaque-value'),
    };
    const remoteLinked = {
        traceId: crypto.createHash('sha256').update(`${runId}/linked`).digest('hex').slice(0, 32),
        spanId:
            crypto.createHash('sha256').update(`${runId}/linked-span`).digest('hex').slice(0, 16),
        traceFlags: TraceFlags.NONE,
        isRemote: true,
        traceState: api.createTraceState('congo=t61rcWkgMzE'),
    };
    const consume = backend.startSpan(
        'orders process', {
            kind: SpanKind.CONSUMER,
            startTime: at(30),
            links: [
                {
                    context: publish.spanContext(),
                    attributes: {'link.kind': 'publish', 'link.index': 0, 'link.weight': 0.5}
                },
                {
                    context: root.spanContext(),
                    attributes: {'link.kind': 'root', 'link.flags': [true, false]}
                },
                {context: remoteLinked},
            ],
            attributes: {'messaging.operation.type': 'process'},
        },
        api.trace.setSpanContext(api.ROOT_CONTEXT, remoteParent));
    consume.addLink({context: db.spanContext(), attributes: {'link.added_after_start': true}});
    consume.addEvent('message', {'message.id': 'm-1', 'message.size': 1024}, at(31));
    const child = backend.startSpan(
        'write row', {kind: SpanKind.CLIENT, startTime: at(32)}, ctxWith(consume));
    child.end(at(33));
    consume.end(at(34));

    // Trace 3: one span at the limits: more attributes, events and links than the provider's
    // limits allow (so dropped counts are non-zero), per-event and per-link attribute limits,
    // a value truncated by attributeValueLengthLimit, and a long unicode value under it.
    const manyLinks = Array.from(
        {length: 20},
        (_, i) => ({
            context: {
                traceId: (i + 1).toString(16).padStart(32, '0'),
                spanId: (i + 1).toString(16).padStart(16, '0'),
                traceFlags: TraceFlags.SAMPLED,
            },
            attributes: {'link.i': i, 'link.a': 'a', 'link.b': 'b', 'link.c': 'c', 'link.d': 'd'},
        }));
    const big = primary.startSpan(
        'many attributes', {kind: SpanKind.INTERNAL, startTime: at(40), links: manyLinks},
        api.ROOT_CONTEXT);
    // The truncated value is ASCII: the SDK cuts by UTF-16 unit and could split a surrogate
    // pair. The unicode value stays under the limit.
    big.setAttribute('long.truncated', 'x'.repeat(9000) + 'y'.repeat(100));
    big.setAttribute('long.unicode', 'ω日🚀'.repeat(1500));
    for (let i = 0; i < 300; i++) {
        const kinds = [
            `value-${i}`, i, i + 0.5, i % 2 === 0, [`v${i}`, `w${i}`], [i, -i], [i / 4 + 0.125],
            [false, true]
        ];
        big.setAttribute(`key.${String(i).padStart(3, '0')}`, kinds[i % kinds.length]);
    }
    big.setAttribute('key.000', 'overwritten value keeps its slot');
    for (let i = 0; i < 40; i++) {
        const attrs = {};
        for (let j = 0; j < 12; j++) {
            attrs[`e${j}`] = j % 3 === 0 ? `s${i}.${j}` : j % 3 === 1 ? i * j : (i * j) / 8 + 0.001;
        }
        big.addEvent(`event ${i}`, attrs, at(41, i * 1000 + 1));
    }
    big.end(at(49, 123));

    // Trace 4: extreme timestamps. fixed64 holds up to 2^64-1 ns; signed formatting of 2^63+
    // shows up here, as does zero. And a minimal span: no attributes, events or links.
    const extreme =
        bare.startSpan('extreme times', {startTime: [9223372036, 854775807]}, api.ROOT_CONTEXT);
    extreme.addEvent('at epoch', {'epoch': true}, [0, 0]);
    extreme.addEvent('at 2^63', [9223372036, 854775808]);
    extreme.end([18446744073, 709551615]);

    const minimal = secondary.startSpan('minimal', {startTime: at(60)}, api.ROOT_CONTEXT);
    minimal.end(at(60));
}

function hr(t) {
    return [t[0], t[1]];
}

// The SDK's own record of a span, as plain JSON. Attribute values stay JS values (numbers,
// strings, booleans, arrays with nulls); compare.js applies the exporters' documented mapping.
function spanRecord(s) {
    const ctx = s.spanContext();
    const linkCtx = c => ({
        traceId: c.traceId,
        spanId: c.spanId,
        traceFlags: c.traceFlags,
        isRemote: c.isRemote === true,
        traceState: c.traceState ? c.traceState.serialize() : '',
    });
    return {
        traceId: ctx.traceId,
        spanId: ctx.spanId,
        traceFlags: ctx.traceFlags,
        traceState: ctx.traceState ? ctx.traceState.serialize() : '',
        parentSpanId: s.parentSpanContext ? s.parentSpanContext.spanId : '',
        parentIsRemote: s.parentSpanContext ? s.parentSpanContext.isRemote === true : false,
        name: s.name,
        kind: s.kind,
        startTime: hr(s.startTime),
        endTime: hr(s.endTime),
        attributes: s.attributes,
        droppedAttributesCount: s.droppedAttributesCount,
        events: s.events.map(e => ({
                                 name: e.name,
                                 time: hr(e.time),
                                 attributes: e.attributes || {},
                                 droppedAttributesCount: e.droppedAttributesCount || 0,
                             })),
        droppedEventsCount: s.droppedEventsCount,
        links: s.links.map(l => ({
                               context: linkCtx(l.context),
                               attributes: l.attributes || {},
                               droppedAttributesCount: l.droppedAttributesCount || 0,
                           })),
        droppedLinksCount: s.droppedLinksCount,
        status: {code: s.status.code, message: s.status.message || ''},
        resource: {attributes: s.resource.attributes, schemaUrl: s.resource.schemaUrl || ''},
        scope: {
            name: s.instrumentationScope.name,
            version: s.instrumentationScope.version || '',
            schemaUrl: s.instrumentationScope.schemaUrl || '',
        },
    };
}

async function main() {
    const opts = parseArgs(process.argv.slice(2));
    // Export failures are caught by RecordingExporter; the SDK's own log is opt-in
    // (RT_INTEROP_DIAG=error|warn|info|debug|verbose) as it repeats them with stack traces.
    const diagLevel = (process.env.RT_INTEROP_DIAG || '').toUpperCase();
    if (diagLevel in api.DiagLogLevel) {
        api.diag.setLogger(new api.DiagConsoleLogger(), api.DiagLogLevel[diagLevel]);
    }

    const Exporter = EXPORTERS[opts.exporter]();
    const exporterConfig = {url: opts.url, timeoutMillis: 15000};
    if (opts.compression === 'gzip') {
        exporterConfig.compression = 'gzip';
    }
    const otlp = new RecordingExporter(new Exporter(exporterConfig));
    const memory = new InMemorySpanExporter();
    // A small batch size so one run makes several Export requests, each holding several
    // resources and scopes; the long delay means only size and forceFlush trigger exports.
    const batch = new BatchSpanProcessor(otlp, {
        maxExportBatchSize: 6,
        maxQueueSize: 1000,
        scheduledDelayMillis: 60000,
        exportTimeoutMillis: 20000,
    });
    const processors = [new SimpleSpanProcessor(memory), batch];
    const spanLimits = {
        attributeCountLimit: 256,
        attributeValueLengthLimit: 8192,
        eventCountLimit: 32,
        linkCountLimit: 16,
        attributePerEventCountLimit: 10,
        attributePerLinkCountLimit: 4,
    };
    const idGenerator = new SeededIdGenerator(opts.runId);

    // Two providers with different resources share the processors, so an Export request
    // carries more than one ResourceSpans.
    const frontendResource = defaultResource().merge(resourceFromAttributes(
        {
            'service.name': 'interop-frontend',
            'service.version': '1.0.0-rc.1',
            'interop.run_id': opts.runId,
            'interop.exporter': opts.exporter,
            'host.cpu.count': 2,
            'host.load': 0.75,
            'deployment.canary': false,
            'process.command_args': ['node', 'send.js', '--exporter', opts.exporter],
            'interop.ports': [4317, 4318],
        },
        {schemaUrl: 'https://opentelemetry.io/schemas/1.28.0'}));
    const backendResource = resourceFromAttributes({
        'service.name': 'interop-backend',
        'interop.run_id': opts.runId,
        'interop.weights': [0.5, 0.25],
    });
    const frontend = new BasicTracerProvider({
        resource: frontendResource,
        spanProcessors: processors,
        spanLimits,
        idGenerator,
    });
    const backendProvider = new BasicTracerProvider({
        resource: backendResource,
        spanProcessors: processors,
        spanLimits,
        idGenerator,
    });

    const tracers = {
        primary: frontend.getTracer(
            'ringtail.interop.primary', '1.2.3',
            {schemaUrl: 'https://opentelemetry.io/schemas/1.30.0'}),
        secondary: frontend.getTracer('ringtail.interop.secondary', '0.0.1-alpha+build.7'),
        bare: frontend.getTracer('ringtail.interop.bare'),
        backend: backendProvider.getTracer('ringtail.interop.backend', '2.0.0'),
    };
    makeSpans(tracers, opts.runId);

    await frontend.forceFlush();
    await backendProvider.forceFlush();
    const spans = memory.getFinishedSpans().map(spanRecord);
    await frontend.shutdown();
    await backendProvider.shutdown();

    const failed = otlp.calls.filter(c => c.code !== 0);
    const exported = otlp.calls.reduce((n, c) => n + (c.code === 0 ? c.spans : 0), 0);
    const expectation = {
        exporter: opts.exporter,
        compression: opts.compression,
        url: opts.url,
        runId: opts.runId,
        exportCalls: otlp.calls,
        spans,
    };
    fs.writeFileSync(opts.expect, JSON.stringify(expectation, null, 1) + '\n');

    if (failed.length > 0 || exported !== spans.length) {
        for (const c of failed) {
            process.stderr.write(
                `send.js: ${opts.exporter}: export of ${c.spans} spans to ` +
                `${opts.url} failed: ${c.error || 'no error given'}\n`);
        }
        process.stderr.write(
            `send.js: ${opts.exporter}: ${exported} of ${spans.length} spans ` +
            `exported successfully in ${otlp.calls.length} calls\n`);
        process.exit(1);
    }
    process.stdout.write(
        `send.js: ${opts.exporter}: ${spans.length} spans exported in ` +
        `${otlp.calls.length} calls\n`);
}

main().catch(e => {
    process.stderr.write(`send.js: ${e && e.stack ? e.stack : e}\n`);
    process.exit(1);
});
