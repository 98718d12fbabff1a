package mls_test

import (
	"testing"
	"time"

	"github.com/mlskit/mlskit/mls"
	"github.com/mlskit/mlskit/storage"
)

// TestKeyUpdatePolicy: the group records when each member's leaf was
// refreshed (joined, Update applied, committed with a path) by epoch and by
// the time this client merged it; StaleMembers lists those past the
// policy's age or epoch limit, KeyUpdateStatus says when this member should
// update (after N messages or T time). The tracking survives a reload.
func TestKeyUpdatePolicy(t *testing.T) {
	onBoth(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		seeded(t, 21)
		clock := &fixedClock{time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)}
		policy := &mls.KeyUpdatePolicy{UpdateAfterMessages: 3, UpdateInterval: 24 * time.Hour,
			MaxLeafAge: 72 * time.Hour, MaxLeafEpochs: 4}
		cfg := func(salt string) *mls.Config {
			return &mls.Config{Rand: seededRand(salt), Now: clock.now, KeyUpdate: policy}
		}
		a := newGroupClient(t, "a", fastSuite, cfg("ku a"), nil)
		b := newClient(t, "b", fastSuite, cfg("ku b"))
		c := newClient(t, "c", fastSuite, cfg("ku c"))
		commit(t, a, &mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(b.keyPackage(t)), mls.AddProposal(c.keyPackage(t))}}, nil, b, c)
		all := []*client{a, b, c}
		stores := map[*client]storage.Store{a: open(t), b: open(t), c: open(t)}
		cycle := func() {
			for _, m := range all {
				save(t, m, stores[m])
				reload(t, m, stores[m])
			}
		}
		start := clock.t
		if s := a.g.StaleMembers(); len(s) != 0 {
			t.Fatalf("stale right after joining: %+v", s)
		}
		for _, lr := range b.g.LeafRefreshes() {
			// b joined in epoch 1: every leaf counts from the join, and
			// the only refresh b observed is its own (the join itself).
			if lr.Epoch != 1 || !lr.Seen.Equal(start) || lr.Observed != (lr.Leaf == b.g.LeafIndex()) {
				t.Fatalf("b's view of leaf %d: %+v", lr.Leaf, lr)
			}
		}
		if st := b.g.KeyUpdateStatus(); st.Due || st.MessagesSent != 0 || st.Epoch != 1 {
			t.Fatalf("b's own status at join: %+v", st)
		}

		// b sends three messages: its update is due by count.
		for i := range 3 {
			m, err := b.g.Encrypt([]byte("x"), nil)
			if err != nil {
				t.Fatal(err)
			}
			deliver(t, b, m, a, c)
			if due := b.g.KeyUpdateStatus().Due; due != (i == 2) {
				t.Fatalf("after %d messages Due=%v", i+1, due)
			}
		}
		cycle()
		if st := b.g.KeyUpdateStatus(); !st.Due || st.MessagesSent != 3 {
			t.Fatalf("after reload: %+v", st)
		}
		// A commit by someone else keeps b's count across the epoch.
		clock.t = clock.t.Add(time.Hour)
		commit(t, a, nil, []*client{b, c})
		if st := b.g.KeyUpdateStatus(); st.MessagesSent != 3 || !st.Due {
			t.Fatalf("b's count across an epoch: %+v", st)
		}
		// b updates with an empty commit: count and clock restart.
		clock.t = clock.t.Add(time.Hour)
		commit(t, b, nil, []*client{a, c})
		if st := b.g.KeyUpdateStatus(); st.Due || st.MessagesSent != 0 || st.Epoch != b.g.Epoch() || !st.LastRefresh.Equal(clock.t) {
			t.Fatalf("b after its update: %+v", st)
		}
		cycle()
		// Everyone saw a (epoch 2) and b (epoch 3) refresh; c never.
		want := map[mls.LeafIndex]uint64{a.g.LeafIndex(): 2, b.g.LeafIndex(): 3, c.g.LeafIndex(): 1}
		for _, lr := range c.g.LeafRefreshes() {
			if lr.Epoch != want[lr.Leaf] {
				t.Fatalf("c's view of leaf %d: epoch %d, want %d", lr.Leaf, lr.Epoch, want[lr.Leaf])
			}
		}
		// A day later b's update is due by time.
		clock.t = clock.t.Add(25 * time.Hour)
		if !b.g.KeyUpdateStatus().Due {
			t.Fatal("b's update not due after the interval")
		}
		// Three days after the start, c is stale by age for a and b.
		clock.t = start.Add(73 * time.Hour)
		for _, m := range []*client{a, b} {
			s := m.g.StaleMembers()
			if len(s) != 1 || s[0].Leaf != c.g.LeafIndex() {
				t.Fatalf("%s: stale %+v, want c", m.name, s)
			}
		}
		// c updates through an Update proposal that a commits: fresh again.
		up, err := c.g.ProposeUpdate(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		deliver(t, c, up, a, b)
		commit(t, a, nil, []*client{b, c})
		cycle()
		if s := b.g.StaleMembers(); len(s) != 0 {
			t.Fatalf("stale after c's update: %+v", s)
		}
		if st := c.g.KeyUpdateStatus(); st.Epoch != c.g.Epoch() || st.MessagesSent != 0 {
			t.Fatalf("c's status after its Update was committed: %+v", st)
		}
		// Epoch limit: five commits by a leave b (refreshed in epoch 3)
		// and c (epoch 4) behind by more than four epochs.
		for range 5 {
			commit(t, a, nil, []*client{b, c})
		}
		s := a.g.StaleMembers()
		if len(s) != 2 {
			t.Fatalf("stale by epochs: %+v", s)
		}
		// A removed member is forgotten.
		commit(t, a, &mls.CommitOptions{Proposals: []*mls.Proposal{mls.RemoveProposal(c.g.LeafIndex())}}, []*client{b, c})
		for _, lr := range a.g.LeafRefreshes() {
			if lr.Leaf == c.g.LeafIndex() {
				t.Fatal("removed member still listed")
			}
		}
		save(t, a, stores[a])
	})
}

// The defaults apply when the Config leaves the policy out.
func TestKeyUpdateDefaults(t *testing.T) {
	clock := &fixedClock{time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)}
	a := newGroupClient(t, "a", fastSuite, &mls.Config{Now: clock.now}, nil)
	clock.t = clock.t.Add(mls.DefaultUpdateInterval - time.Second)
	if a.g.KeyUpdateStatus().Due {
		t.Fatal("due before the default interval")
	}
	clock.t = clock.t.Add(time.Second)
	if !a.g.KeyUpdateStatus().Due {
		t.Fatal("not due at the default interval")
	}
}

// TestPaddingBuckets: with a bucket policy the PrivateMessage ciphertext is
// always a bucket size plus the AEAD tag, whatever the plaintext length;
// the default block policy pads to a multiple of 32.
func TestPaddingBuckets(t *testing.T) {
	seeded(t, 22)
	const tag = 16 // AES-128-GCM
	for _, tc := range []struct {
		name    string
		policy  mls.PaddingPolicy
		block   int
		allowed func(n int) bool
	}{
		{"buckets", mls.PadToBuckets{256, 1024, 4096}, 0, func(n int) bool {
			return n == 256 || n == 1024 || n == 4096 || (n > 4096 && n%4096 == 0)
		}},
		{"power of two", mls.PadToPowerOfTwo{Min: 128, Max: 2048}, 0, func(n int) bool {
			return (n >= 128 && n <= 2048 && n&(n-1) == 0) || (n > 2048 && n%2048 == 0)
		}},
		{"block", nil, 0, func(n int) bool { return n%mls.DefaultPaddingBlock == 0 }},
		{"block 100", nil, 100, func(n int) bool { return n%100 == 0 }},
		{"none", nil, -1, func(n int) bool { return true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &mls.Config{Rand: seededRand("pad " + tc.name), Padding: tc.policy, PaddingBlock: tc.block}
			a := newGroupClient(t, "a", fastSuite, cfg, nil)
			b := newClient(t, "b", fastSuite, &mls.Config{Rand: seededRand("pad b " + tc.name)})
			commit(t, a, &mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(b.keyPackage(t))}}, nil, b)
			sizes := map[int]bool{}
			for _, n := range []int{0, 1, 31, 32, 100, 150, 170, 171, 172, 200, 900, 1000, 3000, 4000, 5000, 9000} {
				msg, err := a.g.Encrypt(make([]byte, n), []byte("aad"))
				if err != nil {
					t.Fatal(err)
				}
				ct := mls.PrivateCiphertextLen(msg) - tag
				if !tc.allowed(ct) {
					t.Fatalf("plaintext %d: padded content %d bytes is outside the policy", n, ct)
				}
				sizes[ct] = true
				if r := process(t, b, msg); len(r.Application) != n {
					t.Fatalf("plaintext %d came back as %d bytes", n, len(r.Application))
				}
			}
			t.Logf("%d distinct ciphertext sizes for 16 plaintext lengths", len(sizes))
			if tc.name == "buckets" && len(sizes) > 5 { // 256, 1024, 4096 and two multiples of 4096
				t.Fatalf("bucket policy produced %d sizes", len(sizes))
			}
		})
	}
}

func TestPaddingPolicies(t *testing.T) {
	for _, tc := range []struct {
		p     mls.PaddingPolicy
		n     int
		wantN int
	}{
		{mls.PadToMultiple(32), 0, 0}, {mls.PadToMultiple(32), 1, 32}, {mls.PadToMultiple(32), 33, 64},
		{mls.PadToMultiple(0), 5, 5},
		{mls.PadToPowerOfTwo{}, 0, 1}, {mls.PadToPowerOfTwo{}, 5, 8}, {mls.PadToPowerOfTwo{}, 8, 8},
		{mls.PadToPowerOfTwo{Min: 64}, 5, 64}, {mls.PadToPowerOfTwo{Max: 1000}, 1001, 2000},
		{mls.PadToPowerOfTwo{Max: 1024}, 1000, 1024},
		{mls.PadToBuckets{10, 20}, 0, 10}, {mls.PadToBuckets{10, 20}, 11, 20}, {mls.PadToBuckets{10, 20}, 21, 40},
		{mls.PadToBuckets{}, 7, 7},
	} {
		if got := tc.p.PaddedSize(tc.n); got != tc.wantN {
			t.Errorf("%#v.PaddedSize(%d) = %d, want %d", tc.p, tc.n, got, tc.wantN)
		}
	}
}
