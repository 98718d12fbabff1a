package server

import (
	"container/list"
	"sync"

	"github.com/mlskit/mlskit/ds/store"
)

// recordCache keeps the most recent records of each group, so that fanning
// one message out to a hundred subscribers reads the store once. It is
// bounded in records per group and in bytes over all groups: when full, the
// least recently used group's records go first, so a group flooded with
// large messages cannot hold the node's memory.
type recordCache struct {
	mu       sync.Mutex
	size     int   // records per group
	maxBytes int64 // bodies and headers over all groups
	used     int64
	groups   map[string]*list.Element // of *cachedGroup, most recently used at the front
	lru      *list.List
}

type cachedGroup struct {
	id    string
	recs  []store.Record // contiguous by seq, newest last
	bytes int64
}

// recordCost is what a cached record holds in memory, roughly.
func recordCost(r *store.Record) int64 {
	return int64(len(r.Body)+len(r.GroupID)+len(r.Sender)+len(r.BodyHash)+len(r.PrevHash)+len(r.ChainHash)) + 160
}

func newRecordCache(size int, maxBytes int64) *recordCache {
	return &recordCache{size: size, maxBytes: maxBytes, groups: map[string]*list.Element{}, lru: list.New()}
}

func (c *recordCache) bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}

func (c *recordCache) add(recs []store.Record) {
	if len(recs) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := string(recs[0].GroupID)
	el, ok := c.groups[k]
	if !ok {
		el = c.lru.PushFront(&cachedGroup{id: k})
		c.groups[k] = el
	}
	c.lru.MoveToFront(el)
	g := el.Value.(*cachedGroup)
	cur := g.recs
	for _, r := range recs {
		switch {
		case len(cur) == 0 || r.Seq == cur[len(cur)-1].Seq+1:
			cur = append(cur, r)
		case r.Seq <= cur[len(cur)-1].Seq:
			continue
		default:
			cur = append(cur[:0], r) // not contiguous: start over
		}
	}
	if len(cur) > c.size {
		cur = append([]store.Record(nil), cur[len(cur)-c.size/2:]...)
	}
	g.recs = cur
	c.recount(g)
	// Over the byte bound: drop other groups, least recently used first,
	// then this group's oldest records.
	for c.maxBytes > 0 && c.used > c.maxBytes {
		back := c.lru.Back()
		if back != el {
			c.drop(back)
			continue
		}
		if len(g.recs) <= 1 {
			if c.used > c.maxBytes {
				c.drop(el) // one record larger than the whole cache
			}
			break
		}
		g.recs = append([]store.Record(nil), g.recs[len(g.recs)/2:]...)
		c.recount(g)
	}
}

func (c *recordCache) recount(g *cachedGroup) {
	var n int64
	for i := range g.recs {
		n += recordCost(&g.recs[i])
	}
	c.used += n - g.bytes
	g.bytes = n
}

func (c *recordCache) drop(el *list.Element) {
	g := el.Value.(*cachedGroup)
	c.used -= g.bytes
	delete(c.groups, g.id)
	c.lru.Remove(el)
}

// after returns up to limit records with seq > after, or nil if the cache
// cannot answer without a gap.
func (c *recordCache) after(groupID []byte, after uint64, limit int) []store.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.groups[string(groupID)]
	if !ok {
		return nil
	}
	cur := el.Value.(*cachedGroup).recs
	if len(cur) == 0 || after >= store.MaxSeq || cur[0].Seq > after+1 || cur[len(cur)-1].Seq <= after {
		return nil
	}
	c.lru.MoveToFront(el)
	i := int(after + 1 - cur[0].Seq)
	j := min(len(cur), i+limit)
	return append([]store.Record(nil), cur[i:j]...)
}
