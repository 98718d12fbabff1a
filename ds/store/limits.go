package store

import (
	"context"
	"time"
)

// MaxSeq is the largest sequence number a log can reach. Both engines store
// sequence numbers as signed 64-bit integers, so a cursor beyond it names no
// record; the server refuses such cursors, and engines treat them as past
// the end, the same on every engine.
const MaxSeq = 1<<63 - 1

// SharedLimiter is implemented by stores that several mlsd nodes share
// (PostgreSQL): token buckets kept in the database, so a limit holds across
// nodes instead of per node.
type SharedLimiter interface {
	// TakeTokens takes n tokens from the bucket key (refilled at rate per
	// second up to burst; a new bucket starts full) and reports whether it
	// had them. It changes nothing when it had not.
	TakeTokens(ctx context.Context, key string, rate, burst, n float64, now time.Time) (bool, error)
}

// UsageCounter keeps running byte totals (stored bytes per account and per
// group) for quotas.
type UsageCounter interface {
	Usage(ctx context.Context, key string) (int64, error)
	AddUsage(ctx context.Context, key string, delta int64) error
}

// HealthChecker is implemented by stores that can check that they answer
// and that their tables are readable (/healthz).
type HealthChecker interface {
	Check(ctx context.Context) error
}

// LastResortClaimer is implemented by stores that can hand out an owner's
// last-resort KeyPackage without touching the regular ones: what a claimer
// gets once it has taken its share of a target's KeyPackages.
type LastResortClaimer interface {
	// ClaimLastResort returns owner's unexpired last-resort KeyPackage for
	// suite and marks it used; ErrNotFound if there is none.
	ClaimLastResort(ctx context.Context, claimer, owner string, suite uint16, now time.Time) (KeyPackage, error)
}
