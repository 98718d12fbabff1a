// Package storetest is the conformance suite every store.Store engine must
// pass. An engine's test calls Run with a constructor that returns a fresh,
// empty store isolated from any other test.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mlskit/mlskit/ds/store"
)

// Run runs every conformance test against stores made by newStore.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		f    func(*testing.T, store.Store)
	}{
		{"Challenges", testChallenges},
		{"Sessions", testSessions},
		{"BindClientKey", testBindClientKey},
		{"KeyPackages", testKeyPackages},
		{"KeyPackageLastResort", testLastResort},
		{"KeyPackageConcurrentClaims", testConcurrentClaims},
		{"GroupCreate", testGroupCreate},
		{"AppendAndChain", testAppendAndChain},
		{"CommitEpochs", testCommitEpochs},
		{"MessageWindow", testMessageWindow},
		{"Membership", testMembership},
		{"Claims", testClaims},
		{"Duplicates", testDuplicates},
		{"Ack", testAck},
		{"Priority", testPriority},
		{"ConcurrentCommits", testConcurrentCommits},
		{"GroupCommit", testGroupCommit},
		{"PublishedGroupInfo", testPublishedGroupInfo},
		{"Watch", testWatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { s.Close() })
			tc.f(t, s)
		})
	}
}

var ctx = context.Background()

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testChallenges(t *testing.T, s store.Store) {
	now := time.Now()
	must(t, s.PutChallenge(ctx, []byte("c1"), now.Add(time.Minute)))
	must(t, s.PutChallenge(ctx, []byte("c2"), now.Add(-time.Second)))
	must(t, s.ConsumeChallenge(ctx, []byte("c1"), now))
	if err := s.ConsumeChallenge(ctx, []byte("c1"), now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("replayed challenge: %v", err)
	}
	if err := s.ConsumeChallenge(ctx, []byte("c2"), now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired challenge: %v", err)
	}
	if err := s.ConsumeChallenge(ctx, []byte("never"), now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown challenge: %v", err)
	}
}

func testSessions(t *testing.T, s store.Store) {
	now := time.Now()
	must(t, s.PutSession(ctx, []byte("tok"), store.Session{ClientID: "alice", SignatureKey: []byte("pk"), Expires: now.Add(time.Hour)}))
	got, err := s.Session(ctx, []byte("tok"), now)
	must(t, err)
	if got.ClientID != "alice" || string(got.SignatureKey) != "pk" {
		t.Fatalf("session %+v", got)
	}
	if _, err := s.Session(ctx, []byte("tok"), now.Add(2*time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired session: %v", err)
	}
	if _, err := s.Session(ctx, []byte("other"), now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown session: %v", err)
	}
}

func testBindClientKey(t *testing.T, s store.Store) {
	must(t, s.BindClientKey(ctx, "alice", []byte("k1")))
	must(t, s.BindClientKey(ctx, "alice", []byte("k1")))
	if err := s.BindClientKey(ctx, "alice", []byte("k2")); !errors.Is(err, store.ErrKeyBound) {
		t.Fatalf("rebinding: %v", err)
	}
	must(t, s.BindClientKey(ctx, "bob", []byte("k2")))
}

func kp(owner string, suite uint16, n int, lastResort bool, notAfter time.Time) store.KeyPackage {
	return store.KeyPackage{
		Ref: []byte(fmt.Sprintf("ref-%s-%d-%d-%v", owner, suite, n, lastResort)), Owner: owner, Suite: suite,
		LastResort: lastResort, Data: []byte(fmt.Sprintf("kp-%s-%d-%d", owner, suite, n)), NotAfter: notAfter,
	}
}

func testKeyPackages(t *testing.T, s store.Store) {
	now := time.Now()
	later := now.Add(time.Hour)
	for i := 0; i < 3; i++ {
		must(t, s.PutKeyPackage(ctx, kp("alice", 1, i, false, later)))
	}
	must(t, s.PutKeyPackage(ctx, kp("alice", 2, 0, false, later)))
	must(t, s.PutKeyPackage(ctx, kp("alice", 1, 9, false, now.Add(-time.Minute)))) // expired
	if err := s.PutKeyPackage(ctx, kp("alice", 1, 0, false, later)); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("duplicate upload: %v", err)
	}
	st, err := s.KeyPackageStock(ctx, "alice", now)
	must(t, err)
	if len(st) != 2 || st[0].Suite != 1 || st[0].Count != 3 || st[1].Count != 1 || st[0].HasLastResort {
		t.Fatalf("stock %+v", st)
	}
	// Oldest first, each exactly once.
	for i := 0; i < 3; i++ {
		got, err := s.ClaimKeyPackage(ctx, "claimer", "alice", 1, now)
		must(t, err)
		if want := kp("alice", 1, i, false, later); !bytes.Equal(got.Ref, want.Ref) || !bytes.Equal(got.Data, want.Data) || got.LastResort {
			t.Fatalf("claim %d: got %s", i, got.Ref)
		}
	}
	if _, err := s.ClaimKeyPackage(ctx, "claimer", "alice", 1, now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("claim from empty stock (expired one left): %v", err)
	}
	if _, err := s.ClaimKeyPackage(ctx, "claimer", "bob", 1, now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("claim for unknown owner: %v", err)
	}
	got, err := s.ClaimKeyPackage(ctx, "claimer", "alice", 2, now)
	must(t, err)
	if got.Suite != 2 || got.Owner != "alice" {
		t.Fatalf("suite 2 claim: %+v", got)
	}
}

func testLastResort(t *testing.T, s store.Store) {
	now := time.Now()
	later := now.Add(time.Hour)
	must(t, s.PutKeyPackage(ctx, kp("carol", 1, 0, true, later)))
	must(t, s.PutKeyPackage(ctx, kp("carol", 1, 1, false, later)))
	got, err := s.ClaimKeyPackage(ctx, "claimer", "carol", 1, now)
	must(t, err)
	if got.LastResort {
		t.Fatal("last resort handed out while a regular KeyPackage was left")
	}
	for i := 0; i < 3; i++ {
		got, err := s.ClaimKeyPackage(ctx, "claimer", "carol", 1, now)
		must(t, err)
		if !got.LastResort || !bytes.Equal(got.Ref, kp("carol", 1, 0, true, later).Ref) {
			t.Fatalf("claim %d: want the last resort, got %+v", i, got)
		}
	}
	st, err := s.KeyPackageStock(ctx, "carol", now)
	must(t, err)
	if len(st) != 1 || st[0].Count != 0 || !st[0].HasLastResort || !st[0].LastResortUsed {
		t.Fatalf("stock after last-resort use: %+v", st)
	}
	// A new last resort replaces the old one and is unused.
	must(t, s.PutKeyPackage(ctx, kp("carol", 1, 5, true, later)))
	st, err = s.KeyPackageStock(ctx, "carol", now)
	must(t, err)
	if len(st) != 1 || !st[0].HasLastResort || st[0].LastResortUsed {
		t.Fatalf("stock after replacing the last resort: %+v", st)
	}
	got, err = s.ClaimKeyPackage(ctx, "claimer", "carol", 1, now)
	must(t, err)
	if !bytes.Equal(got.Ref, kp("carol", 1, 5, true, later).Ref) {
		t.Fatalf("old last resort still handed out: %s", got.Ref)
	}
}

func testConcurrentClaims(t *testing.T, s store.Store) {
	now := time.Now()
	const n, workers = 40, 8
	for i := 0; i < n; i++ {
		must(t, s.PutKeyPackage(ctx, kp("dave", 1, i, false, now.Add(time.Hour))))
	}
	must(t, s.PutKeyPackage(ctx, kp("dave", 1, 0, true, now.Add(time.Hour))))
	var mu sync.Mutex
	seen := map[string]int{}
	lastResort := 0
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n/workers+2; i++ {
				got, err := s.ClaimKeyPackage(ctx, "claimer", "dave", 1, now)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if got.LastResort {
					lastResort++
				} else {
					seen[string(got.Ref)]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != n || lastResort != workers*2 {
		t.Fatalf("handed out %d distinct regular KeyPackages and %d last resorts, want %d and %d", len(seen), lastResort, n, workers*2)
	}
	for ref, c := range seen {
		if c != 1 {
			t.Fatalf("KeyPackage %s handed out %d times", ref, c)
		}
	}
}

var gid = []byte("group-A")

func msg(epoch uint64, kind uint8, body string) store.Append {
	return store.Append{GroupID: gid, Sender: "alice", Epoch: epoch, Window: 2, Now: time.Now(),
		Entries: []store.Entry{{Kind: kind, WireFormat: 2, Body: []byte(body)}}}
}

func commit(sender string, epoch uint64, body string) store.Append {
	a := msg(epoch, store.KindCommit, body)
	a.Sender, a.Commit = sender, true
	return a
}

func testGroupCreate(t *testing.T, s store.Store) {
	g, err := s.CreateGroup(ctx, gid, "alice", []byte("gi0"), store.Policy{}, time.Now())
	must(t, err)
	if g.Epoch != 0 || g.HeadSeq != 0 || !bytes.Equal(g.HeadHash, store.GenesisHash(gid)) {
		t.Fatalf("new group %+v", g)
	}
	if _, err := s.CreateGroup(ctx, gid, "bob", nil, store.Policy{}, time.Now()); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	g, err = s.Group(ctx, gid)
	must(t, err)
	if string(g.GroupInfo) != "gi0" {
		t.Fatalf("group info %q", g.GroupInfo)
	}
	if _, err := s.Group(ctx, []byte("nope")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown group: %v", err)
	}
	if _, err := s.Append(ctx, func() store.Append { a := msg(0, 1, "x"); a.GroupID = []byte("nope"); return a }()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("append to unknown group: %v", err)
	}
	ms, err := s.Memberships(ctx, "alice")
	must(t, err)
	if len(ms) != 1 || !bytes.Equal(ms[0].GroupID, gid) || ms[0].AckedSeq != 0 {
		t.Fatalf("memberships %+v", ms)
	}
}

func testAppendAndChain(t *testing.T, s store.Store) {
	_, err := s.CreateGroup(ctx, gid, "alice", nil, store.Policy{}, time.Now())
	must(t, err)
	for i := 0; i < 5; i++ {
		recs, err := s.Append(ctx, msg(0, store.KindApplication, fmt.Sprint("m", i)))
		must(t, err)
		if len(recs) != 1 || recs[0].Seq != uint64(i+1) {
			t.Fatalf("append %d: %+v", i, recs)
		}
	}
	c := commit("alice", 0, "c0")
	c.Entries = append(c.Entries, store.Entry{Kind: store.KindWelcome, WireFormat: 3, Recipients: []string{"bob", "carol"}, Body: []byte("w0")})
	c.AddMembers = []string{"bob", "carol"}
	c.GroupInfo = []byte("gi1")
	recs, err := s.Append(ctx, c)
	must(t, err)
	if len(recs) != 2 || recs[0].Seq != 6 || recs[1].Seq != 7 || recs[1].Kind != store.KindWelcome {
		t.Fatalf("commit bundle records %+v", recs)
	}
	all, err := s.Records(ctx, gid, 0, 100)
	must(t, err)
	if len(all) != 7 {
		t.Fatalf("%d records", len(all))
	}
	must(t, store.VerifyChain(0, store.GenesisHash(gid), all))
	if got := all[6].Recipients; len(got) != 2 || got[0] != "bob" {
		t.Fatalf("welcome recipients %v", got)
	}
	if !store.IsRecipient(&all[6], "carol") || store.IsRecipient(&all[6], "alice") || !store.IsRecipient(&all[0], "bob") {
		t.Fatal("IsRecipient")
	}
	part, err := s.Records(ctx, gid, 3, 2)
	must(t, err)
	if len(part) != 2 || part[0].Seq != 4 {
		t.Fatalf("partial read %+v", part)
	}
	must(t, store.VerifyChain(3, all[2].ChainHash, part))
	g, err := s.Group(ctx, gid)
	must(t, err)
	if g.Epoch != 1 || g.HeadSeq != 7 || !bytes.Equal(g.HeadHash, all[6].ChainHash) || string(g.GroupInfo) != "gi1" {
		t.Fatalf("head %+v", g)
	}
	// A tampered record breaks verification.
	bad := append([]store.Record(nil), all...)
	bad[2].Epoch = 9
	if store.VerifyChain(0, store.GenesisHash(gid), bad) == nil {
		t.Fatal("tampered chain verified")
	}
	if store.VerifyChain(0, store.GenesisHash(gid), append(all[:2:2], all[3:]...)) == nil {
		t.Fatal("gap verified")
	}
}

func testCommitEpochs(t *testing.T, s store.Store) {
	_, err := s.CreateGroup(ctx, gid, "alice", nil, store.Policy{}, time.Now())
	must(t, err)
	c := commit("alice", 0, "c0")
	c.AddMembers = []string{"bob"}
	recs, err := s.Append(ctx, c)
	must(t, err)
	win := recs[0]
	_, err = s.Append(ctx, commit("bob", 0, "c0-bob"))
	var se *store.StaleEpochError
	if !errors.As(err, &se) || !errors.Is(err, store.ErrStaleEpoch) {
		t.Fatalf("losing commit: %v", err)
	}
	if se.CurrentEpoch != 1 || se.WinningSeq != win.Seq || !bytes.Equal(se.WinningHash, win.ChainHash) {
		t.Fatalf("stale answer %+v, winner %d", se, win.Seq)
	}
	_, err = s.Append(ctx, commit("bob", 5, "c5"))
	if !errors.As(err, &se) || se.CurrentEpoch != 1 || se.WinningSeq != 0 {
		t.Fatalf("future commit: %v", err)
	}
	_, err = s.Append(ctx, commit("bob", 1, "c1"))
	must(t, err)
	got, err := s.CommitRecord(ctx, gid, 0)
	must(t, err)
	if got.Seq != win.Seq {
		t.Fatalf("commit record of epoch 0: %d", got.Seq)
	}
	if _, err := s.CommitRecord(ctx, gid, 2); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("commit record of open epoch: %v", err)
	}
	g, _ := s.Group(ctx, gid)
	if g.Epoch != 2 || g.HeadSeq != 2 {
		t.Fatalf("head %+v", g)
	}
}

func testMessageWindow(t *testing.T, s store.Store) {
	_, err := s.CreateGroup(ctx, gid, "alice", nil, store.Policy{}, time.Now())
	must(t, err)
	for e := uint64(0); e < 4; e++ {
		_, err := s.Append(ctx, commit("alice", e, fmt.Sprint("c", e)))
		must(t, err)
	}
	// Epoch 4 now; window 2 accepts 2, 3, 4.
	for e, ok := range map[uint64]bool{1: false, 2: true, 3: true, 4: true, 5: false} {
		_, err := s.Append(ctx, msg(e, store.KindApplication, fmt.Sprint("m", e)))
		if ok && err != nil || !ok && !errors.Is(err, store.ErrStaleEpoch) {
			t.Fatalf("message for epoch %d: %v", e, err)
		}
	}
	recs, _ := s.Records(ctx, gid, 0, 100)
	if len(recs) != 7 {
		t.Fatalf("%d records, want 7", len(recs))
	}
}

func testMembership(t *testing.T, s store.Store) {
	_, err := s.CreateGroup(ctx, gid, "alice", nil, store.Policy{}, time.Now())
	must(t, err)
	m := msg(0, store.KindApplication, "from bob")
	m.Sender = "bob"
	if _, err := s.Append(ctx, m); !errors.Is(err, store.ErrNotMember) {
		t.Fatalf("non-member send: %v", err)
	}
	c := commit("alice", 0, "add bob")
	c.AddMembers = []string{"bob"}
	recs, err := s.Append(ctx, c)
	must(t, err)
	mb, err := s.Membership(ctx, gid, "bob")
	must(t, err)
	if mb.AckedSeq != recs[0].Seq {
		t.Fatalf("new member cursor %d, want %d", mb.AckedSeq, recs[0].Seq)
	}
	m.Epoch = 1
	_, err = s.Append(ctx, m)
	must(t, err)
	c = commit("bob", 1, "remove alice")
	c.RemoveMembers = []string{"alice"}
	rm, err := s.Append(ctx, c)
	must(t, err)
	// The removed member keeps its row until it has its removal, and can
	// no longer send.
	mb, err = s.Membership(ctx, gid, "alice")
	must(t, err)
	if mb.Active() || mb.LeftSeq != rm[0].Seq {
		t.Fatalf("removed member's row %+v, want left at %d", mb, rm[0].Seq)
	}
	late := msg(2, store.KindApplication, "from removed alice")
	if _, err := s.Append(ctx, late); !errors.Is(err, store.ErrNotMember) {
		t.Fatalf("removed member's send: %v", err)
	}
	members, err := s.Members(ctx, gid)
	must(t, err)
	if len(members) != 1 || members[0] != "bob" {
		t.Fatalf("members %v", members)
	}
	m2 := msg(2, store.KindApplication, "bob after the removal")
	m2.Sender = "bob"
	_, err = s.Append(ctx, m2)
	must(t, err)
	must(t, s.Ack(ctx, gid, "alice", 99)) // clamped to the removal, then gone
	if _, err := s.Membership(ctx, gid, "alice"); !errors.Is(err, store.ErrNotMember) {
		t.Fatalf("removed member after acknowledging its removal: %v", err)
	}
	// External join: a non-member's commit admits it.
	ej := commit("eve", 2, "external commit")
	ej.ExternalJoin = true
	_, err = s.Append(ctx, ej)
	must(t, err)
	if _, err := s.Membership(ctx, gid, "eve"); err != nil {
		t.Fatalf("external joiner not a member: %v", err)
	}
	// Alice is added again: she starts over at that commit.
	c = commit("bob", 3, "add alice again")
	c.AddMembers = []string{"alice"}
	again, err := s.Append(ctx, c)
	must(t, err)
	mb, err = s.Membership(ctx, gid, "alice")
	must(t, err)
	if !mb.Active() || mb.JoinedSeq != again[0].Seq || mb.AckedSeq != again[0].Seq {
		t.Fatalf("re-added member's row %+v, want joined at %d", mb, again[0].Seq)
	}
}

func testClaims(t *testing.T, s store.Store) {
	now := time.Now()
	must(t, s.PutKeyPackage(ctx, store.KeyPackage{Ref: []byte("kp1"), Owner: "bob", Suite: 1, Data: []byte("d1"), NotAfter: now.Add(time.Hour)}))
	kp, err := s.ClaimKeyPackage(ctx, "alice", "bob", 1, now)
	must(t, err)
	cs, err := s.Claims(ctx, [][]byte{kp.Ref, []byte("unknown")}, now)
	must(t, err)
	if len(cs) != 1 || cs[0].Claimer != "alice" || cs[0].Owner != "bob" || string(cs[0].Ref) != "kp1" {
		t.Fatalf("claims %+v", cs)
	}
	if cs, _ := s.Claims(ctx, [][]byte{kp.Ref}, now.Add(store.ClaimTTL+time.Minute)); len(cs) != 0 {
		t.Fatalf("expired claim still listed: %+v", cs)
	}
	// A commit that uses the claim uses it up, only for its sender.
	_, err = s.CreateGroup(ctx, gid, "carol", nil, store.Policy{PublicHandshakes: true, ExternalJoins: true}, now)
	must(t, err)
	g, err := s.Group(ctx, gid)
	must(t, err)
	if !g.Policy.PublicHandshakes || !g.Policy.ExternalJoins {
		t.Fatalf("policy not kept: %+v", g.Policy)
	}
	c := commit("carol", 0, "add bob")
	c.UseClaims = [][]byte{kp.Ref}
	_, err = s.Append(ctx, c)
	must(t, err)
	if cs, _ := s.Claims(ctx, [][]byte{kp.Ref}, now); len(cs) != 1 {
		t.Fatalf("another sender's commit used alice's claim: %+v", cs)
	}
	_, err = s.CreateGroup(ctx, []byte("g2"), "alice", nil, store.Policy{}, now)
	must(t, err)
	c = commit("alice", 0, "alice adds bob")
	c.GroupID = []byte("g2")
	c.UseClaims = [][]byte{kp.Ref}
	_, err = s.Append(ctx, c)
	must(t, err)
	if cs, _ := s.Claims(ctx, [][]byte{kp.Ref}, now); len(cs) != 0 {
		t.Fatalf("used claim still listed: %+v", cs)
	}
}

func testDuplicates(t *testing.T, s store.Store) {
	_, err := s.CreateGroup(ctx, gid, "alice", nil, store.Policy{}, time.Now())
	must(t, err)
	recs, err := s.Append(ctx, msg(0, store.KindApplication, "once"))
	must(t, err)
	_, err = s.Append(ctx, msg(0, store.KindApplication, "once"))
	var de *store.DuplicateError
	if !errors.As(err, &de) || de.Seq != recs[0].Seq {
		t.Fatalf("replay: %v", err)
	}
	c := commit("alice", 0, "c")
	c.Entries = append(c.Entries, store.Entry{Kind: store.KindWelcome, Body: []byte("once")})
	if _, err := s.Append(ctx, c); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("commit bundle carrying a replayed body: %v", err)
	}
	g, _ := s.Group(ctx, gid)
	if g.Epoch != 0 || g.HeadSeq != 1 {
		t.Fatalf("failed appends changed the head: %+v", g)
	}
	// Nothing of the refused bundle stayed (its commit was inserted
	// before the replayed welcome was found).
	if recs, err := s.Records(ctx, gid, 0, 10); err != nil || len(recs) != 1 {
		t.Fatalf("log after the refused bundle: %d records, %v", len(recs), err)
	}
	// A bundle that carries one body twice is refused whole too.
	c = commit("alice", 0, "c2")
	c.Entries = append(c.Entries, store.Entry{Kind: store.KindWelcome, Body: []byte("w")}, store.Entry{Kind: store.KindWelcome, Body: []byte("w")})
	if _, err := s.Append(ctx, c); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("commit bundle carrying one body twice: %v", err)
	}
	if _, err := s.Append(ctx, commit("alice", 0, "c")); err != nil {
		t.Fatalf("the refused commit again, alone: %v", err)
	}
}

func testAck(t *testing.T, s store.Store) {
	_, err := s.CreateGroup(ctx, gid, "alice", nil, store.Policy{}, time.Now())
	must(t, err)
	for i := 0; i < 3; i++ {
		_, err := s.Append(ctx, msg(0, store.KindApplication, fmt.Sprint(i)))
		must(t, err)
	}
	must(t, s.Ack(ctx, gid, "alice", 2))
	must(t, s.Ack(ctx, gid, "alice", 1)) // never back
	must(t, s.Ack(ctx, gid, "alice", 99))
	m, err := s.Membership(ctx, gid, "alice")
	must(t, err)
	if m.AckedSeq != 3 {
		t.Fatalf("cursor %d, want 3 (clamped to head)", m.AckedSeq)
	}
	if err := s.Ack(ctx, gid, "bob", 1); !errors.Is(err, store.ErrNotMember) {
		t.Fatalf("ack by non-member: %v", err)
	}
}

func testPriority(t *testing.T, s store.Store) {
	_, err := s.CreateGroup(ctx, gid, "alice", nil, store.Policy{}, time.Now())
	must(t, err)
	c := commit("alice", 0, "add")
	c.AddMembers = []string{"bob"}
	_, err = s.Append(ctx, c)
	must(t, err)
	now := time.Now()
	must(t, s.SetPriority(ctx, gid, "bob", 1, now.Add(time.Minute)))
	a := commit("alice", 1, "alice c1")
	if _, err := s.Append(ctx, a); !errors.Is(err, store.ErrDeferred) {
		t.Fatalf("commit against a priority holder: %v", err)
	}
	a.Now = now.Add(2 * time.Minute)
	a.Entries[0].Body = []byte("alice c1 later")
	if _, err := s.Append(ctx, a); err != nil {
		t.Fatalf("commit after priority expired: %v", err)
	}
	must(t, s.SetPriority(ctx, gid, "bob", 2, now.Add(time.Minute)))
	_, err = s.Append(ctx, commit("bob", 2, "bob c2"))
	must(t, err)
	// Priority for a past epoch is inert.
	if _, err := s.Append(ctx, commit("alice", 3, "alice c3")); err != nil {
		t.Fatalf("priority leaked into the next epoch: %v", err)
	}
	// Messages are never deferred.
	if _, err := s.Append(ctx, msg(4, store.KindApplication, "m")); err != nil {
		t.Fatal(err)
	}
}

func testConcurrentCommits(t *testing.T, s store.Store) {
	_, err := s.CreateGroup(ctx, gid, "c0", nil, store.Policy{}, time.Now())
	must(t, err)
	const clients, rounds = 8, 10
	add := commit("c0", 0, "add all")
	for i := 1; i < clients; i++ {
		add.AddMembers = append(add.AddMembers, fmt.Sprint("c", i))
	}
	_, err = s.Append(ctx, add)
	must(t, err)
	for r := uint64(1); r <= rounds; r++ {
		var wins, stale atomic.Int32
		var wg sync.WaitGroup
		for i := 0; i < clients; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.Append(ctx, commit(fmt.Sprint("c", i), r, fmt.Sprint("r", r, "c", i)))
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, store.ErrStaleEpoch):
					stale.Add(1)
				default:
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 || stale.Load() != clients-1 {
			t.Fatalf("round %d: %d winners, %d stale", r, wins.Load(), stale.Load())
		}
	}
	recs, err := s.Records(ctx, gid, 0, 1000)
	must(t, err)
	if len(recs) != rounds+1 {
		t.Fatalf("%d records", len(recs))
	}
	must(t, store.VerifyChain(0, store.GenesisHash(gid), recs))
}

// testGroupCommit drives many concurrent appends (messages, commits racing
// for each epoch, duplicates, non-members) so that engines with group commit
// put several into one transaction, and checks that each still gets what it
// would get alone: every acknowledged record is in the log at the seq it was
// told, one commit wins each epoch, every loser is told that winner, a
// duplicate is told where the first landed, and a refused append leaves no
// trace among the others of its batch.
func testGroupCommit(t *testing.T, s store.Store) {
	_, err := s.CreateGroup(ctx, gid, "c0", nil, store.Policy{}, time.Now())
	must(t, err)
	const clients, rounds = 16, 6
	add := commit("c0", 0, "add all")
	for i := 1; i < clients; i++ {
		add.AddMembers = append(add.AddMembers, fmt.Sprint("c", i))
	}
	_, err = s.Append(ctx, add)
	must(t, err)
	var w0, t0 uint64
	bs, batching := s.(store.BatchStats)
	if batching {
		w0, t0 = bs.BatchStats()
	}
	type acked struct {
		seq  uint64
		hash []byte
		body string
	}
	var mu sync.Mutex
	var acks []acked
	winners := map[uint64]acked{}   // epoch -> winning commit
	losers := map[uint64][]uint64{} // epoch -> WinningSeq told to losers
	dups := map[string][]uint64{}   // body -> seqs told to duplicates
	for r := uint64(1); r <= rounds; r++ {
		var wg sync.WaitGroup
		for i := 0; i < clients; i++ {
			sender := fmt.Sprint("c", i)
			for j := 0; j < 4; j++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var a store.Append
					body := fmt.Sprint("r", r, "c", i, "j", j)
					switch j {
					case 0:
						a = commit(sender, r, body)
					case 3:
						body = fmt.Sprint("r", r, "c", i, "dup") // sent twice below
						a = msg(r, store.KindApplication, body)
						a.Sender = sender
					default:
						a = msg(r, store.KindApplication, body)
						a.Sender = sender
						if i == 0 && j == 2 {
							a.Sender = "stranger"
						}
					}
					a.Window = rounds
					for k := 0; k < 1+j/3; k++ {
						recs, err := s.Append(ctx, a)
						var se *store.StaleEpochError
						var de *store.DuplicateError
						mu.Lock()
						switch {
						case err == nil:
							acks = append(acks, acked{recs[0].Seq, recs[0].ChainHash, body})
							if a.Commit {
								if _, ok := winners[r]; ok {
									t.Errorf("epoch %d won twice", r)
								}
								winners[r] = acked{recs[0].Seq, recs[0].ChainHash, body}
							}
						case a.Commit && errors.As(err, &se):
							losers[r] = append(losers[r], se.WinningSeq)
						case errors.As(err, &de):
							dups[body] = append(dups[body], de.Seq)
						case a.Sender == "stranger" && errors.Is(err, store.ErrNotMember):
						default:
							t.Errorf("%s: %v", body, err)
						}
						mu.Unlock()
					}
				}()
			}
		}
		wg.Wait()
	}
	recs, err := s.Records(ctx, gid, 0, 10000)
	must(t, err)
	must(t, store.VerifyChain(0, store.GenesisHash(gid), recs))
	bySeq := map[uint64]store.Record{}
	for _, r := range recs {
		bySeq[r.Seq] = r
	}
	if len(recs) != len(acks)+1 {
		t.Errorf("log holds %d records after the first, %d were acknowledged", len(recs)-1, len(acks))
	}
	for _, a := range acks {
		r, ok := bySeq[a.seq]
		if !ok || string(r.Body) != a.body || !bytes.Equal(r.ChainHash, a.hash) {
			t.Errorf("acknowledged %q at %d is not there", a.body, a.seq)
		}
	}
	for r := uint64(1); r <= rounds; r++ {
		w, ok := winners[r]
		if !ok {
			t.Errorf("no commit won epoch %d", r)
			continue
		}
		if len(losers[r]) != clients-1 {
			t.Errorf("epoch %d: %d losers, want %d", r, len(losers[r]), clients-1)
		}
		for _, seq := range losers[r] {
			if seq != w.seq {
				t.Errorf("epoch %d: a loser was told winner %d, it is %d", r, seq, w.seq)
			}
		}
	}
	for body, seqs := range dups {
		for _, seq := range seqs {
			if string(bySeq[seq].Body) != body {
				t.Errorf("duplicate of %q told seq %d, which holds %q", body, seq, bySeq[seq].Body)
			}
		}
	}
	if len(dups) != clients*rounds {
		t.Errorf("%d duplicates refused, want %d", len(dups), clients*rounds)
	}
	if batching {
		w, tr := bs.BatchStats()
		w, tr = w-w0, tr-t0
		t.Logf("%d writes in %d transactions", w, tr)
		if tr >= w {
			t.Errorf("no write shared a transaction: %d writes in %d transactions", w, tr)
		}
	}
}

func testWatch(t *testing.T, s store.Store) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	got := make(chan store.Notification, 16)
	go s.Watch(wctx, func(n store.Notification) {
		select {
		case got <- n:
		default:
		}
	})
	_, err := s.CreateGroup(ctx, gid, "alice", nil, store.Policy{}, time.Now())
	must(t, err)
	deadline := time.After(10 * time.Second)
	// Watch may need a moment to start listening: keep appending until a
	// notification for the group arrives.
	for i := 0; ; i++ {
		_, err := s.Append(ctx, msg(0, store.KindApplication, fmt.Sprint("w", i)))
		must(t, err)
		select {
		case n := <-got:
			if n.GroupID != nil {
				if !bytes.Equal(n.GroupID, gid) || n.Seq == 0 {
					t.Fatalf("notification %+v", n)
				}
				return
			}
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatal("no notification")
		}
	}
}

// testPublishedGroupInfo: the published GroupInfo changes only with a
// commit that carries one. Messages leave it, a commit without one keeps
// it, and in a batch (commits and messages written together) the last
// commit's GroupInfo is the one kept, whatever follows it in the batch.
func testPublishedGroupInfo(t *testing.T, s store.Store) {
	const clients = 8
	big := bytes.Repeat([]byte("gi0 "), 64<<10) // a GroupInfo of 256 KiB, like a tree of ~1,000 members
	_, err := s.CreateGroup(ctx, gid, "c0", big, store.Policy{}, time.Now())
	must(t, err)
	published := func(want []byte, epoch uint64, when string) {
		t.Helper()
		g, err := s.Group(ctx, gid)
		must(t, err)
		if !bytes.Equal(g.GroupInfo, want) || g.Epoch != epoch {
			t.Fatalf("%s: epoch %d, GroupInfo of %d octets %.8q; want epoch %d, %d octets %.8q",
				when, g.Epoch, len(g.GroupInfo), g.GroupInfo, epoch, len(want), want)
		}
		// Head is the same group without its GroupInfo.
		h, err := s.Head(ctx, gid)
		must(t, err)
		g.GroupInfo = nil
		if !reflect.DeepEqual(h, g) {
			t.Fatalf("%s: Head %+v, Group without its GroupInfo %+v", when, h, g)
		}
	}
	add := commit("c0", 0, "add all")
	for i := 1; i < clients; i++ {
		add.AddMembers = append(add.AddMembers, fmt.Sprint("c", i))
	}
	_, err = s.Append(ctx, add) // no GroupInfo: the old one stays
	must(t, err)
	published(big, 1, "after a commit without a GroupInfo")
	for i := range 5 {
		a := msg(1, store.KindApplication, fmt.Sprint("m", i))
		a.Sender = "c0"
		_, err := s.Append(ctx, a)
		must(t, err)
	}
	published(big, 1, "after messages")
	c := commit("c1", 1, "c1")
	c.GroupInfo = []byte("gi2")
	_, err = s.Append(ctx, c)
	must(t, err)
	published([]byte("gi2"), 2, "after a commit with a GroupInfo")

	// Concurrent writers, so that engines with group commit batch them:
	// each round one commit with a GroupInfo races messages sent before
	// and after it; the refused commits' GroupInfos must not stick.
	for r := uint64(2); r < 6; r++ {
		var wg sync.WaitGroup
		var won atomic.Int32
		for i := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sender := fmt.Sprint("c", i)
				for j := range 3 {
					a := msg(r, store.KindApplication, fmt.Sprint("r", r, sender, "m", j))
					a.Sender, a.Window = sender, 8
					if j == 1 {
						a = commit(sender, r, fmt.Sprint("r", r, sender, "c"))
						a.GroupInfo = []byte(fmt.Sprint("gi", r+1, "-", sender))
					}
					if _, err := s.Append(ctx, a); err == nil && j == 1 {
						won.Add(1)
					} else if err != nil && j != 1 {
						t.Errorf("message: %v", err)
					}
				}
			}()
		}
		wg.Wait()
		if won.Load() != 1 {
			t.Fatalf("round %d: %d commits won", r, won.Load())
		}
		rec, err := s.CommitRecord(ctx, gid, r)
		must(t, err)
		published([]byte(fmt.Sprint("gi", r+1, "-", rec.Sender)), r+1, fmt.Sprint("round ", r))
	}
}

// BenchmarkAppend times store.Append of 1 KiB application messages, one
// at a time, into a group of two whose published GroupInfo has giSize
// octets. A message does not change the GroupInfo, so its cost should not
// depend on giSize.
func BenchmarkAppend(b *testing.B, s store.Store, giSize int) {
	g := []byte(fmt.Sprint("bench-", giSize, "-", time.Now().UnixNano()))
	gi := bytes.Repeat([]byte{0x5a}, giSize)
	if giSize == 0 {
		gi = nil
	}
	if _, err := s.CreateGroup(ctx, g, "alice", gi, store.Policy{}, time.Now()); err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 1024)
	b.SetBytes(int64(len(body)))
	i := 0
	for b.Loop() {
		i++
		copy(body, fmt.Sprint(i, "/")) // distinct bodies: duplicates are refused
		_, err := s.Append(ctx, store.Append{GroupID: g, Sender: "alice", Now: time.Now(),
			Entries: []store.Entry{{Kind: store.KindApplication, WireFormat: 2, Body: body}}})
		if err != nil {
			b.Fatal(err)
		}
	}
}
