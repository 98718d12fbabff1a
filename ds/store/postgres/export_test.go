package postgres

import "time"

// SetUsageTTL sets how long Usage keeps a total, until the returned func
// puts it back.
func SetUsageTTL(d time.Duration) (restore func()) {
	old := usageTTL
	usageTTL = d
	return func() { usageTTL = old }
}

// UsageReads counts the totals Usage read from the database.
func (s *Store) UsageReads() uint64 { return s.usageReads.Load() }

// FlushUsage writes the usage deltas not yet written, and waits for it.
func (s *Store) FlushUsage() { s.usage.Flush() }

// OnFlushWritten runs f after each usage flush's write, before the totals
// Usage keeps are brought up to it, until the returned func removes it.
func OnFlushWritten(f func()) (restore func()) {
	testFlushWritten = f
	return func() { testFlushWritten = nil }
}

// GuardStats reports how many batches were written on cached heads, and
// how many were tried so and went through appendBatch instead.
func (s *Store) GuardStats() (guarded, unchecked uint64) { return s.guarded.Load(), s.unchecked.Load() }
