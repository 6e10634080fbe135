"use strict";
// tinyFaaS function handler for Node.js.
//
// Serves the handler contract on the Unix socket named by TINYFAAS_SOCKET:
//   GET  /health -> 200 "OK"
//   POST /fn     -> runs the user's express-style function (req, res)
// Only Node's built-in http module is used: an express app costs roughly half
// the throughput for a single route, and the runtime must not need npm.

const http = require("http");
const fs = require("fs");

const socketPath = process.env.TINYFAAS_SOCKET;
if (!socketPath) {
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

// The subset of express' response API that functions written for upstream use.
// Methods live on the prototype so each request allocates nothing extra.
class Response extends http.ServerResponse {
  status(code) {
    this.statusCode = code;
    return this;
  }
  set(field, value) {
    if (typeof field === "object" && field !== null) {
      for (const k of Object.keys(field)) this.setHeader(k, field[k]);
    } else {
      this.setHeader(field, value);
    }
    return this;
  }
  header(field, value) {
    return this.set(field, value);
  }
  get(field) {
    return this.getHeader(field);
  }
  type(t) {
    this.setHeader("Content-Type", t.includes("/") ? t : "text/" + t);
    return this;
  }
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
  }
  json(obj) {
    if (!this.hasHeader("Content-Type")) {
      this.setHeader("Content-Type", "application/json; charset=utf-8");
    }
    const s = JSON.stringify(obj);
    this.end(s === undefined ? "" : s);
    return this;
  }
  sendStatus(code) {
    this.statusCode = code;
    return this.send(STATUS_TEXT[code] || String(code));
  }
  end(chunk, encoding, cb) {
    if (this.writableEnded) {
      return this;
    }
    return super.end(chunk, encoding, cb);
  }
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
  // Headers the function set must not leak into the error reply.
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  res.statusCode = 500;
  res.setHeader("Content-Type", "text/plain; charset=utf-8");
  Response.prototype.end.call(res, reason);
}

function invoke(req, res, body) {
  req.body = body;
  try {
    const r = fn(req, res);
    if (r !== null && typeof r === "object" && typeof r.then === "function") {
      r.then(undefined, (err) => fail(res, err));
    }
  } catch (err) {
    fail(res, err);
  }
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
    res.statusCode = 200;
    res.setHeader("Content-Type", "text/plain; charset=utf-8");
    res.end("OK");
    return;
  }
  res.statusCode = 404;
  res.setHeader("Content-Type", "text/plain; charset=utf-8");
  res.end("not found");
}

const server = http.createServer(
  { IncomingMessage: Request, ServerResponse: Response },
  handle
);
// The proxy keeps connections open and reuses them; closing an idle one
// under its feet turns into a failed call on its side.
server.keepAliveTimeout = 5 * 60 * 1000;
server.headersTimeout = server.keepAliveTimeout + 1000;
// A function may take long to answer; the daemon owns call timeouts.
server.requestTimeout = 0;
server.timeout = 0;

try {
  fs.unlinkSync(socketPath);
} catch (err) {
  if (err.code !== "ENOENT") throw err;
}

loadFunction().then(
  (loaded) => {
    if (loaded === null) badExport();
    fn = loaded;
    server.listen({ path: socketPath, backlog: 1024 });
  },
  (err) => {
    process.stderr.write("tinyfaas nodejs handler: cannot load the function\n");
    process.stderr.write((err && err.stack ? err.stack : String(err)) + "\n");
    process.exit(1);
  }
);

function shutdown() {
  try {
    fs.unlinkSync(socketPath);
  } catch (_) {
    // already gone
  }
  process.exit(0);
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
