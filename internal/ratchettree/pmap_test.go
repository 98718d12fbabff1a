package ratchettree

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestPMap checks the persistent map against Go maps, with clones taken
// along the way that must not see later writes; once with entries from a
// slab (reserve) for the first puts, as a decoded tree's index has them.
func TestPMap(t *testing.T) {
	for _, slab := range []int{0, 5000} {
		t.Run(fmt.Sprint("slab=", slab), func(t *testing.T) { testPMap(t, slab) })
	}
}

func testPMap(t *testing.T, slab int) {
	r := rand.New(rand.NewPCG(7, 8))
	m := pmap[int]{owner: new(owner)}
	m.reserve(slab)
	ref := map[string]int{}
	type snap struct {
		m   pmap[int]
		ref map[string]int
	}
	var snaps []snap
	for i := range 20000 {
		k := []byte(fmt.Sprint(r.IntN(3000)))
		switch r.IntN(3) {
		case 0, 1:
			m.put(k, i)
			ref[string(k)] = i
		case 2:
			m.del(k)
			delete(ref, string(k))
		}
		if i%1000 == 0 {
			c := map[string]int{}
			for k, v := range ref {
				c[k] = v
			}
			snaps = append(snaps, snap{m.clone(), c})
		}
	}
	check := func(m *pmap[int], ref map[string]int) {
		t.Helper()
		if m.len() != len(ref) {
			t.Fatalf("len %d, want %d", m.len(), len(ref))
		}
		for k, v := range ref {
			if got, ok := m.get([]byte(k)); !ok || got != v {
				t.Fatalf("get(%s) = %d, %v; want %d", k, got, ok, v)
			}
		}
		n := 0
		m.each(func(k []byte, v int) bool {
			n++
			if ref[string(k)] != v {
				t.Fatalf("each: %s = %d, want %d", k, v, ref[string(k)])
			}
			return true
		})
		if n != len(ref) {
			t.Fatalf("each visited %d, want %d", n, len(ref))
		}
		if _, ok := m.get([]byte("absent")); ok {
			t.Fatal("found an absent key")
		}
	}
	check(&m, ref)
	for i := range snaps {
		check(&snaps[i].m, snaps[i].ref)
	}
}

// TestCollisionBucket drives keys into the bottom-level bucket by giving
// them the same hash, which random keys never do.
func TestCollisionBucket(t *testing.T) {
	m := pmap[int]{owner: new(owner)}
	root := &hamtNode[int]{owner: m.owner}
	m.root = root
	for i := range 5 {
		m.insert(root, 0, &hamtEntry[int]{hash: 12345, key: []byte(fmt.Sprint(i)), val: i})
	}
	m.size = 5
	n := 0
	m.each(func([]byte, int) bool { n++; return true })
	if n != 5 {
		t.Fatalf("bucket holds %d entries", n)
	}
	// A clone taken before the remove must keep all five: the bucket is
	// edited in place only once m has its own copy of it.
	c := m.clone()
	m.root = m.editable(m.root)
	m.remove(m.root, 0, 12345, "3")
	n = 0
	c.each(func([]byte, int) bool { n++; return true })
	if n != 5 {
		t.Fatalf("clone's bucket holds %d entries after remove", n)
	}
	n = 0
	m.each(func(k []byte, _ int) bool {
		n++
		if string(k) == "3" {
			t.Fatal("removed key still present")
		}
		return true
	})
	if n != 4 {
		t.Fatalf("bucket holds %d entries after remove", n)
	}
}
