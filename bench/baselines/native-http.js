"use strict";
// The thesis' native deployment over HTTP: the sieve in one plain Node.js
// process behind Node's own http module, no platform in between.
//   node native-http.js PORT [ADDRESS]     (ADDRESS defaults to 127.0.0.1)

const http = require("http");
const sieve = require("./sieve");

const port = Number(process.argv[2]);
const address = process.argv[3] || "127.0.0.1";
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  process.stderr.write("usage: node native-http.js PORT [ADDRESS]\n");
  process.exit(2);
}

const server = http.createServer((req, res) => {
  // Read the body as the tinyFaaS handler does, so both do the same work.
  let body = "";
  req.setEncoding("utf8");
  req.on("data", (chunk) => {
    body += chunk;
  });
  req.on("end", () => {
    const result = sieve(body);
    res.writeHead(200, { "Content-Type": "text/plain", "Content-Length": Buffer.byteLength(result) });
    res.end(result);
  });
});
// Node closes idle keep-alive connections after 5 s by default; a client
// waiting on a slow neighbour must not lose its connection in between.
server.keepAliveTimeout = 60000;
server.listen(port, address, () => {
  process.stdout.write(`native-http listening on ${address}:${port}\n`);
});

for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
