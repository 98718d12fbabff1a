// Package par runs independent public-key operations (the HPKE encryptions
// of an UpdatePath or a Welcome, the leaf signatures a joiner verifies) on a
// bounded pool of goroutines, keeping the results and the first error of a
// serial loop.
package par

import (
	"crypto/rand"
	"runtime"
	"sync"
	"sync/atomic"
)

// Public-key operations over many nodes or members (the HPKE encryptions
// of an UpdatePath on a sparse tree or of a Welcome's GroupSecrets, the leaf
// signatures of a joiner's Validate) are independent of one another, and at thousands of members they are
// nearly all of the cost. They run on a bounded pool of goroutines, one per
// available CPU, each writing only its own result slot, so the output is the
// same as a serial loop's.

// MinParallel is the number of operations below which a loop stays serial:
// each is an X25519 or Ed25519 operation (tens of microseconds), so a few
// goroutines pay for themselves well before this.
const MinParallel = 16

// defaultRand is crypto/rand's own Reader, before any test replaces it.
var defaultRand = rand.Reader

// RandIsDefault reports whether crypto/rand.Reader is still the system
// source. A test that replaces it to make runs repeat
// (testing/cryptotest.SetGlobalRandom, which also feeds HPKE's ephemeral
// keys) needs the draws made in a fixed order, so operations that draw
// randomness run serially then.
func RandIsDefault() bool { return rand.Reader == defaultRand }

// ForEach calls f(i) for every i in [0, n) and returns the error of the
// lowest i that failed, exactly as the serial loop "for i { if err := f(i);
// err != nil { return err } }" would. With parallel set and n at least
// MinParallel, the calls are spread over up to GOMAXPROCS goroutines, so f
// must be safe to call concurrently for distinct i. Indices are handed out
// in increasing order, and a worker takes no new one once any call has
// failed, so every index below a failing one has run to completion and the
// lowest failure is the serial loop's. Calls above it may or may not run.
func ForEach(n int, parallel bool, f func(i int) error) error {
	_, err := ForEachFirst(n, parallel, nil, f)
	return err
}

// ForEachFirst is ForEach returning also the index of the failure (n if
// none). Once stop (if non-nil) is set, no new index is taken and the
// result is meaningless: the caller has stopped caring.
func ForEachFirst(n int, parallel bool, stop *atomic.Bool, f func(i int) error) (int, error) {
	if stop == nil {
		stop = new(atomic.Bool)
	}
	workers := min(runtime.GOMAXPROCS(0), n)
	if !parallel || n < MinParallel || workers < 2 {
		for i := range n {
			if stop.Load() {
				return n, nil
			}
			if err := f(i); err != nil {
				return i, err
			}
		}
		return n, nil
	}
	var (
		next   atomic.Int64
		failed atomic.Bool
		mu     sync.Mutex
		first  = n
		err    error
		wg     sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for !failed.Load() && !stop.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if e := f(i); e != nil {
					mu.Lock()
					if i < first {
						first, err = i, e
					}
					mu.Unlock()
					failed.Store(true)
					return
				}
			}
		})
	}
	wg.Wait()
	return first, err
}
