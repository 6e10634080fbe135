"use strict";
// The native baselines' HTTP server: the sieve behind Node's own http
// module, reading the body as the tinyFaaS handler does, so that both do the
// same work per call. Shared by native-http.js and native-http-cluster.js.

const http = require("http");
const sieve = require("./sieve");

function createSieveServer() {
  const server = http.createServer((req, res) => {
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
  return server;
}

module.exports = createSieveServer;
