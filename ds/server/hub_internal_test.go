package server

import (
	"testing"

	"github.com/mlskit/mlskit/ds/store"
)

// TestHubAll: a notification that others may have been missed (All, sent
// when the store's listener reconnects) has every subscription read its
// memberships again, whatever its client and groups; the others reach only
// the subscriptions they concern.
func TestHubAll(t *testing.T) {
	h := newHub()
	a, b, idle := h.add("alice"), h.add("bob"), h.add("carol")
	h.setGroups(a, []string{"g1"})
	h.setGroups(b, []string{"g2"})
	woken := func(s *sub) bool {
		select {
		case <-s.wake:
			return true
		default:
			return false
		}
	}
	h.notify(store.Notification{GroupID: []byte("g1"), Seq: 4})
	if r, d := a.take(); !woken(a) || r || d["g1"] != 4 || woken(b) || woken(idle) {
		t.Fatalf("group notification: refresh %v dirty %v", r, d)
	}
	h.notify(store.Notification{All: true})
	for name, s := range map[string]*sub{"alice": a, "bob": b, "carol (no groups)": idle} {
		if r, d := s.take(); !woken(s) || !r || len(d) != 0 {
			t.Fatalf("%s after All: woken/refresh %v, dirty %v", name, r, d)
		}
	}
}
