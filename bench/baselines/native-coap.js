"use strict";
// The thesis' native deployment over CoAP: the sieve in one plain Node.js
// process behind a node-coap server (npm "coap"), no platform in between.
//   node native-coap.js PORT [ADDRESS]     (ADDRESS defaults to 127.0.0.1)

const coap = require("coap");
const sieve = require("./sieve");

const port = Number(process.argv[2]);
const address = process.argv[3] || "127.0.0.1";
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  process.stderr.write("usage: node native-coap.js PORT [ADDRESS]\n");
  process.exit(2);
}

const server = coap.createServer({ type: address.includes(":") ? "udp6" : "udp4" }, (req, res) => {
  const result = sieve(req.payload.toString("utf8"));
  res.end(result);
});
server.listen(port, address, () => {
  process.stdout.write(`native-coap listening on ${address}:${port}\n`);
});

for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
