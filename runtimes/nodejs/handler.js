"use strict";
// tinyFaaS function handler for Node.js.
//
// Serves the handler contract on the Unix socket named by TINYFAAS_SOCKET:
//   GET  /health -> 200 "OK"
//   POST /fn     -> runs the user's express-style function (req, res)
// Only Node's built-in http module is used: an express app costs roughly half
// the throughput for a single route, and the runtime must not need npm.
// A connection that opens with the preface "\0TF2" speaks the daemon's
// length-prefixed framing instead (src/proxy/handler_frame.hpp): the same
// calls without HTTP parsing and response objects, about half this handler's
// cost per call.

const http = require("http");
const net = require("net");
const fs = require("fs");

// A standby's control socket (signalReady, standBy): inherited (the process
// backend) or connected to (a container, which inherits no descriptors).
const controlFd = process.env.TINYFAAS_CONTROL_FD ? Number(process.env.TINYFAAS_CONTROL_FD) : null;
const controlPath = process.env.TINYFAAS_CONTROL_SOCKET || null;

const socketPath = process.env.TINYFAAS_SOCKET;
// The process backend binds and listens itself and hands the socket over
// as a descriptor, so the sandbox needs no path on the host; custom
// runtimes and the docker backend bind TINYFAAS_SOCKET.
const listenFd = process.env.TINYFAAS_LISTEN_FD ? Number(process.env.TINYFAAS_LISTEN_FD) : null;
if (!socketPath && listenFd === null) {
  process.stderr.write("tinyfaas nodejs handler: TINYFAAS_SOCKET is not set\n");
  process.exit(2);
}

function pickHandler(mod) {
  if (typeof mod === "function") return mod;
  // Transpiled ES modules and TypeScript put the export under "default".
  if (mod && typeof mod.default === "function") return mod.default;
  return null;
}

function badExport() {
  process.stderr.write(
    "tinyfaas nodejs handler: the function module must export a function (req, res) => ...\n"
  );
  process.exit(2);
}

// require() of the directory resolves package.json "main" or index.js, the
// same way upstream loaded the function folder.
async function loadFunction() {
  try {
    return pickHandler(require(process.cwd()));
  } catch (err) {
    if (err.code !== "ERR_REQUIRE_ESM") throw err;
  }
  // An ES module ("type": "module"): Node 20 can only import() it.
  const { pathToFileURL } = require("url");
  const mod = await import(pathToFileURL(require.resolve(process.cwd())).href);
  return pickHandler(mod);
}

let fn = null;

const STATUS_TEXT = http.STATUS_CODES;

// res.type("json") and friends: the extensions functions name most.
const SHORT_TYPES = {
  json: "application/json; charset=utf-8",
  html: "text/html; charset=utf-8",
  text: "text/plain; charset=utf-8",
  txt: "text/plain; charset=utf-8",
  xml: "application/xml",
  cbor: "application/cbor",
  bin: "application/octet-stream",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  csv: "text/csv; charset=utf-8",
  png: "image/png",
  jpg: "image/jpeg",
  svg: "image/svg+xml",
};

function oneLine(s) {
  return String(s).replace(/\s*[\r\n]+\s*/g, " ").trim();
}

function errorReason(err) {
  if (err instanceof Error) {
    return oneLine(err.message || err.name || "Error");
  }
  if (err === undefined) {
    return "function failed";
  }
  return oneLine(typeof err === "string" ? err : safeJson(err));
}

function safeJson(v) {
  try {
    return JSON.stringify(v);
  } catch (_) {
    return String(v);
  }
}

function parseQuery(qs) {
  const out = {};
  for (const [k, v] of new URLSearchParams(qs)) {
    if (Object.prototype.hasOwnProperty.call(out, k)) {
      out[k] = [].concat(out[k], v);
    } else {
      out[k] = v;
    }
  }
  return out;
}

// The subset of express' request API that functions written for upstream use.
class Request extends http.IncomingMessage {
  get(name) {
    const key = String(name).toLowerCase();
    if (key === "referer" || key === "referrer") {
      return this.headers.referer || this.headers.referrer;
    }
    return this.headers[key];
  }
  header(name) {
    return this.get(name);
  }
}

// The subset of express' response API that functions written for upstream
// use, on top of the ServerResponse primitives (setHeader, end, ...) that
// both Response and FrameResponse have. Methods live on the prototypes so
// each request allocates nothing extra.
const expressResponse = {
  status(code) {
    this.statusCode = code;
    return this;
  },
  set(field, value) {
    if (typeof field === "object" && field !== null) {
      for (const k of Object.keys(field)) this.setHeader(k, field[k]);
    } else {
      this.setHeader(field, value);
    }
    return this;
  },
  header(field, value) {
    return this.set(field, value);
  },
  get(field) {
    return this.getHeader(field);
  },
  type(t) {
    t = String(t);
    this.setHeader("Content-Type", t.includes("/") ? t : SHORT_TYPES[t.replace(/^\./, "")] || "application/octet-stream");
    return this;
  },
  send(body) {
    if (this.writableEnded) {
      // express throws here; a second send must not break the connection
      // the proxy shares with other calls, so it is only reported.
      process.stderr.write("tinyfaas: res.send called after the response was sent\n");
      return this;
    }
    if (body === undefined || body === null) {
      this.end();
      return this;
    }
    switch (typeof body) {
      case "string":
        if (!this.hasHeader("Content-Type")) {
          this.setHeader("Content-Type", "text/html; charset=utf-8");
        }
        this.end(body);
        return this;
      case "object":
        if (Buffer.isBuffer(body) || body instanceof Uint8Array) {
          if (!this.hasHeader("Content-Type")) {
            this.setHeader("Content-Type", "application/octet-stream");
          }
          this.end(body);
          return this;
        }
        return this.json(body);
      default:
        // Numbers and booleans: express 4 treated a number as a status code,
        // which is almost never what a function meant; send it as text.
        return this.send(String(body));
    }
  },
  json(obj) {
    if (!this.hasHeader("Content-Type")) {
      this.setHeader("Content-Type", "application/json; charset=utf-8");
    }
    const s = JSON.stringify(obj);
    this.end(s === undefined ? "" : s);
    return this;
  },
  sendStatus(code) {
    this.statusCode = code;
    return this.send(STATUS_TEXT[code] || String(code));
  },
};

class Response extends http.ServerResponse {
  end(chunk, encoding, cb) {
    if (this.writableEnded) {
      return this;
    }
    if (this.noAnswerTimer !== undefined) clearTimeout(this.noAnswerTimer);
    return super.end(chunk, encoding, cb);
  }
}
Object.assign(Response.prototype, expressResponse);

// A framed call's request: what Request offers, without a stream.
class FrameRequest {
  constructor(headers, body) {
    this.method = "POST";
    this.url = "/fn";
    this.path = "/fn";
    this.query = {};
    this.headers = headers;
    this.body = body;
  }
}
FrameRequest.prototype.get = Request.prototype.get;
FrameRequest.prototype.header = Request.prototype.header;

// A framed call's response: collects what the function writes and sends one
// frame at end(), so no half answer can reach the proxy.
class FrameResponse {
  constructor(socket, done) {
    this.socket = socket;
    this.done = done;
    this.statusCode = 200;
    this.headers = null;
    this.chunks = null;
    this.headersSent = false;
    this.writableEnded = false;
    this.timeLeft = undefined;
    this.noAnswerTimer = undefined;
  }
  setHeader(name, value) {
    if (this.headers === null) this.headers = new Map();
    this.headers.set(String(name).toLowerCase(), [name, value]);
    return this;
  }
  getHeader(name) {
    const h = this.headers && this.headers.get(String(name).toLowerCase());
    return h ? h[1] : undefined;
  }
  hasHeader(name) {
    return this.headers !== null && this.headers.has(String(name).toLowerCase());
  }
  removeHeader(name) {
    if (this.headers !== null) this.headers.delete(String(name).toLowerCase());
  }
  getHeaderNames() {
    return this.headers === null ? [] : [...this.headers.keys()];
  }
  getHeaders() {
    const out = {};
    if (this.headers !== null) for (const [k, [, v]] of this.headers) out[k] = v;
    return out;
  }
  writeHead(code, headers) {
    this.statusCode = code;
    if (headers && typeof headers === "object") this.set(headers);
    return this;
  }
  write(chunk, encoding) {
    if (this.writableEnded || chunk === undefined || chunk === null) return true;
    if (this.chunks === null) this.chunks = [];
    this.chunks.push(typeof chunk === "string" ? Buffer.from(chunk, encoding || "utf8") : Buffer.from(chunk));
    return true;
  }
  end(chunk, encoding, cb) {
    if (this.writableEnded) return this;
    if (typeof chunk === "function") {
      cb = chunk;
      chunk = undefined;
    } else if (typeof encoding === "function") {
      cb = encoding;
      encoding = undefined;
    }
    this.write(chunk, encoding);
    if (this.noAnswerTimer !== undefined) clearTimeout(this.noAnswerTimer);
    this.writableEnded = true;
    this.headersSent = true;
    const body = this.chunks === null ? EMPTY : this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    const block = this.headers === null ? EMPTY : encodeHeaders(this.headers);
    const head = Buffer.allocUnsafe(12);
    head.writeUInt32BE(this.statusCode >>> 0, 0);
    head.writeUInt32BE(block.length, 4);
    head.writeUInt32BE(body.length, 8);
    const parts = [head];
    if (block.length > 0) parts.push(block);
    if (body.length > 0) parts.push(body);
    this.socket.write(parts.length === 1 ? head : Buffer.concat(parts, 12 + block.length + body.length), cb);
    this.done();
    return this;
  }
  destroy() {
    // Only a write()-then-crash reaches here unanswered: drop the
    // connection so the proxy sees the call failed.
    if (!this.writableEnded) this.socket.destroy();
  }
}
Object.assign(FrameResponse.prototype, expressResponse);

const EMPTY = Buffer.alloc(0);

// The response's header block (u16 name bytes, name, u32 value bytes,
// value); an array value (Set-Cookie) is one header per element. The proxy
// screens names and values: a function cannot break the frame with them.
function encodeHeaders(headers) {
  const parts = [];
  for (const [name, value] of headers.values()) {
    for (const v of Array.isArray(value) ? value : [value]) {
      const n = Buffer.from(String(name), "latin1");
      const b = Buffer.from(String(v), "latin1");
      if (n.length > 0xffff) continue;
      const lengths = Buffer.allocUnsafe(6);
      lengths.writeUInt16BE(n.length, 0);
      parts.push(lengths.subarray(0, 2), n);
      lengths.writeUInt32BE(b.length, 2);
      parts.push(lengths.subarray(2), b);
    }
  }
  return Buffer.concat(parts);
}

function fail(res, err) {
  if (err instanceof Error && err.stack) {
    process.stderr.write(err.stack + "\n");
  }
  if (res.headersSent) {
    // Half a response has gone out: the only honest signal left is to drop
    // the connection so the proxy sees the call failed.
    res.destroy();
    return;
  }
  const reason = errorReason(err);
  // Headers the function set must not leak into the error reply, nor what
  // it wrote to a framed response before failing.
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  if (res instanceof FrameResponse) res.chunks = null;
  res.statusCode = 500;
  res.setHeader("Content-Type", "text/plain; charset=utf-8");
  (res instanceof FrameResponse ? FrameResponse : Response).prototype.end.call(res, reason);
}

// What a function's return value means (README "Writing functions"):
// - res ended (res.send, res.end, ...): the value is ignored;
// - a value other than undefined (or a Promise resolving to one): it is
//   sent as res.send would, with the status and headers set on res, a
//   string as text/plain;
// - a Promise resolving to undefined: res is ended as it stands (status and
//   headers set on it, empty body);
// - undefined from a function that declares no res parameter: an empty 200;
// - undefined from one that takes res: it answers later through res
//   (callback style); if it has not when the call times out, that is logged.
function invoke(req, res, body) {
  req.body = body;
  let r;
  try {
    r = fn(req, res);
  } catch (err) {
    fail(res, err);
    return;
  }
  if (r !== null && typeof r === "object" && typeof r.then === "function") {
    r.then(
      (value) => answerWith(res, value, true),
      (err) => fail(res, err)
    );
  } else {
    answerWith(res, r, false);
  }
}

let warnedNoAnswer = false;

function answerWith(res, value, settled) {
  if (res.writableEnded || res.headersSent) return;
  if (value === res) value = undefined;  // `return res.status(201)`
  if (value !== undefined) {
    if (typeof value === "string" && !res.hasHeader("Content-Type"))
      res.setHeader("Content-Type", "text/plain; charset=utf-8");
    try {
      res.send(value);
    } catch (err) {
      fail(res, err);  // e.g. a value JSON.stringify cannot encode
    }
    return;
  }
  if (settled || fn.length < 2) {
    if (!settled && !warnedNoAnswer) {
      warnedNoAnswer = true;
      process.stderr.write("tinyfaas: the function returned undefined and takes no res: answering 200 with an empty body\n");
    }
    res.end();
    return;
  }
  const left = Number(res.req !== undefined ? res.req.headers["x-tinyfaas-timeout-ms"] : res.timeLeft);
  if (!(left > 0)) return;
  const timer = setTimeout(() => {
    if (!res.writableEnded)
      process.stderr.write(
        "tinyfaas: the function returned without answering and never ended res within the call's timeout " +
          "(return the answer, return a Promise of it, or call res.send())\n"
      );
  }, left);
  timer.unref();
  res.noAnswerTimer = timer;
}

function handle(req, res) {
  const url = req.url;
  const q = url.indexOf("?");
  const path = q === -1 ? url : url.slice(0, q);
  req.path = path;
  req.query = q === -1 ? {} : parseQuery(url.slice(q + 1));

  if (path === "/fn" && req.method === "POST") {
    let chunks = null;
    let first = null;
    req.on("data", (c) => {
      if (first === null) first = c;
      else if (chunks === null) chunks = [first, c];
      else chunks.push(c);
    });
    req.on("end", () => {
      let body;
      if (first === null) body = "";
      else if (chunks === null) body = first.toString("utf8");
      else body = Buffer.concat(chunks).toString("utf8");
      invoke(req, res, body);
    });
    return;
  }

  // Drain whatever body came along so the connection stays usable.
  req.resume();
  if (path === "/health" && req.method === "GET") {
    // A standby listens before its function has loaded.
    const up = fn !== null;
    res.statusCode = up ? 200 : 503;
    res.setHeader("Content-Type", "text/plain; charset=utf-8");
    res.end(up ? "OK" : "loading");
    return;
  }
  res.statusCode = 404;
  res.setHeader("Content-Type", "text/plain; charset=utf-8");
  res.end("not found");
}

const PREFACE = Buffer.from("\0TF2", "latin1");

// Headers as Node's HTTP parser would give them for the same call over HTTP
// (lower-case names, duplicates joined), Host and Content-Length included.
function frameHeaders(block, bodyBytes) {
  const headers = { host: "localhost" };
  let at = 0;
  while (at + 6 <= block.length) {
    const nameBytes = block.readUInt16BE(at);
    const name = block.toString("latin1", at + 2, at + 2 + nameBytes).toLowerCase();
    at += 2 + nameBytes;
    const valueBytes = block.readUInt32BE(at);
    const value = block.toString("latin1", at + 4, at + 4 + valueBytes);
    at += 4 + valueBytes;
    if (name === "host" || name === "content-length") continue;
    const seen = headers[name];
    if (seen === undefined) headers[name] = name === "set-cookie" ? [value] : value;
    else if (name === "set-cookie") seen.push(value);
    else headers[name] = seen + ", " + value;
  }
  headers["content-length"] = String(bodyBytes);
  return headers;
}

// One call at a time per connection (the proxy waits for each answer).
function serveFrames(socket, rest) {
  let chunks = rest.length > 0 ? [rest] : [];
  let have = rest.length;
  let busy = false;
  const next = () => {
    busy = false;
    pump();
  };
  function pump() {
    if (busy || have < 8) return;
    if (chunks.length > 1) chunks = [Buffer.concat(chunks, have)];
    const data = chunks[0];
    const headBytes = data.readUInt32BE(0);
    const bodyBytes = data.readUInt32BE(4);
    const total = 8 + headBytes + bodyBytes;
    if (have < total) return;
    const headers = frameHeaders(data.subarray(8, 8 + headBytes), bodyBytes);
    const body = data.toString("utf8", 8 + headBytes, total);
    chunks = have > total ? [data.subarray(total)] : [];
    have -= total;
    busy = true;
    const res = new FrameResponse(socket, next);
    res.timeLeft = headers["x-tinyfaas-timeout-ms"];
    invoke(new FrameRequest(headers, body), res, body);
  }
  socket.on("data", (chunk) => {
    chunks.push(chunk);
    have += chunk.length;
    pump();
  });
  pump();
}

const httpServer = http.createServer(
  { IncomingMessage: Request, ServerResponse: Response },
  handle
);

// Each connection says by its first bytes which of the two it speaks.
const server = net.createServer((socket) => {
  const onError = () => socket.destroy();
  socket.on("error", onError);
  let first = EMPTY;
  const sniff = (chunk) => {
    first = first.length === 0 ? chunk : Buffer.concat([first, chunk]);
    if (first[0] === 0 && first.length < PREFACE.length) return;
    socket.removeListener("data", sniff);
    socket.pause();
    if (first[0] === 0) {
      if (!first.subarray(0, PREFACE.length).equals(PREFACE)) {
        socket.destroy();
        return;
      }
      serveFrames(socket, first.subarray(PREFACE.length));
    } else {
      // From here Node's HTTP server handles the socket's errors (a 400
      // for a malformed request, for one).
      socket.removeListener("error", onError);
      socket.unshift(first);
      httpServer.emit("connection", socket);
    }
    socket.resume();
  };
  socket.on("data", sniff);
});
// The proxy keeps connections open and reuses them; closing an idle one
// under its feet turns into a failed call on its side.
httpServer.keepAliveTimeout = 5 * 60 * 1000;
httpServer.headersTimeout = httpServer.keepAliveTimeout + 1000;
// A function may take long to answer; the daemon owns call timeouts.
httpServer.requestTimeout = 0;
httpServer.timeout = 0;

if (listenFd === null) {
  try {
    fs.unlinkSync(socketPath);
  } catch (err) {
    if (err.code !== "ENOENT") throw err;
  }
}

// "index.js:2: SyntaxError: missing ) after argument list": where in the
// function's own files it went wrong, not the frames of this handler.
function loadErrorText(err) {
  if (!err || typeof err !== "object") return String(err);
  const message = String(err.message || "").split("\n")[0];
  const what = (err.name || "Error") + ": " + message;
  const cwd = process.cwd() + "/";
  const stack = String(err.stack || "");
  // A SyntaxError's stack starts with "/path/index.js:2"; other errors
  // have their first own frame somewhere in "at ... (/path/index.js:2:7)".
  const places = [stack.split("\n")[0], ...stack.split("\n").filter((line) => /^\s+at /.test(line))];
  for (const place of places) {
    const found = place.match(/(?:file:\/\/)?(\/[^\s()]+?):(\d+)(?::\d+)?\)?$/);
    if (found && found[1].startsWith(cwd) && !found[1].includes("/node_modules/"))
      return found[1].slice(cwd.length) + ":" + found[2] + ": " + what;
  }
  return what;
}

const listenOptions = listenFd !== null ? { fd: listenFd } : { path: socketPath, backlog: 1024 };

function serve() {
  loadFunction().then(
    (loaded) => {
      if (loaded === null) badExport();
      fn = loaded;
      if (server.listening) signalReady();
      else server.listen(listenOptions, signalReady);
    },
    (err) => {
      process.stderr.write((err && err.stack ? err.stack : String(err)) + "\n");
      // Last, on one line: the daemon's deploy reply quotes it.
      process.stderr.write("tinyfaas nodejs handler: cannot load the function: " + loadErrorText(err) + "\n");
      process.exit(1);
    }
  );
}

// A standby's control socket (standBy below): "ready\n" goes there once
// calls are served, which spares the daemon polling /health.
let control = null;
if (controlFd !== null) control = new net.Socket({ fd: controlFd, readable: true, writable: true });
else if (controlPath !== null) control = net.createConnection(controlPath);
if (control !== null) control.on("error", () => {});

function signalReady() {
  if (control !== null) control.end("ready\n");
  control = null;
}

// A standby (the process backend's warm pool) starts with no function and
// the platform's defaults only, says "standby\n" once it is up, and is
// handed one function, once, as NUL-ended records up to an empty one: the
// function's folder, a program to run instead (always "-" here: the binary
// runtime's standby starts go handlers), then the environment that replaces
// this one. No tenant's code ran here before. Before it says it is up, it
// runs this file's call path and Node's module loader once on a function of
// its own, so that the first real call does not pay for compiling them.
function standBy() {
  // Nothing connects before "ready": the daemon routes calls here only then.
  server.listen(listenOptions);
  warmUp();
  let got = Buffer.alloc(0);
  const quit = () => process.exit(0);  // the daemon no longer needs this standby
  const onData = (chunk) => {
    got = Buffer.concat([got, chunk]);
    const end = got.indexOf("\0\0");
    if (end < 0) return;
    control.removeListener("data", onData);
    control.removeListener("end", quit);
    control.pause();
    const records = got.subarray(0, end).toString("utf8").split("\0");
    for (const name of Object.keys(process.env)) delete process.env[name];
    for (const entry of records.slice(2)) {
      const eq = entry.indexOf("=");
      process.env[entry.slice(0, eq)] = entry.slice(eq + 1);
    }
    process.chdir(records[0]);
    serve();
  };
  control.on("data", onData);
  control.on("end", quit);
  control.write("standby\n");  // up and waiting: the daemon hands out only such
}

function warmUp() {
  const { EventEmitter } = require("events");
  const os = require("os");
  const path = require("path");
  class WarmSocket extends EventEmitter {
    pause() {}
    resume() {}
    unshift() {}
    destroy() {}
    write(data, cb) {
      if (cb) cb();
      return true;
    }
  }
  let calls = 0;
  fn = (req) => (++calls % 2 === 0 ? { echo: req.body } : req.body);
  const name = Buffer.from("Content-Type");
  const value = Buffer.from("text/plain");
  const block = Buffer.alloc(6 + name.length + value.length);
  block.writeUInt16BE(name.length, 0);
  name.copy(block, 2);
  block.writeUInt32BE(value.length, 2 + name.length);
  value.copy(block, 6 + name.length);
  const body = Buffer.from("warm");
  const frame = Buffer.alloc(8);
  frame.writeUInt32BE(block.length, 0);
  frame.writeUInt32BE(body.length, 4);
  const call = Buffer.concat([frame, block, body]);
  const socket = new WarmSocket();
  server.emit("connection", socket);
  socket.emit("data", Buffer.concat([PREFACE, call, call]));
  fn = null;
  // The loader's first require of a folder, on a throwaway one.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tinyfaas-warm-"));
  try {
    fs.writeFileSync(path.join(dir, "index.js"), "module.exports = (req, res) => res.send('warm');\n");
    require(dir);
    delete require.cache[require.resolve(dir)];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (control !== null && process.env.TINYFAAS_STANDBY === "1") standBy();
else serve();

function shutdown() {
  if (listenFd === null) {
    try {
      fs.unlinkSync(socketPath);
    } catch (_) {
      // already gone
    }
  }
  process.exit(0);
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
