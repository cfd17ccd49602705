// grpc_server_check.js - drives rt-grpc-test-server with Node's built-in http2 client as an
// independent HTTP/2 peer and checks the gRPC answers (no npm packages).
//
// usage: node grpc_server_check.js --port P [--max-body N] [--tls-port P --ca FILE]
//                                  [--idle-port P --idle-s N] [--hold-file F]
// Exits 1 and prints every failed check if anything is wrong.
'use strict';

const http2 = require('http2');
const tls = require('tls');
const zlib = require('zlib');
const fs = require('fs');

const EXPORT = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

// ---- arguments ----------------------------------------------------------------------------
const args = {};
for (let i = 2; i < process.argv.length; i += 2) {
  args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
}
if (!args.port) {
  console.error('usage: grpc_server_check.js --port P [--max-body N] [--tls-port P --ca F] ' +
                '[--idle-port P --idle-s N]');
  process.exit(2);
}
const maxBody = Number(args['max-body'] || 64 * 1024 * 1024);

// ---- a tiny protobuf writer ---------------------------------------------------------------
function varint(n) {
  const out = [];
  let v = BigInt(n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return Buffer.from(out);
}
function tag(field, wt) { return varint((field << 3) | wt); }
function lenField(field, bytes) {
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes);
  return Buffer.concat([tag(field, 2), varint(b.length), b]);
}
function varintField(field, n) { return Buffer.concat([tag(field, 0), varint(n)]); }
function fixed64Field(field, n) {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return Buffer.concat([tag(field, 1), b]);
}

// ExportTraceServiceRequest with one ResourceSpans holding `nspans` spans named `name`.
let traceSeq = 1;
function makeRequest(name, nspans = 1) {
  const spans = [];
  for (let i = 0; i < nspans; i++) {
    const traceId = Buffer.alloc(16);
    traceId.writeUInt32BE(traceSeq++, 12);
    const spanId = Buffer.alloc(8);
    spanId.writeUInt32BE(i + 1, 4);
    const span = Buffer.concat([
      lenField(1, traceId), lenField(2, spanId), lenField(5, name), varintField(6, 2),
      fixed64Field(7, 1700000000000000000n), fixed64Field(8, 1700000000001000000n),
    ]);
    spans.push(lenField(2, span)); // ScopeSpans.spans
  }
  const kv = Buffer.concat([lenField(1, 'service.name'), lenField(2, lenField(1, 'checkout'))]);
  const resource = lenField(1, kv);                          // Resource.attributes
  const scope = lenField(1, lenField(1, 'grpc-check'));      // ScopeSpans.scope{name}
  const scopeSpans = lenField(2, Buffer.concat([scope, ...spans]));
  return lenField(1, Buffer.concat([lenField(1, resource), scopeSpans]));
}

// ---- a tiny protobuf reader ---------------------------------------------------------------
function readVarint(buf, pos) {
  let v = 0n, shift = 0n;
  for (;;) {
    if (pos >= buf.length) throw new Error('varint past end');
    const b = buf[pos++];
    v |= BigInt(b & 0x7f) << shift;
    if (!(b & 0x80)) return [v, pos];
    shift += 7n;
  }
}
// Returns {field: [values]} where a value is a BigInt (varint) or a Buffer (length-delimited).
function parseMessage(buf) {
  const out = {};
  let pos = 0;
  while (pos < buf.length) {
    let t;
    [t, pos] = readVarint(buf, pos);
    const field = Number(t >> 3n), wt = Number(t & 7n);
    let v;
    if (wt === 0) {
      [v, pos] = readVarint(buf, pos);
    } else if (wt === 2) {
      let l;
      [l, pos] = readVarint(buf, pos);
      v = buf.subarray(pos, pos + Number(l));
      if (v.length !== Number(l)) throw new Error('length-delimited field past end');
      pos += Number(l);
    } else if (wt === 1) {
      v = buf.subarray(pos, pos + 8); pos += 8;
    } else if (wt === 5) {
      v = buf.subarray(pos, pos + 4); pos += 4;
    } else {
      throw new Error('bad wire type ' + wt);
    }
    (out[field] = out[field] || []).push(v);
  }
  return out;
}

// ---- gRPC framing -------------------------------------------------------------------------
function frame(msg, compressed = false, lenOverride) {
  const p = Buffer.alloc(5);
  p[0] = compressed ? 1 : 0;
  p.writeUInt32BE(lenOverride === undefined ? msg.length : lenOverride, 1);
  return Buffer.concat([p, msg]);
}

// One call. `body` is a Buffer (or an array of Buffers written in turn). Resolves with
// {httpStatus, headers, trailers, data, grpcStatus, grpcMessage, rstCode, error}.
function call(session, body, opts = {}) {
  return new Promise((resolve) => {
    const hdrs = {
      ':method': opts.method || 'POST',
      ':path': opts.path || EXPORT,
      'content-type': opts.contentType === undefined ? 'application/grpc' : opts.contentType,
      'te': 'trailers',
      ...(opts.headers || {}),
    };
    if (hdrs['content-type'] === null) delete hdrs['content-type'];
    const res = { headers: {}, trailers: null, data: Buffer.alloc(0), error: null };
    let req;
    try {
      req = session.request(hdrs, { endStream: false });
    } catch (e) {
      res.error = e;
      resolve(res);
      return;
    }
    const chunks = [];
    req.on('response', (h) => { res.headers = h; });
    req.on('trailers', (t) => { res.trailers = t; });
    req.on('data', (d) => chunks.push(d));
    req.on('error', (e) => { res.error = e; });
    req.on('close', () => {
      res.data = Buffer.concat(chunks);
      res.httpStatus = res.headers[':status'];
      const src = res.trailers && res.trailers['grpc-status'] !== undefined ? res.trailers
                                                                             : res.headers;
      res.grpcStatus = src['grpc-status'] === undefined ? undefined : Number(src['grpc-status']);
      res.grpcMessage = src['grpc-message'] === undefined
                            ? undefined : decodeURIComponent(src['grpc-message']);
      res.details = src['grpc-status-details-bin'];
      res.src = src;
      res.rstCode = req.rstCode;
      resolve(res);
    });
    if (opts.cancelAfterSend) {
      req.end(body, () => setTimeout(() => req.close(http2.constants.NGHTTP2_CANCEL), 20));
      return;
    }
    const parts = Array.isArray(body) ? body : [body];
    for (const p of parts) req.write(p);
    req.end();
  });
}

// ---- checks -------------------------------------------------------------------------------
const failures = [];
let passes = 0;
function check(cond, what, extra) {
  if (cond) {
    passes++;
  } else {
    failures.push(what + (extra !== undefined ? ': ' + JSON.stringify(extra) : ''));
    console.log('FAIL ' + what + (extra !== undefined ? ' ' + JSON.stringify(extra) : ''));
  }
}
function summary(r) {
  return { http: r.httpStatus, grpc: r.grpcStatus, msg: r.grpcMessage,
           err: r.error && r.error.message, rst: r.rstCode, len: r.data.length };
}

function expectOk(r, what) {
  check(r.httpStatus === 200 && r.grpcStatus === 0 && r.trailers !== null, what + ': OK', summary(r));
  check(r.headers['content-type'] === 'application/grpc', what + ': content-type', r.headers);
  check(r.data.length >= 5 && r.data.readUInt32BE(1) === r.data.length - 5 && r.data[0] === 0,
        what + ': one framed response message', r.data.toString('hex'));
  return r.data.subarray(5);
}

function expectStatus(r, code, what, msgRe) {
  check(r.httpStatus === 200 && r.grpcStatus === code, `${what}: grpc-status ${code}`, summary(r));
  if (msgRe) {
    check(typeof r.grpcMessage === 'string' && msgRe.test(r.grpcMessage),
          `${what}: grpc-message matches ${msgRe}`, r.grpcMessage);
  }
}

// Decode grpc-status-details-bin: google.rpc.Status{code 1, message 2, details 3 (Any)}.
function retryDelay(details) {
  const st = parseMessage(Buffer.from(details, 'base64'));
  const out = { code: st[1] ? Number(st[1][0]) : 0, retrySeconds: null };
  for (const any of st[3] || []) {
    const a = parseMessage(any);
    const typeUrl = a[1] ? a[1][0].toString() : '';
    if (typeUrl.endsWith('/google.rpc.RetryInfo')) {
      const ri = parseMessage(a[2] ? a[2][0] : Buffer.alloc(0));
      const dur = ri[1] ? parseMessage(ri[1][0]) : {};
      out.retrySeconds = dur[1] ? Number(dur[1][0]) : 0;
    }
  }
  return out;
}

function connect(url, opts = {}) {
  return new Promise((resolve, reject) => {
    const s = http2.connect(url, opts);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function goodCall(session, what) {
  const r = await call(session, frame(makeRequest('after-' + what)));
  expectOk(r, `good call after ${what}`);
}

async function plainChecks() {
  const url = `http://127.0.0.1:${args.port}`;
  const session = await connect(url);
  let closed = false;
  session.on('close', () => { closed = true; });
  session.on('error', (e) => failures.push('session error: ' + e.message));

  // A valid Export.
  let r = await call(session, frame(makeRequest('plain')));
  const body = expectOk(r, 'valid Export');
  check(body.length === 0, 'valid Export: empty ExportTraceServiceResponse', body.toString('hex'));

  // Partial success comes back in the response message.
  r = await call(session, frame(makeRequest('RT_PARTIAL', 3)));
  const ps = parseMessage(expectOk(r, 'partial success'));
  const partial = ps[1] ? parseMessage(ps[1][0]) : {};
  check(partial[1] && Number(partial[1][0]) === 1, 'partial success: rejected_spans = 1', partial);
  check(partial[2] && /1 of 3 spans/.test(partial[2][0].toString()),
        'partial success: error_message', partial[2] && partial[2][0].toString());

  // A request near the size limit crosses many DATA frames and flow-control windows.
  const big = makeRequest('big', Math.floor(maxBody / 70));
  check(big.length > maxBody / 2 && big.length < maxBody, 'big request size', big.length);
  r = await call(session, frame(big));
  expectOk(r, `request of ${big.length} bytes`);

  // gzip with grpc-encoding gzip.
  const gz = zlib.gzipSync(makeRequest('gzipped', 2));
  r = await call(session, frame(gz, true), { headers: { 'grpc-encoding': 'gzip' } });
  expectOk(r, 'gzip message');
  // grpc-encoding gzip but an uncompressed message (flag 0) is fine too.
  r = await call(session, frame(makeRequest('flag0')), { headers: { 'grpc-encoding': 'gzip' } });
  expectOk(r, 'grpc-encoding gzip with an uncompressed message');
  // application/grpc+proto is accepted.
  r = await call(session, frame(makeRequest('plus-proto')), { contentType: 'application/grpc+proto' });
  expectOk(r, 'content-type application/grpc+proto');

  // Garbage protobuf -> INVALID_ARGUMENT with the reason.
  r = await call(session, frame(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02])));
  expectStatus(r, 3, 'garbage protobuf', /protobuf/i);
  await goodCall(session, 'garbage protobuf');

  // Truncated protobuf (well framed) -> INVALID_ARGUMENT.
  const full = makeRequest('truncated');
  r = await call(session, frame(full.subarray(0, full.length - 7)));
  expectStatus(r, 3, 'truncated protobuf', /protobuf/i);
  await goodCall(session, 'truncated protobuf');

  // Oversized length prefix -> RESOURCE_EXHAUSTED, no RetryInfo, refused before the body.
  r = await call(session, [frame(Buffer.alloc(0), false, maxBody + 1), Buffer.alloc(32768)]);
  expectStatus(r, 8, 'oversized length prefix', /exceeds/);
  check(r.details === undefined, 'oversized: no grpc-status-details-bin', r.details);
  await goodCall(session, 'oversized length prefix');

  // gzip that inflates past the limit -> RESOURCE_EXHAUSTED.
  const bomb = zlib.gzipSync(Buffer.alloc(maxBody + 4096));
  r = await call(session, frame(bomb, true), { headers: { 'grpc-encoding': 'gzip' } });
  expectStatus(r, 8, 'gzip inflating past the limit');
  await goodCall(session, 'gzip bomb');

  // Corrupt gzip -> INVALID_ARGUMENT.
  r = await call(session, frame(Buffer.from('not gzip at all'), true),
                 { headers: { 'grpc-encoding': 'gzip' } });
  expectStatus(r, 3, 'corrupt gzip', /gzip/i);
  await goodCall(session, 'corrupt gzip');

  // Wrong path -> UNIMPLEMENTED.
  r = await call(session, frame(makeRequest('x')),
                 { path: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export' });
  expectStatus(r, 12, 'wrong path', /unknown method/);
  await goodCall(session, 'wrong path');

  // Bad content-type -> HTTP 415.
  r = await call(session, frame(makeRequest('x')), { contentType: 'application/json' });
  check(r.httpStatus === 415, 'bad content-type: HTTP 415', summary(r));
  r = await call(session, frame(makeRequest('x')), { contentType: null });
  check(r.httpStatus === 415, 'missing content-type: HTTP 415', summary(r));
  await goodCall(session, 'bad content-type');

  // Compressed flag without grpc-encoding -> INTERNAL.
  r = await call(session, frame(gz, true));
  expectStatus(r, 13, 'compressed flag without grpc-encoding', /grpc-encoding/);
  await goodCall(session, 'compressed flag without encoding');

  // Compressed with an encoding we do not have -> UNIMPLEMENTED + grpc-accept-encoding.
  r = await call(session, frame(gz, true), { headers: { 'grpc-encoding': 'snappy' } });
  expectStatus(r, 12, 'unsupported grpc-encoding', /snappy/);
  check(/gzip/.test(r.src['grpc-accept-encoding'] || ''), 'unsupported encoding: grpc-accept-encoding',
        r.src['grpc-accept-encoding']);
  await goodCall(session, 'unsupported encoding');

  // Zero messages and two messages in a unary call -> UNIMPLEMENTED (cardinality).
  r = await call(session, Buffer.alloc(0));
  expectStatus(r, 12, 'zero messages', /none/);
  await goodCall(session, 'zero messages');
  r = await call(session, Buffer.concat([frame(makeRequest('one')), frame(makeRequest('two'))]));
  expectStatus(r, 12, 'two messages', /more/);
  await goodCall(session, 'two messages');

  // Message cut short (the prefix promises more than arrives) -> INTERNAL.
  r = await call(session, frame(Buffer.alloc(10), false, 100));
  expectStatus(r, 13, 'message shorter than its prefix', /truncated/);
  await goodCall(session, 'short message');

  // Handler says UNAVAILABLE -> 14 with RetryInfo in grpc-status-details-bin.
  r = await call(session, frame(makeRequest('RT_UNAVAILABLE')));
  expectStatus(r, 14, 'handler UNAVAILABLE', /unavailable/);
  check(typeof r.details === 'string', 'UNAVAILABLE: grpc-status-details-bin present', r.src);
  if (typeof r.details === 'string') {
    const d = retryDelay(r.details);
    check(d.code === 14 && d.retrySeconds === 7, 'UNAVAILABLE: Status code 14, RetryInfo 7 s', d);
  }
  await goodCall(session, 'UNAVAILABLE');

  // Handler says THROTTLED -> RESOURCE_EXHAUSTED with RetryInfo.
  r = await call(session, frame(makeRequest('RT_THROTTLED')));
  expectStatus(r, 8, 'handler THROTTLED');
  if (typeof r.details === 'string') {
    const d = retryDelay(r.details);
    check(d.code === 8 && d.retrySeconds === 3, 'THROTTLED: Status code 8, RetryInfo 3 s', d);
  } else {
    check(false, 'THROTTLED: grpc-status-details-bin present', r.src);
  }

  // Asynchronous answer (from a timer).
  r = await call(session, frame(makeRequest('RT_DELAY')));
  expectOk(r, 'delayed answer');

  // A client that cancels while the handler holds the call: the server must not trip over it.
  r = await call(session, frame(makeRequest('RT_DELAY cancelled')), { cancelAfterSend: true });
  await sleep(300); // the handler answers after 200 ms, into a stream that is gone
  await goodCall(session, 'cancelled stream');

  // Many concurrent streams on one session, answers in any order, each to its own stream.
  const N = 300;
  const calls = [];
  for (let i = 0; i < N; i++) {
    const name = (i % 3 === 0 ? 'RT_DELAY ' : '') + 'RT_PARTIAL';
    calls.push(call(session, frame(makeRequest(name, 1 + (i % 17)))));
  }
  const results = await Promise.all(calls);
  let good = 0;
  results.forEach((res, i) => {
    if (res.grpcStatus !== 0 || res.data.length < 5) {
      check(false, `concurrent stream ${i}`, summary(res));
      return;
    }
    const m = parseMessage(res.data.subarray(5));
    const ps2 = m[1] ? parseMessage(m[1][0]) : {};
    const text = ps2[2] ? ps2[2][0].toString() : '';
    if (text.includes(`of ${1 + (i % 17)} spans`)) good++;
    else check(false, `concurrent stream ${i}: answer belongs to it`, text);
  });
  check(good === N, `all ${N} concurrent streams answered, each with its own answer`, good);

  check(!closed, 'the session survived every bad call');
  session.close();
}

async function tlsChecks() {
  const ca = fs.readFileSync(args.ca);
  const url = `https://localhost:${args['tls-port']}`;
  const session = await connect(url, { ca });
  check(session.alpnProtocol === 'h2', 'TLS: ALPN h2', session.alpnProtocol);
  let r = await call(session, frame(makeRequest('tls')));
  expectOk(r, 'TLS Export');
  r = await call(session, frame(makeRequest('x')), { path: '/nope' });
  expectStatus(r, 12, 'TLS wrong path');
  const calls = [];
  for (let i = 0; i < 50; i++) calls.push(call(session, frame(makeRequest('tls-many ' + i))));
  const res = await Promise.all(calls);
  check(res.every((x) => x.grpcStatus === 0), 'TLS: 50 concurrent streams answered',
        res.map((x) => x.grpcStatus));
  session.close();

  // A TLS client that does not offer h2 must not get an HTTP/2 server.
  const outcome = await new Promise((resolve) => {
    const sock = tls.connect({ host: '127.0.0.1', port: Number(args['tls-port']), ca,
                               servername: 'localhost', ALPNProtocols: ['http/1.1'] });
    let got = 0;
    const timer = setTimeout(() => { sock.destroy(); resolve('still open'); }, 3000);
    sock.on('data', (d) => { got += d.length; });
    sock.on('error', () => { clearTimeout(timer); resolve('refused'); });
    sock.on('close', () => { clearTimeout(timer); resolve(got ? 'closed after data' : 'refused'); });
  });
  check(outcome === 'refused', 'TLS without ALPN h2 is refused', outcome);

  const outcome2 = await new Promise((resolve) => {
    const sock = tls.connect({ host: '127.0.0.1', port: Number(args['tls-port']), ca,
                               servername: 'localhost' });
    let got = 0;
    const timer = setTimeout(() => { sock.destroy(); resolve('still open'); }, 3000);
    sock.on('data', (d) => { got += d.length; });
    sock.on('error', () => { clearTimeout(timer); resolve('refused'); });
    sock.on('close', () => { clearTimeout(timer); resolve(got ? 'closed after data' : 'refused'); });
  });
  check(outcome2 === 'refused', 'TLS with no ALPN at all is closed without HTTP/2', outcome2);
}

async function idleChecks() {
  const session = await connect(`http://127.0.0.1:${args['idle-port']}`);
  session.on('error', () => {});
  const r = await call(session, frame(makeRequest('before idle')));
  expectOk(r, 'idle server: first call');
  const t0 = Date.now();
  let goaway = null;
  session.on('goaway', (code) => { goaway = code; });
  await new Promise((resolve) => {
    const timer = setTimeout(resolve, (Number(args['idle-s']) + 4) * 1000);
    session.on('close', () => { clearTimeout(timer); resolve(); });
  });
  const waited = (Date.now() - t0) / 1000;
  check(session.closed || session.destroyed, 'idle connection closed by the server', waited);
  check(goaway === 0, 'idle connection got GOAWAY(NO_ERROR)', goaway);
  check(waited >= Number(args['idle-s']) - 0.5, 'idle close not before the timeout', waited);
}

// Leave a call held by the handler (RT_HOLD) on each server, tell the shell script (by
// creating the file --hold-file) to SIGTERM the servers, and expect GOAWAY(NO_ERROR) and the
// connection closed on each.
async function holdSession(label, url, opts) {
  const session = await connect(url, opts);
  session.on('error', () => {});
  const st = { label, session, goaway: null };
  session.on('goaway', (code) => { st.goaway = code; });
  st.closed = new Promise((resolve) => {
    const timer = setTimeout(resolve, 10000);
    session.on('close', () => { clearTimeout(timer); resolve(); });
  });
  st.held = call(session, frame(makeRequest('RT_HOLD')));
  const ok = await call(session, frame(makeRequest('beside the held call')));
  expectOk(ok, `${label}: call beside a held call`);
  return st;
}

async function holdChecks() {
  const sessions = [await holdSession('plain', `http://127.0.0.1:${args.port}`)];
  if (args['tls-port']) {
    sessions.push(await holdSession('TLS', `https://localhost:${args['tls-port']}`,
                                    { ca: fs.readFileSync(args.ca) }));
  }
  fs.writeFileSync(args['hold-file'], 'ready\n');
  for (const st of sessions) {
    await st.closed;
    check(st.session.closed || st.session.destroyed,
          `${st.label}: server shutdown closed the connection`);
    check(st.goaway === 0, `${st.label}: server shutdown sent GOAWAY(NO_ERROR)`, st.goaway);
    const h = await st.held;
    check(h.grpcStatus === undefined, `${st.label}: the held call got no answer after shutdown`,
          summary(h));
  }
}

(async () => {
  try {
    await plainChecks();
    if (args['tls-port']) await tlsChecks();
    if (args['idle-port']) await idleChecks();
    if (args['hold-file']) await holdChecks();
  } catch (e) {
    failures.push('exception: ' + (e.stack || e));
  }
  if (failures.length) {
    console.log(`${failures.length} check(s) failed, ${passes} passed:`);
    for (const f of failures) console.log('  - ' + f);
    process.exit(1);
  }
  console.log(`grpc_server_check: all ${passes} checks passed`);
  process.exit(0);
})();
