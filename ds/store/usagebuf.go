package store

import (
	"context"
	"sync"
	"time"
)

// UsageGather is the engines' UsageBuffer.Gather: under load, one write of
// the totals per 20 ms instead of one per batch of appends.
const UsageGather = 20 * time.Millisecond

// UsageBuffer writes usage totals (UsageCounter) behind: Add records a
// delta in memory and returns; one flusher at a time writes the sums, one
// statement per key, soon after (with group commit, in the next batch).
//
// Why: the server counts stored bytes after each write it acknowledged, for
// the account and the group. Written through, that is two more durable
// transactions on every message's path, and the group's row is one hot row
// that every sender's transaction must lock in turn. The count is not part
// of what was acknowledged: a crash between a write and its count already
// loses the count today; behind, it may lose the counts of the last flush
// (Gather and one write: tens of milliseconds of traffic), so a stored-bytes quota undercounts by at most
// that. Reads (Usage) add what is not yet written, so quotas see every Add
// of this process at once.
type UsageBuffer struct {
	// Write adds the deltas to the stored totals, in one transaction.
	Write func(ctx context.Context, deltas map[string]int64) error
	// Gather is how long a flush waits for more deltas before it writes
	// (0: none). Under load every message adds to the same few keys; a
	// few milliseconds turn a write per batch of messages into a write per
	// interval, at the price of that much more traffic whose count a crash
	// may lose.
	Gather time.Duration

	mu       sync.Mutex
	pending  map[string]int64
	inflight map[string]int64
	running  bool
	idle     *sync.Cond
}

// Add records delta for key and starts a flush if none is running.
func (u *UsageBuffer) Add(key string, delta int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.pending == nil {
		u.pending = map[string]int64{}
	}
	u.pending[key] += delta
	if !u.running {
		u.running = true
		go u.flush()
	}
}

// Unwritten is what Add recorded for key that is not yet stored.
func (u *UsageBuffer) Unwritten(key string) int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.pending[key] + u.inflight[key]
}

func (u *UsageBuffer) flush() {
	for failures := 0; ; {
		if u.Gather > 0 {
			time.Sleep(u.Gather)
		}
		u.mu.Lock()
		if len(u.pending) == 0 {
			u.running = false
			if u.idle != nil {
				u.idle.Broadcast()
			}
			u.mu.Unlock()
			return
		}
		u.inflight, u.pending = u.pending, nil
		u.mu.Unlock()
		err := u.Write(context.Background(), u.inflight)
		u.mu.Lock()
		if err != nil {
			// Keep the deltas for the next try.
			if u.pending == nil {
				u.pending = map[string]int64{}
			}
			for k, d := range u.inflight {
				u.pending[k] += d
			}
		}
		u.inflight = nil
		u.mu.Unlock()
		if err != nil {
			failures++
			if failures >= 5 {
				// Give up for now; the next Add tries again.
				u.mu.Lock()
				u.running = false
				if u.idle != nil {
					u.idle.Broadcast()
				}
				u.mu.Unlock()
				return
			}
			time.Sleep(time.Duration(failures) * 100 * time.Millisecond)
		}
	}
}

// Flush writes what is pending and waits until no flush runs (Close calls
// it before closing the database).
func (u *UsageBuffer) Flush() {
	u.mu.Lock()
	if u.idle == nil {
		u.idle = sync.NewCond(&u.mu)
	}
	if !u.running && len(u.pending) > 0 {
		u.running = true
		go u.flush()
	}
	for u.running {
		u.idle.Wait()
	}
	u.mu.Unlock()
}
