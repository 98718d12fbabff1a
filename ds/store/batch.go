package store

import (
	"context"
	"sync"
	"sync/atomic"
)

// Batcher is group commit for an engine: writes from concurrent callers are
// gathered into one transaction and one fsync.
//
// It is leader/follower batching with no timer. A caller that finds no
// batch being written leads: it takes what is queued (at least its own
// write), has the engine write it, and answers the others. Callers that
// arrive meanwhile queue up; when the leader is done, the first of them
// leads the next batch with everything queued by then. A lone caller thus
// writes at once, and under load every batch holds what arrived during the
// previous one's fsync.
//
// Durability is the engine's: Run must set every Op's Err, and leave it nil
// only once the transaction holding the op has committed. Do returns only
// after that, so an acknowledged write is a durable one.
type Batcher[F any] struct {
	// Run writes ops, in order, in one transaction (or, after a failure,
	// each alone) and sets each Op's Err. An op whose Err is nil must be
	// committed when Run returns.
	Run func(ops []*Op[F])
	// Max caps the ops of one batch (0: 256).
	Max int

	mu      sync.Mutex
	pending []*Op[F]
	running bool

	ops, batches atomic.Uint64
}

// Op is one queued write.
type Op[F any] struct {
	Ctx context.Context
	Fn  F
	Err error

	wake chan struct{}
	lead bool
}

// Do queues fn and returns once the batch holding it is written.
// A caller whose ctx ends before its batch starts gets ctx's error and
// nothing of fn is written; once its batch started, it waits for the
// outcome (the transaction does not depend on any one caller's context).
func (b *Batcher[F]) Do(ctx context.Context, fn F) error {
	op := &Op[F]{Ctx: ctx, Fn: fn, wake: make(chan struct{}, 1)}
	b.mu.Lock()
	b.pending = append(b.pending, op)
	if b.running {
		b.mu.Unlock()
		<-op.wake
		if !op.lead {
			return op.Err
		}
	} else {
		b.running = true
		b.mu.Unlock()
	}
	b.lead()
	return op.Err
}

// lead writes one batch, whose first op is the caller's own, then hands the
// lead to the first queued caller, if any.
func (b *Batcher[F]) lead() {
	max := b.Max
	if max <= 0 {
		max = 256
	}
	b.mu.Lock()
	n := min(len(b.pending), max)
	batch := b.pending[:n:n]
	b.pending = append([]*Op[F](nil), b.pending[n:]...)
	b.mu.Unlock()

	live := make([]*Op[F], 0, len(batch))
	for _, op := range batch {
		if err := op.Ctx.Err(); err != nil {
			op.Err = err
			continue
		}
		live = append(live, op)
	}
	if len(live) > 0 {
		b.ops.Add(uint64(len(live)))
		b.batches.Add(1)
		b.Run(live)
	}

	b.mu.Lock()
	if len(b.pending) > 0 {
		next := b.pending[0]
		next.lead = true
		next.wake <- struct{}{}
	} else {
		b.running = false
	}
	b.mu.Unlock()
	for _, op := range batch[1:] {
		op.wake <- struct{}{}
	}
}

// Queued reports how many ops wait for the batch being written.
func (b *Batcher[F]) Queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending)
}

// Stats reports how many ops were written in how many batches.
func (b *Batcher[F]) Stats() (ops, batches uint64) {
	return b.ops.Load(), b.batches.Load()
}

// BatchStats is implemented by engines with group commit: how many writes
// were made in how many transactions, since the store was opened.
type BatchStats interface {
	BatchStats() (writes, transactions uint64)
}
