"use strict";
// The benchmark function of functions/sieve/index.js, copied rather than
// required so that the native baselines stay a standalone Node.js program,
// as the thesis' "native deployment" was. Keep the two in step: a faster
// sieve here would flatter native, a slower one tinyFaaS.

const MAX = 10000;
const composite = new Uint8Array(MAX + 1);

module.exports = function sieve() {
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
  return "Found " + count + " primes under " + MAX;
};
