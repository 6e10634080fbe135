"use strict";

const MAX = 10000;

// Allocated once per handler: the benchmark measures the platform, and a
// fresh array per call would measure the garbage collector instead.
const composite = new Uint8Array(MAX + 1);

module.exports = (req, res) => {
  composite.fill(0);
  let count = 0;
  for (let i = 2; i <= MAX; ++i) {
    if (composite[i] === 0) {
      ++count;
      for (let j = i * i; j <= MAX; j += i) {
        composite[j] = 1;
      }
    }
  }
  res.send("Found " + count + " primes under " + MAX);
};
