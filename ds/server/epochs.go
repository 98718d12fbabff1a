package server

import (
	"hash/maphash"
	"sync"
	"time"

	"github.com/mlskit/mlskit/ds/store"
)

// epochCache remembers, per group, what this node knows for certain: the
// epoch is at least `current`, and which commit won each recent epoch. Both
// only grow, so an answer derived from them is never wrong, only possibly
// incomplete; anything it cannot answer goes to the store.
type epochCache struct {
	seed   maphash.Seed
	shards [64]sync.Mutex

	mu     sync.Mutex
	groups map[string]*groupEpochs
}

type groupEpochs struct {
	current uint64
	winners map[uint64]winner
	// commit priority this node granted (fairness)
	prioClient string
	prioEpoch  uint64
	prioUntil  time.Time
}

type winner struct {
	seq  uint64
	hash []byte
}

const keepWinners = 64

func newEpochCache() *epochCache {
	return &epochCache{seed: maphash.MakeSeed(), groups: map[string]*groupEpochs{}}
}

// lock serialises commits to one group within this node.
func (c *epochCache) lock(groupID []byte) func() {
	m := &c.shards[maphash.Bytes(c.seed, groupID)%uint64(len(c.shards))]
	m.Lock()
	return m.Unlock
}

func (c *epochCache) get(groupID []byte) *groupEpochs {
	g, ok := c.groups[string(groupID)]
	if !ok {
		if len(c.groups) > 100000 {
			clear(c.groups)
		}
		g = &groupEpochs{winners: map[uint64]winner{}}
		c.groups[string(groupID)] = g
	}
	return g
}

// check answers a commit from memory when it can: stale if its epoch is known
// to be won, deferred if this node granted the epoch to another member.
func (c *epochCache) check(a *store.Append, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, ok := c.groups[string(a.GroupID)]
	if !ok {
		return nil
	}
	if a.Epoch < g.current {
		if w, ok := g.winners[a.Epoch]; ok {
			return &store.StaleEpochError{Epoch: a.Epoch, CurrentEpoch: g.current, WinningSeq: w.seq, WinningHash: w.hash}
		}
		return nil
	}
	if a.Epoch == g.prioEpoch && g.prioClient != "" && g.prioClient != a.Sender && now.Before(g.prioUntil) {
		return &store.DeferredError{Until: g.prioUntil}
	}
	return nil
}

func (g *groupEpochs) addWinner(epoch uint64, w winner) {
	g.winners[epoch] = w
	if len(g.winners) > keepWinners {
		for e := range g.winners {
			if e+keepWinners < g.current {
				delete(g.winners, e)
			}
		}
	}
}

func (c *epochCache) won(groupID []byte, epoch uint64, r *store.Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.get(groupID)
	g.current = max(g.current, epoch+1)
	g.addWinner(epoch, winner{r.Seq, r.ChainHash})
}

func (c *epochCache) learn(groupID []byte, se *store.StaleEpochError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.get(groupID)
	g.current = max(g.current, se.CurrentEpoch)
	if se.WinningSeq != 0 {
		g.addWinner(se.Epoch, winner{se.WinningSeq, se.WinningHash})
	}
}

// grant records a priority for epoch unless one is already held for it.
func (c *epochCache) grant(groupID []byte, client string, epoch uint64, until time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.get(groupID)
	if g.prioEpoch >= epoch && g.prioClient != "" {
		return false
	}
	g.prioClient, g.prioEpoch, g.prioUntil = client, epoch, until
	return true
}
