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
// each is an X25519 or Ed25519 operation (tens of microseconds), but a core
// that has gone idle can take far longer than one of them to start a
// goroutine (BenchmarkGoroutineStart: 0.08 to over 1 ms on this project's
// VM after 200 µs of idleness), so a short loop would mostly run on the
// first worker anyway, having paid for waking the others.
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
		next  atomic.Int64
		first firstFailure
		wg    sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for !first.failed.Load() && !stop.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if e := f(i); e != nil {
					first.record(i, e)
					return
				}
			}
		})
	}
	wg.Wait()
	return first.result(n)
}

// firstFailure is the lowest failing index of a parallel loop and its
// error; failed tells the workers to take no more.
type firstFailure struct {
	failed atomic.Bool
	mu     sync.Mutex
	at     int
	err    error
}

func (f *firstFailure) record(i int, err error) {
	f.mu.Lock()
	if f.err == nil || i < f.at {
		f.at, f.err = i, err
	}
	f.mu.Unlock()
	f.failed.Store(true)
}

// result is the lowest failure, or (n, nil) if none.
func (f *firstFailure) result(n int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		return n, nil
	}
	return f.at, f.err
}

// Feed is a list of work that grows while ForEachFed works through it: a
// producer (a decoder) Adds items as it finds them and Closes the feed when
// it has no more, and the workers need not wait for the last item to start
// on the first.
type Feed[T any] struct {
	mu     sync.Mutex
	more   sync.Cond // signalled by Add and broadcast by Close
	items  []T
	next   int // the next item to hand out
	closed bool
}

// NewFeed returns an empty, open feed.
func NewFeed[T any]() *Feed[T] {
	f := &Feed[T]{}
	f.more.L = &f.mu
	return f
}

// Add appends v. It must not be called after Close.
func (f *Feed[T]) Add(v T) {
	f.mu.Lock()
	f.items = append(f.items, v)
	f.mu.Unlock()
	f.more.Signal()
}

// Close marks the feed complete and wakes the workers waiting for more.
func (f *Feed[T]) Close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.more.Broadcast()
}

// Items returns the items added; call it after Close.
func (f *Feed[T]) Items() []T {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.items
}

// take hands out the next item, waiting for one while the feed is open. It
// returns false once the feed is closed and drained, or halt reports true
// (checked whenever the worker would take or wait).
func (f *Feed[T]) take(halt func() bool) (int, T, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for !halt() {
		if f.next < len(f.items) {
			i := f.next
			f.next++
			return i, f.items[i], true
		}
		if f.closed {
			break
		}
		f.more.Wait()
	}
	var zero T
	return 0, zero, false
}

// ForEachFed is ForEachFirst over the items of f, taken as they are added,
// until f is closed and every item is done: it returns the index of the
// lowest item for which fn failed and its error (len(f.Items()), nil if
// none), exactly as a serial loop over the final list would. Items are
// handed out in order, and no worker takes one once any call has failed,
// so every item below a failing one has run to completion. Once stop (if
// non-nil) is set no new item is taken and the result is meaningless; a
// caller that sets it must also Close f (or have closed it), which wakes
// the workers waiting for items. The producer must Close f in every case.
func ForEachFed[T any](f *Feed[T], stop *atomic.Bool, fn func(i int, v T) error) (int, error) {
	if stop == nil {
		stop = new(atomic.Bool)
	}
	var (
		first firstFailure
		wg    sync.WaitGroup
	)
	halt := func() bool { return first.failed.Load() || stop.Load() }
	for range max(runtime.GOMAXPROCS(0), 1) {
		wg.Go(func() {
			for {
				i, v, ok := f.take(halt)
				if !ok {
					return
				}
				if e := fn(i, v); e != nil {
					first.record(i, e)
					return
				}
			}
		})
	}
	wg.Wait()
	return first.result(len(f.Items()))
}
