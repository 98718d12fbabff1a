package par

import (
	"fmt"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// TestForEachSerialResult: parallel or not, every index below the lowest
// failure runs, and that failure is the error returned, as from the serial
// loop.
func TestForEachSerialResult(t *testing.T) {
	for _, parallel := range []bool{false, true} {
		for _, n := range []int{0, 1, MinParallel - 1, MinParallel, 1000} {
			for _, fail := range []int{-1, 0, n / 2, n - 1} {
				if fail >= n {
					continue
				}
				ran := make([]atomic.Bool, n)
				err := ForEach(n, parallel, func(i int) error {
					ran[i].Store(true)
					return failFrom(i, fail)
				})
				name := fmt.Sprintf("parallel=%v n=%d fail=%d", parallel, n, fail)
				if fail < 0 {
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
				} else if err == nil || err.Error() != fmt.Sprintf("failed at %d", fail) {
					t.Fatalf("%s: got %v", name, err)
				}
				ranBelow(t, name, ran, fail)
			}
		}
	}
}

// failFrom fails i if i is fail or above it in steps of 7 (fail < 0: never).
func failFrom(i, fail int) error {
	if fail >= 0 && i >= fail && i%7 == fail%7 {
		return fmt.Errorf("failed at %d", i)
	}
	return nil
}

// ranBelow checks that every index up to fail (every one, if fail < 0) ran.
func ranBelow(t *testing.T, name string, ran []atomic.Bool, fail int) {
	t.Helper()
	limit := len(ran)
	if fail >= 0 {
		limit = fail + 1
	}
	for i := range limit {
		if !ran[i].Load() {
			t.Fatalf("%s: index %d at or below the failure did not run", name, i)
		}
	}
}

// TestForEachFirstStop: once stop is set no new index is taken.
func TestForEachFirstStop(t *testing.T) {
	var stop atomic.Bool
	var calls atomic.Int64
	_, err := ForEachFirst(10000, true, &stop, func(i int) error {
		if calls.Add(1) == 50 {
			stop.Store(true)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Each worker may finish the index it holds: at most one more per worker.
	if c := calls.Load(); c > 50+64 {
		t.Fatalf("%d calls after stop at 50", c)
	}
}

// TestForEachFedSerialResult: over a feed filled while the workers run
// (sometimes faster than they take, sometimes slower), every item below
// the lowest failure runs and that failure is returned with its index, as
// from the serial loop over the final list; with no failure the index is
// the item count.
func TestForEachFedSerialResult(t *testing.T) {
	for _, n := range []int{0, 1, 5, 300} {
		for _, fail := range []int{-1, 0, n / 2, n - 1} {
			if fail >= n {
				continue
			}
			for _, slow := range []bool{false, true} {
				name := fmt.Sprintf("n=%d fail=%d slow producer=%v", n, fail, slow)
				f := NewFeed[int]()
				ran := make([]atomic.Bool, n)
				type result struct {
					at  int
					err error
				}
				res := make(chan result)
				go func() {
					at, err := ForEachFed(f, nil, func(i, v int) error {
						if i != v {
							return fmt.Errorf("item %d handed out as %d", v, i)
						}
						ran[i].Store(true)
						return failFrom(i, fail)
					})
					res <- result{at, err}
				}()
				for i := range n {
					f.Add(i)
					if slow && i%10 == 0 {
						time.Sleep(100 * time.Microsecond) // the workers wait for items
					}
				}
				f.Close()
				r := <-res
				switch {
				case fail < 0 && (r.err != nil || r.at != n):
					t.Fatalf("%s: got %d, %v", name, r.at, r.err)
				case fail >= 0 && (r.at != fail || r.err == nil || r.err.Error() != fmt.Sprintf("failed at %d", fail)):
					t.Fatalf("%s: got %d, %v", name, r.at, r.err)
				}
				ranBelow(t, name, ran, fail)
			}
		}
	}
}

// TestForEachFedStop: workers waiting on an open feed return once stop is
// set and the feed closed.
func TestForEachFedStop(t *testing.T) {
	f := NewFeed[int]()
	var stop atomic.Bool
	var calls atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		ForEachFed(f, &stop, func(int, int) error { calls.Add(1); return nil })
	}()
	for i := range 10 {
		f.Add(i)
	}
	for calls.Load() < 10 {
		time.Sleep(time.Millisecond) // the workers now wait for an eleventh
	}
	stop.Store(true)
	f.Close()
	<-done // hangs if the waiting workers were not woken
	if c := calls.Load(); c != 10 {
		t.Fatalf("%d calls", c)
	}
}

// BenchmarkGoroutineStart measures how long a goroutine started while the
// other cores are idle waits before it runs, the caller busy meanwhile:
// what a piece of work handed to another core pays before the core takes
// it. Each start follows 200 µs of sleep, so the idle cores have gone to
// sleep as they do between a client's operations. On this project's VM
// the wait is tens to hundreds of microseconds (the idle virtual CPU has
// to be woken), more than an Ed25519 verification: work shorter than that
// gains nothing from another core (see MinParallel), and the first of a
// parallel loop's items waits that long for its second worker.
func BenchmarkGoroutineStart(b *testing.B) {
	if runtime.GOMAXPROCS(0) < 2 {
		b.Skip("one core")
	}
	var waits []time.Duration
	for b.Loop() {
		time.Sleep(200 * time.Microsecond)
		var started atomic.Int64
		t0 := time.Now()
		done := make(chan struct{})
		go func() {
			started.Store(int64(time.Since(t0)))
			close(done)
		}()
		// The caller stays busy (as it would with its own share of
		// the work) until the goroutine has started or 1 ms has
		// passed, so the goroutine cannot simply run on this core.
		for started.Load() == 0 && time.Since(t0) < time.Millisecond {
		}
		<-done
		waits = append(waits, time.Duration(started.Load()))
	}
	slices.Sort(waits)
	q := func(f float64) float64 { return float64(waits[int(f*float64(len(waits)-1))]) }
	b.ReportMetric(q(0.1), "p10-ns")
	b.ReportMetric(q(0.5), "p50-ns")
	b.ReportMetric(q(0.9), "p90-ns")
}
