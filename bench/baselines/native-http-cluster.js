"use strict";
// native-http.js scaled out with node:cluster: the sieve behind Node's own
// http module in N worker processes (default 2) that share one listening
// port, no platform in between. Issue 16 compares tinyFaaS with 2 handlers
// against this with 2 workers.
//   node native-http-cluster.js PORT [ADDRESS] [--workers N]
// (ADDRESS defaults to 127.0.0.1; N also from NATIVE_HTTP_WORKERS.) The
// primary only distributes connections (Node's default round-robin policy on
// Linux; NODE_CLUSTER_SCHED_POLICY=none leaves it to the kernel). On SIGTERM
// or SIGINT it stops its workers and exits 0 once they are gone; a worker
// that dies on its own ends the primary too (exit 1), so a benchmark never
// silently measures fewer workers. Workers exit by themselves when the
// primary's IPC channel closes (the primary killed).

const cluster = require("node:cluster");

function usage() {
  process.stderr.write("usage: node native-http-cluster.js PORT [ADDRESS] [--workers N]\n");
  process.exit(2);
}

const positional = [];
let workers = process.env.NATIVE_HTTP_WORKERS ? Number(process.env.NATIVE_HTTP_WORKERS) : 2;
for (let i = 2; i < process.argv.length; i++) {
  const arg = process.argv[i];
  if (arg === "--workers") workers = Number(process.argv[++i]);
  else if (arg.startsWith("--workers=")) workers = Number(arg.slice("--workers=".length));
  else positional.push(arg);
}
const port = Number(positional[0]);
const address = positional[1] || "127.0.0.1";
if (!Number.isInteger(port) || port <= 0 || port > 65535 || positional.length > 2) usage();
if (!Number.isInteger(workers) || workers < 1 || workers > 256) usage();

if (cluster.isPrimary) {
  let stopping = false;
  let status = 0;
  let listening = 0;
  cluster.on("listening", () => {
    if (++listening === workers) {
      process.stdout.write(`native-http-cluster listening on ${address}:${port} (${workers} workers)\n`);
    }
  });
  cluster.on("exit", (worker, code, signal) => {
    if (!stopping) {
      process.stderr.write(`native-http-cluster: worker ${worker.process.pid} exited (${signal || code}), stopping\n`);
      stop(1);
    } else if (Object.keys(cluster.workers).length === 0) {
      process.exit(status);
    }
  });
  for (let i = 0; i < workers; i++) cluster.fork();

  function stop(code) {
    if (stopping) return;
    stopping = true;
    status = code;
    const alive = Object.values(cluster.workers);
    if (alive.length === 0) process.exit(code);
    for (const w of alive) w.process.kill("SIGTERM");
    // Bounded: a worker that ignores SIGTERM is killed after 3 s.
    setTimeout(() => {
      for (const w of Object.values(cluster.workers)) w.process.kill("SIGKILL");
      process.exit(code);
    }, 3000).unref();
  }
  for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => stop(0));
} else {
  const server = require("./sieve-server")();
  server.listen(port, address);
  for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
}
