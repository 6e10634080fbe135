package main

import (
	"strconv"
	"sync"
)

const sieveMax = 10000

// Tables are reused, as functions/sieve reuses its one array: the benchmark
// measures the platform, not the garbage collector. Calls run concurrently
// (one goroutine each), so each call takes a table of its own from the pool.
var tables = sync.Pool{New: func() any { return new([sieveMax + 1]bool) }}

// fn counts the primes up to 10,000 with the sieve of Eratosthenes, the
// tinyFaaS thesis' benchmark function (functions/sieve in Go).
func fn(data string, headers map[string]string) (string, error) {
	composite := tables.Get().(*[sieveMax + 1]bool)
	defer tables.Put(composite)
	*composite = [sieveMax + 1]bool{}
	count := 0
	for i := 2; i <= sieveMax; i++ {
		if !composite[i] {
			count++
			for j := i * i; j <= sieveMax; j += i {
				composite[j] = true
			}
		}
	}
	return "Found " + strconv.Itoa(count) + " primes under " + strconv.Itoa(sieveMax), nil
}
