package par

import (
	"fmt"
	"sync/atomic"
	"testing"
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
					if fail >= 0 && i >= fail && i%7 == fail%7 {
						return fmt.Errorf("failed at %d", i)
					}
					return nil
				})
				name := fmt.Sprintf("parallel=%v n=%d fail=%d", parallel, n, fail)
				if fail < 0 {
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
				} else if err == nil || err.Error() != fmt.Sprintf("failed at %d", fail) {
					t.Fatalf("%s: got %v", name, err)
				}
				limit := n
				if fail >= 0 {
					limit = fail + 1
				}
				for i := range limit {
					if !ran[i].Load() {
						t.Fatalf("%s: index %d below the failure did not run", name, i)
					}
				}
			}
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
