package server

import (
	"context"
	"sync"
	"testing"
	"time"
)

// fakeBuckets is a shared limiter in memory, as the PostgreSQL store's
// rate_limits table behaves: a bucket starts full and refills at rate.
type fakeBuckets struct {
	mu      sync.Mutex
	tokens  map[string]float64
	updated map[string]time.Time
	calls   int
}

func (f *fakeBuckets) TakeTokens(_ context.Context, key string, rate, burst, n float64, now time.Time) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.tokens == nil {
		f.tokens, f.updated = map[string]float64{}, map[string]time.Time{}
	}
	t, ok := f.tokens[key]
	if !ok {
		t = burst
	} else if d := now.Sub(f.updated[key]); d > 0 {
		t = min(burst, t+d.Seconds()*rate)
	}
	if t < n {
		return false, nil
	}
	f.tokens[key], f.updated[key] = t-n, now
	return true, nil
}

// TestSharedBucketLease: nodes drawing on one large shared bucket through
// leases take together exactly what it holds, never more, in a sixteenth
// of the round trips; a lease unused past leaseFor is not used; a small
// bucket is drawn on exactly, one round trip a take.
func TestSharedBucketLease(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	shared := &fakeBuckets{}
	a := &Server{shared: shared, cfg: Config{Now: clock}}
	b := &Server{shared: shared, cfg: Config{Now: clock}}
	ctx := context.Background()

	// Two nodes on one bucket of 1,600 tokens (1 KiB messages against a
	// byte quota, say), no refill meanwhile.
	ra, rb := newRate("bytes", 1e-9, 1600), newRate("bytes", 1e-9, 1600)
	dry := 0
	got := takeThroughTwo(t, a, b, ra, rb, "acct", 5, 400, func(got int) {
		if got == 1600/5 && dry == 0 {
			dry = shared.calls
		}
	})
	if got != 1600/5 {
		t.Fatalf("%d takes of 5 from a bucket of 1,600 through two nodes' leases, want exactly %d", got, 1600/5)
	}
	// 320 takes in leases of 16 takes each until less than a lease is
	// left, that rest (under 16 takes) exactly, and a refused lease per
	// node on the way; then one round trip per refused take.
	if dry > 320/leaseCalls+leaseCalls+4 {
		t.Fatalf("%d round trips for 320 takes", dry)
	}
	if refused := shared.calls - dry; refused > 80+4 {
		t.Fatalf("%d round trips for 80 refused takes", refused)
	}

	// A lease unused for leaseFor is gone: its tokens are not taken.
	shared.calls = 0
	r := newRate("big", 1e-9, 1600)
	if ok, _ := a.takeShared(ctx, r, "g", 1); !ok || shared.calls != 1 {
		t.Fatalf("first take: %v, %d round trips", ok, shared.calls)
	}
	if ok, _ := a.takeShared(ctx, r, "g", 1); !ok || shared.calls != 1 {
		t.Fatalf("second take should come from the lease: %v, %d round trips", ok, shared.calls)
	}
	now = now.Add(leaseFor)
	if ok, _ := a.takeShared(ctx, r, "g", 1); !ok || shared.calls != 2 {
		t.Fatalf("take after the lease expired: %v, %d round trips", ok, shared.calls)
	}

	// A small bucket: every take is a round trip, and the bucket holds.
	shared.calls = 0
	small := newRate("small", 1e-9, 6)
	got = 0
	for range 10 {
		if ok, _ := a.takeShared(ctx, small, "c", 1); ok {
			got++
		}
	}
	if got != 6 || shared.calls != 10 {
		t.Fatalf("small bucket: %d of 10 taken in %d round trips, want 6 in 10", got, shared.calls)
	}
}

// TestSharedBucketLeaseFastBucket: a bucket whose rate gives more than
// leaseCalls requests in leaseSlice is leased by the slice of its rate, so a
// group taking messages at that rate goes to the database once per lease,
// not once per sixteen; and the lease still never takes more than a
// sixteenth of the burst.
func TestSharedBucketLeaseFastBucket(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	shared := &fakeBuckets{}
	s := &Server{shared: shared, cfg: Config{Now: func() time.Time { return now }}}
	ctx := context.Background()
	// 1 MB/s, burst 64 MB: a lease of 20 KB, twenty 1 KB messages.
	r := newRate("group_bytes", 1e6, 64e6)
	for range 200 {
		if ok, err := s.takeShared(ctx, r, "g", 1000); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	if shared.calls != 10 {
		t.Fatalf("%d round trips for 200 takes of 1 KB from a 1 MB/s bucket, want 10", shared.calls)
	}
	// 1 GB/s, burst 32 MB: the lease is capped at 2 MB, not 20 MB.
	shared.calls = 0
	r = newRate("group_bytes", 1e9, 32e6)
	for range 4000 {
		if ok, err := s.takeShared(ctx, r, "h", 1000); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	if shared.calls != 2 {
		t.Fatalf("%d round trips for 4,000 takes of 1 KB under a 2 MB lease cap, want 2", shared.calls)
	}

	// Two nodes drawing on one fast bucket (the clock stands still, so it
	// does not refill) through these larger leases still take together
	// exactly what it holds: 32 MB of the second bucket is drained by the
	// 4,000 takes above to 28 MB, 28,000 takes more.
	b := &Server{shared: shared, cfg: s.cfg}
	rb := newRate("group_bytes", 1e9, 32e6)
	if got := takeThroughTwo(t, s, b, r, rb, "h", 1000, 40000, nil); got != 28000 {
		t.Fatalf("%d takes of 1 KB through two nodes from a bucket left with 28 MB, want exactly 28,000", got)
	}
}

// takeThroughTwo takes n tokens of key count times, every third take
// through node b (rate rb), the others through a (ra), calling before (if
// set) with the count so far ahead of each; it returns how many were given.
func takeThroughTwo(t *testing.T, a, b *Server, ra, rb *rate, key string, n float64, count int, before func(got int)) int {
	t.Helper()
	got := 0
	for i := range count {
		if before != nil {
			before(got)
		}
		s, r := a, ra
		if i%3 == 0 {
			s, r = b, rb
		}
		ok, err := s.takeShared(context.Background(), r, key, n)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			got++
		}
	}
	return got
}
