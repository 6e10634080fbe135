"use strict";
// The thesis' native deployment over HTTP: the sieve in one plain Node.js
// process behind Node's own http module, no platform in between.
//   node native-http.js PORT [ADDRESS]     (ADDRESS defaults to 127.0.0.1)

const createSieveServer = require("./sieve-server");

const port = Number(process.argv[2]);
const address = process.argv[3] || "127.0.0.1";
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  process.stderr.write("usage: node native-http.js PORT [ADDRESS]\n");
  process.exit(2);
}

const server = createSieveServer();
server.listen(port, address, () => {
  process.stdout.write(`native-http listening on ${address}:${port}\n`);
});

for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
