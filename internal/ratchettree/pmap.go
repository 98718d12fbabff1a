package ratchettree

import (
	"hash/maphash"
	"math/bits"
)

// pmap is a persistent hash map from byte strings to V (a hash array mapped
// trie). Clones share structure and copy only the nodes on the path of a
// write, so the tree's key indexes (RFC 9420, Section 7.3 uniqueness) cost
// O(1) to clone and O(log n) to update, however many members there are.
//
// Keys are hashed with a per-process random seed, so peers cannot aim for
// collisions; colliding keys share a bucket at the bottom level. A map
// keeps the key slices it is given, not copies: the tree's keys are its
// nodes' own bytes, which never change once stored (a copy would be one
// more allocation, and 32 bytes, per key: three keys per member).
type pmap[V any] struct {
	root  *hamtNode[V]
	owner *owner
	size  int
	// slab holds entries made in one allocation for the puts of a map
	// being built (reserve). It is m's alone: a clone takes none.
	slab []hamtEntry[V]
}

const (
	hamtBits  = 5
	hamtWidth = 1 << hamtBits
	hamtMask  = hamtWidth - 1
	hamtDepth = 64 / hamtBits // levels that consume hash bits; below is a bucket
)

var hamtSeed = maphash.MakeSeed()

type hamtEntry[V any] struct {
	hash uint64
	key  []byte // the caller's, never written
	val  V
}

type hamtNode[V any] struct {
	owner  *owner
	bitmap uint32
	// kids[i] is either a sub-node or a single entry (sub == nil). At depth
	// hamtDepth the node is a bucket: entries only, bitmap unused.
	kids []hamtSlot[V]
}

// hamtSlot holds its entry by pointer: entries are never written once
// made, so a node copied on write copies two words per slot, not the
// entry (a path update copies a node of up to 32 slots at each level).
type hamtSlot[V any] struct {
	sub   *hamtNode[V]
	entry *hamtEntry[V]
}

func hashKey(k string) uint64 { return maphash.String(hamtSeed, k) }

func (m *pmap[V]) clone() pmap[V] {
	m.owner = new(owner)
	m.slab = nil
	return pmap[V]{root: m.root, owner: new(owner), size: m.size}
}

// reserve makes room for the entries of n puts in one allocation, for a map
// about to be filled (a tree's index, when it is decoded). The slab lives
// as long as any of its entries does.
func (m *pmap[V]) reserve(n int) {
	m.slab = make([]hamtEntry[V], n)
}

func (m *pmap[V]) len() int { return m.size }

func (m *pmap[V]) get(key []byte) (V, bool) {
	k := string(key) // no allocation: the compiler avoids it for lookups
	h := hashKey(k)
	n := m.root
	for depth := 0; n != nil; depth++ {
		if depth == hamtDepth {
			for _, s := range n.kids {
				if string(s.entry.key) == k {
					return s.entry.val, true
				}
			}
			break
		}
		bit := uint32(1) << ((h >> (depth * hamtBits)) & hamtMask)
		if n.bitmap&bit == 0 {
			break
		}
		s := &n.kids[bits.OnesCount32(n.bitmap&(bit-1))]
		if s.sub == nil {
			if s.entry.hash == h && string(s.entry.key) == k {
				return s.entry.val, true
			}
			break
		}
		n = s.sub
	}
	var zero V
	return zero, false
}

// editable returns n if m owns it, else a copy that m owns.
func (m *pmap[V]) editable(n *hamtNode[V]) *hamtNode[V] {
	if n.owner == m.owner {
		return n
	}
	return &hamtNode[V]{owner: m.owner, bitmap: n.bitmap, kids: append([]hamtSlot[V](nil), n.kids...)}
}

// put sets key to val. m keeps key: the caller must not change it
// afterwards.
func (m *pmap[V]) put(key []byte, val V) {
	var e *hamtEntry[V]
	if len(m.slab) > 0 {
		e, m.slab = &m.slab[0], m.slab[1:]
	} else {
		e = new(hamtEntry[V])
	}
	*e = hamtEntry[V]{hash: hashKey(string(key)), key: key, val: val}
	if m.root == nil {
		m.root = &hamtNode[V]{owner: m.owner}
	}
	m.root = m.editable(m.root)
	if m.insert(m.root, 0, e) {
		m.size++
	}
}

// insert puts e into the editable node n at depth; it reports whether the
// key is new.
func (m *pmap[V]) insert(n *hamtNode[V], depth int, e *hamtEntry[V]) bool {
	if depth == hamtDepth {
		for i := range n.kids {
			if string(n.kids[i].entry.key) == string(e.key) {
				n.kids[i].entry = e
				return false
			}
		}
		n.kids = append(n.kids, hamtSlot[V]{entry: e})
		return true
	}
	bit := uint32(1) << ((e.hash >> (depth * hamtBits)) & hamtMask)
	i := bits.OnesCount32(n.bitmap & (bit - 1))
	if n.bitmap&bit == 0 {
		n.bitmap |= bit
		n.kids = append(n.kids, hamtSlot[V]{})
		copy(n.kids[i+1:], n.kids[i:])
		n.kids[i] = hamtSlot[V]{entry: e}
		return true
	}
	s := &n.kids[i]
	if s.sub != nil {
		s.sub = m.editable(s.sub)
		return m.insert(s.sub, depth+1, e)
	}
	if string(s.entry.key) == string(e.key) {
		s.entry = e
		return false
	}
	// Two entries share this slot: push both one level down.
	sub := &hamtNode[V]{owner: m.owner}
	m.insert(sub, depth+1, s.entry)
	m.insert(sub, depth+1, e)
	*s = hamtSlot[V]{sub: sub}
	return true
}

// del removes key if present.
func (m *pmap[V]) del(key []byte) {
	if _, ok := m.get(key); ok {
		m.delPresent(key)
	}
}

// delPresent removes key, which the caller has just found (get): one walk
// instead of del's two.
func (m *pmap[V]) delPresent(key []byte) {
	k := string(key)
	m.root = m.editable(m.root)
	m.remove(m.root, 0, hashKey(k), k)
	m.size--
}

// remove deletes k, known to be present, below the editable node n. Emptied
// sub-nodes are unlinked; nodes are not otherwise compacted.
func (m *pmap[V]) remove(n *hamtNode[V], depth int, h uint64, k string) {
	if depth == hamtDepth {
		for i := range n.kids {
			if string(n.kids[i].entry.key) == k {
				n.kids = deleteSlot(n.kids, i)
				return
			}
		}
		return
	}
	bit := uint32(1) << ((h >> (depth * hamtBits)) & hamtMask)
	i := bits.OnesCount32(n.bitmap & (bit - 1))
	s := &n.kids[i]
	if s.sub != nil {
		s.sub = m.editable(s.sub)
		m.remove(s.sub, depth+1, h, k)
		if len(s.sub.kids) > 0 {
			return
		}
	}
	n.bitmap &^= bit
	n.kids = deleteSlot(n.kids, i)
}

// deleteSlot removes kids[i] in place: kids belongs to an editable node,
// which shares its slots with no other node.
func deleteSlot[V any](kids []hamtSlot[V], i int) []hamtSlot[V] {
	copy(kids[i:], kids[i+1:])
	kids[len(kids)-1] = hamtSlot[V]{}
	return kids[:len(kids)-1]
}

// each calls f for every entry, in no particular order, until f returns false.
func (m *pmap[V]) each(f func(key []byte, val V) bool) {
	if m.root != nil {
		m.root.each(f)
	}
}

func (n *hamtNode[V]) each(f func(key []byte, val V) bool) bool {
	for i := range n.kids {
		s := &n.kids[i]
		if s.sub != nil {
			if !s.sub.each(f) {
				return false
			}
		} else if !f(s.entry.key, s.entry.val) {
			return false
		}
	}
	return true
}
