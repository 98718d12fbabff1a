package server_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	v1 "github.com/mlskit/mlskit/ds/api/mlsdv1"
	"github.com/mlskit/mlskit/ds/client"
	"github.com/mlskit/mlskit/ds/server"
	"github.com/mlskit/mlskit/ds/store"
	"github.com/mlskit/mlskit/internal/fakemsg"
	"github.com/mlskit/mlskit/mls"
)

func TestEndToEnd(t *testing.T) {
	e := newEnv(t, server.Config{})
	alice, bob := e.login("alice"), e.login("bob")

	// Bob stocks KeyPackages and a last resort.
	refs, err := bob.UploadKeyPackages(ctx, [][]byte{bob.keyPackage(t, false), bob.keyPackage(t, false)}, bob.keyPackage(t, true))
	must(t, err)
	if len(refs) != 3 {
		t.Fatalf("%d refs", len(refs))
	}
	stock, err := bob.KeyPackageStock(ctx)
	must(t, err)
	if len(stock) != 1 || stock[0].Count != 2 || !stock[0].HasLastResort {
		t.Fatalf("stock %v", stock)
	}

	bobStream, err := bob.Subscribe(ctx)
	must(t, err)
	defer bobStream.Close()

	// Alice claims one of Bob's KeyPackages and adds him.
	claimed, err := alice.ClaimKeyPackages(ctx, testSuite, "bob", "nobody")
	must(t, err)
	if len(claimed.KeyPackages) != 1 || claimed.KeyPackages[0].LastResort || len(claimed.Missing) != 1 || claimed.Missing[0] != "nobody" {
		t.Fatalf("claim %v", claimed)
	}
	gid := gidOf("e2e")
	must(t, alice.CreateGroup(ctx, gid, fakemsg.GroupInfo(testSuite, gid, 0, []byte("gi0"))))
	welcome := fakemsg.Welcome(testSuite, [][]byte{claimed.KeyPackages[0].Ref}, []byte("secret welcome"))
	res, err := alice.Commit(ctx, &v1.SendCommitRequest{
		Commit:     commitMsg(gid, 0, "add bob"),
		Welcomes:   []*v1.Welcome{{Welcome: welcome, Recipients: []string{"bob"}}},
		GroupInfo:  fakemsg.GroupInfo(testSuite, gid, 1, []byte("gi1")),
		AddMembers: []string{"bob"},
	})
	must(t, err)
	if res.Seq != 1 || res.Epoch != 1 {
		t.Fatalf("commit %v", res)
	}
	gi, err := bob.GroupInfo(ctx, gid)
	must(t, err)
	if gi.Epoch != 1 || !bytes.Contains(gi.GroupInfo, []byte("gi1")) {
		t.Fatalf("group info %v", gi)
	}

	// Bob's stream: the Welcome (with body, he is its recipient), then
	// Alice's message.
	hello := appMsg(gid, 1, "hello bob")
	_, err = alice.Send(ctx, hello)
	must(t, err)
	var got []*v1.Record
	for len(got) < 2 {
		ev, err := bobStream.Next()
		must(t, err)
		if r := ev.GetRecord(); r != nil {
			got = append(got, r)
		}
	}
	if got[0].Kind != uint32(store.KindWelcome) || !bytes.Equal(got[0].Body, welcome) || got[1].Seq != 3 || !bytes.Equal(got[1].Body, hello) {
		t.Fatalf("bob received %v", got)
	}
	must(t, bob.Ack(ctx, gid, 3))

	// Alice sees the Welcome's header but not its body.
	all, err := alice.FetchAll(ctx, gid)
	must(t, err)
	if len(all) != 3 || all[1].Body != nil || all[2].Sender != "alice" {
		t.Fatalf("alice's view %+v", all)
	}
	// Bob's acknowledged cursor: nothing pending.
	resp, err := bob.Fetch(ctx, gid, nil, 0)
	must(t, err)
	if len(resp.Records) != 0 || resp.HeadSeq != 3 {
		t.Fatalf("after ack: %v", resp)
	}
	groups, err := bob.ListGroups(ctx)
	must(t, err)
	if len(groups) != 1 || groups[0].AckedSeq != 3 || groups[0].Epoch != 1 {
		t.Fatalf("groups %v", groups)
	}

	// Drain Bob's regular KeyPackages: then the last resort, again and
	// again, and Bob is told to replace it.
	for i := 0; i < 3; i++ {
		c, err := alice.ClaimKeyPackages(ctx, testSuite, "bob")
		must(t, err)
		if c.KeyPackages[0].LastResort != (i >= 1) {
			t.Fatalf("claim %d: last resort %v", i, c.KeyPackages[0].LastResort)
		}
	}
	for {
		ev, err := bobStream.Next()
		must(t, err)
		if n := ev.GetKeyPackageNotice(); n != nil && n.LastResortUsed {
			break
		}
	}

	// Bob removes Alice; she can no longer send.
	_, err = bob.Commit(ctx, &v1.SendCommitRequest{Commit: commitMsg(gid, 1, "remove alice"), RemoveMembers: []string{"alice"}})
	must(t, err)
	_, err = alice.Send(ctx, appMsg(gid, 2, "still here?"))
	if connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("removed member's send: %v", err)
	}

	// Nothing secret or any body in the logs or metrics.
	mresp, err := http.Get(e.url + "/metrics")
	must(t, err)
	metrics, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	for _, want := range []string{`mlsd_commits_total{result="won"} 2`, `mlsd_keypackages_claimed_total{result="last_resort"} 2`, "mlsd_commit_accept_seconds_count 2", "mlsd_subscribers 1"} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %q:\n%s", want, metrics)
		}
	}
	logs := e.logs.Bytes()
	for _, secret := range []string{"hello bob", "secret welcome", alice.Token(), bob.Token()} {
		if bytes.Contains(logs, []byte(secret)) || bytes.Contains(metrics, []byte(secret)) {
			t.Errorf("%q leaked into logs or metrics", secret)
		}
	}
	if !bytes.Contains(logs, []byte(`"msg":"rpc"`)) {
		t.Error("no structured request logs")
	}
}

func TestStaleCommit(t *testing.T) {
	e := newEnv(t, server.Config{})
	alice, bob := e.login("alice"), e.login("bob")
	carol, dave := e.login("carol"), e.login("dave")
	gid := gidOf("stale")
	must(t, alice.CreateGroup(ctx, gid, nil))
	_, err := invite(t, alice, gid, 0, bob)
	must(t, err)
	win, err := invite(t, alice, gid, 1, carol)
	must(t, err)
	// Bob's commit for epoch 1 loses: typed answer with the winner, and
	// his bundle's Welcome is never delivered.
	_, err = dave.UploadKeyPackages(ctx, [][]byte{dave.keyPackage(t, false)}, nil)
	must(t, err)
	daveKP, err := bob.ClaimKeyPackages(ctx, testSuite, "dave")
	must(t, err)
	_, err = bob.Commit(ctx, &v1.SendCommitRequest{Commit: commitMsg(gid, 1, "bob loses 1"),
		Welcomes: []*v1.Welcome{{Welcome: fakemsg.Welcome(1, [][]byte{daveKP.KeyPackages[0].Ref}, []byte("losing welcome"))}}, AddMembers: []string{"dave"}})
	if connect.CodeOf(err) != connect.CodeAborted {
		t.Fatalf("loser: %v", err)
	}
	st, ok := client.StaleEpoch(err)
	if !ok || st.CurrentEpoch != 2 || st.WinningSeq != win.Seq || !bytes.Equal(st.WinningChainHash, win.ChainHash) {
		t.Fatalf("stale detail %v", st)
	}
	// A future epoch is refused too, with no winner.
	_, err = bob.Commit(ctx, &v1.SendCommitRequest{Commit: commitMsg(gid, 7, "future")})
	if st, ok := client.StaleEpoch(err); connect.CodeOf(err) != connect.CodeFailedPrecondition || !ok || st.WinningSeq != 0 {
		t.Fatalf("future: %v", err)
	}
	all, err := bob.FetchAll(ctx, gid)
	must(t, err)
	for _, r := range all {
		if bytes.Contains(r.Body, []byte("losing")) || bytes.Contains(r.Body, []byte("bob loses")) {
			t.Fatal("losing bundle delivered")
		}
	}
	if _, err := e.st.Membership(ctx, gid, "dave"); !errors.Is(err, store.ErrNotMember) {
		t.Fatal("losing bundle's membership change applied")
	}
	// Proposals and application messages: current epoch and a window.
	for epoch, ok := range map[uint64]bool{2: true, 0: true, 3: false} {
		_, err := bob.Send(ctx, appMsg(gid, epoch, "m"))
		if (err == nil) != ok {
			t.Fatalf("message at epoch %d: %v", epoch, err)
		}
	}
}

func TestFairness(t *testing.T) {
	// An honest member who always arrives second must get through within
	// StarvationThreshold+1 tries.
	e := newEnv(t, server.Config{StarvationThreshold: 3, PriorityHold: 5 * time.Second})
	fast, slow := e.login("fast"), e.login("slow")
	gid := gidOf("fair")
	must(t, fast.CreateGroup(ctx, gid, nil))
	_, err := invite(t, fast, gid, 0, slow)
	must(t, err)
	epoch := uint64(1)
	tries := 0
	for ; tries < 10; tries++ {
		// The fast member commits first every time it is allowed to.
		// Both prepared a commit for the same epoch; the fast one lands first.
		_, err := fast.Commit(ctx, &v1.SendCommitRequest{Commit: commitMsg(gid, epoch, "fast")})
		if _, ok := client.Deferred(err); err != nil && !ok {
			t.Fatalf("fast: %v", err)
		}
		_, err = slow.Commit(ctx, &v1.SendCommitRequest{Commit: commitMsg(gid, epoch, "slow")})
		if err == nil {
			break
		}
		st, ok := client.StaleEpoch(err)
		if !ok {
			t.Fatalf("slow: %v", err)
		}
		epoch = st.CurrentEpoch
	}
	if tries != 3 {
		t.Fatalf("starved member got through after %d losses, want 3", tries)
	}
}

func TestBadInput(t *testing.T) {
	e := newEnv(t, server.Config{MaxMessageSize: 4096})
	alice := e.login("alice")
	gid := gidOf("bad")
	must(t, alice.CreateGroup(ctx, gid, nil))
	_, err := alice.Send(ctx, appMsg(gid, 0, "first"))
	must(t, err)
	head := func() store.Group {
		g, err := e.st.Group(ctx, gid)
		must(t, err)
		return g
	}
	before := head()

	anon := client.New(e.url, nil)
	forged := client.New(e.url, nil)
	forged.SetToken("not-a-token")
	replay := appMsg(gid, 0, "once")
	_, err = alice.Send(ctx, replay)
	must(t, err)
	before = head()

	cases := []struct {
		name string
		call func() error
		code connect.Code
	}{
		{"malformed message", func() error { _, err := alice.Send(ctx, []byte{0, 1, 0, 2, 0xff}); return err }, connect.CodeInvalidArgument},
		{"truncated message", func() error { m := appMsg(gid, 0, "x"); _, err := alice.Send(ctx, m[:len(m)-1]); return err }, connect.CodeInvalidArgument},
		{"welcome as message", func() error { _, err := alice.Send(ctx, fakemsg.Welcome(1, nil, nil)); return err }, connect.CodeInvalidArgument},
		{"commit via SendMessage", func() error { _, err := alice.Send(ctx, commitMsg(gid, 1, "c")); return err }, connect.CodeInvalidArgument},
		{"oversized message", func() error { _, err := alice.Send(ctx, appMsg(gid, 0, strings.Repeat("x", 5000))); return err }, connect.CodeResourceExhausted},
		{"oversized request", func() error {
			_, err := alice.Commit(ctx, &v1.SendCommitRequest{Commit: commitMsg(gid, 1, strings.Repeat("y", 200_000))})
			return err
		}, connect.CodeResourceExhausted},
		{"unauthenticated", func() error { _, err := anon.Send(ctx, appMsg(gid, 0, "anon")); return err }, connect.CodeUnauthenticated},
		{"bad token", func() error { _, err := forged.Send(ctx, appMsg(gid, 0, "forged")); return err }, connect.CodeUnauthenticated},
		{"replayed message", func() error { _, err := alice.Send(ctx, replay); return err }, connect.CodeAlreadyExists},
		{"bad welcome in bundle", func() error {
			_, err := alice.Commit(ctx, &v1.SendCommitRequest{Commit: commitMsg(gid, 0, "c"), Welcomes: []*v1.Welcome{{Welcome: []byte{1, 2, 3}, Recipients: []string{"x"}}}})
			return err
		}, connect.CodeInvalidArgument},
		{"group info for another epoch", func() error {
			_, err := alice.Commit(ctx, &v1.SendCommitRequest{Commit: commitMsg(gid, 0, "c"), GroupInfo: fakemsg.GroupInfo(1, gid, 5, []byte("r"))})
			return err
		}, connect.CodeInvalidArgument},
		{"unknown group", func() error { _, err := alice.Send(ctx, appMsg([]byte("nope"), 0, "x")); return err }, connect.CodeNotFound},
		{"empty group id", func() error { return alice.CreateGroup(ctx, nil, nil) }, connect.CodeInvalidArgument},
		{"bad KeyPackage", func() error { _, err := alice.UploadKeyPackages(ctx, [][]byte{{0, 1, 0, 5, 1}}, nil); return err }, connect.CodeInvalidArgument},
	}
	for _, c := range cases {
		err := c.call()
		if connect.CodeOf(err) != c.code {
			t.Errorf("%s: got %v, want %v", c.name, err, c.code)
		}
		if err != nil && err.Error() == "" {
			t.Errorf("%s: empty error", c.name)
		}
	}
	if after := head(); after.HeadSeq != before.HeadSeq || after.Epoch != before.Epoch || !bytes.Equal(after.HeadHash, before.HeadHash) {
		t.Fatalf("bad input changed the log: %+v -> %+v", before, after)
	}
	if d, ok := client.Duplicate(func() error { _, err := alice.Send(ctx, replay); return err }()); !ok || d.Seq != before.HeadSeq {
		t.Fatalf("replay answer %v", d)
	}
	st, err := alice.KeyPackageStock(ctx)
	must(t, err)
	if len(st) != 0 {
		t.Fatalf("bad KeyPackage stored: %v", st)
	}
}

func TestLoginAndKeyPackagePolicy(t *testing.T) {
	e := newEnv(t, server.Config{MaxKeyPackageLifetime: 30 * 24 * time.Hour})
	alice := e.login("alice")
	sg := signer(t)
	// A replayed login (same challenge and proof) fails.
	c := client.New(e.url, nil)
	cred := mls.BasicCredential([]byte("mallory")).Bytes()
	must(t, c.Login(ctx, testSuite, sg, cred))
	// A different key for a pinned basic identity is refused.
	if err := client.New(e.url, nil).Login(ctx, testSuite, signer(t), cred); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("second key for a pinned identity: %v", err)
	}
	// KeyPackage policy.
	now := time.Now()
	build := func(s *member, cred []byte, nb, na time.Time) []byte {
		return newKeyPackage(t, s.sig, cred, nb, na, false)
	}
	_, otherKey := keys(t)
	for name, kp := range map[string][]byte{
		"too long lifetime": build(alice, alice.cred, now.Add(-time.Hour), now.Add(365*24*time.Hour)),
		"expired":           build(alice, alice.cred, now.Add(-48*time.Hour), now.Add(-24*time.Hour)),
		"not yet valid":     build(alice, alice.cred, now.Add(24*time.Hour), now.Add(48*time.Hour)),
		"another identity":  build(alice, mls.BasicCredential([]byte("bob")).Bytes(), now.Add(-time.Hour), now.Add(time.Hour)),
		"another key":       build(&member{sig: otherKey}, alice.cred, now.Add(-time.Hour), now.Add(time.Hour)),
		"tampered signature": func() []byte {
			kp := build(alice, alice.cred, now.Add(-time.Hour), now.Add(time.Hour))
			kp[len(kp)-1] ^= 1
			return kp
		}(),
	} {
		if _, err := alice.UploadKeyPackages(ctx, [][]byte{kp}, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	kp := alice.keyPackage(t, false)
	_, err := alice.UploadKeyPackages(ctx, [][]byte{kp}, nil)
	must(t, err)
	if _, err := alice.UploadKeyPackages(ctx, [][]byte{kp}, nil); connect.CodeOf(err) != connect.CodeAlreadyExists {
		t.Fatalf("duplicate KeyPackage: %v", err)
	}
}

func TestClaimRateLimits(t *testing.T) {
	e := newEnv(t, server.Config{TargetRate: 0.001, TargetBurst: 2, ClaimRate: 0.001, ClaimBurst: 3})
	bob, eve, carol := e.login("bob"), e.login("eve"), e.login("carol")
	var kps [][]byte
	for i := 0; i < 10; i++ {
		kps = append(kps, bob.keyPackage(t, false))
	}
	_, err := bob.UploadKeyPackages(ctx, kps, nil)
	must(t, err)
	// Eve tries to drain Bob's stock: the per-target limit stops her after 2.
	for i := 0; i < 2; i++ {
		_, err := eve.ClaimKeyPackages(ctx, testSuite, "bob")
		must(t, err)
	}
	if _, err := eve.ClaimKeyPackages(ctx, testSuite, "bob"); connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("third claim on one target: %v", err)
	}
	if _, err := carol.ClaimKeyPackages(ctx, testSuite, "bob"); connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("target limit is per target: %v", err)
	}
	// The per-claimer limit.
	if _, err := eve.ClaimKeyPackages(ctx, testSuite, "x1", "x2"); connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("claimer limit: %v", err)
	}
	st, _ := bob.KeyPackageStock(ctx)
	if st[0].Count != 8 {
		t.Fatalf("stock %d, want 8", st[0].Count)
	}
}

func TestSlowConsumer(t *testing.T) {
	e := newEnv(t, server.Config{SendTimeout: 300 * time.Millisecond, MaxMessageSize: 1 << 20, GroupRate: 1e6, GroupBurst: 1e6, ClientRate: 1e6, ClientBurst: 1e6})
	alice, bob := e.login("alice"), e.login("bob")
	gid := gidOf("slow")
	must(t, alice.CreateGroup(ctx, gid, nil))
	_, err := invite(t, alice, gid, 0, bob)
	must(t, err)
	stream, err := bob.Subscribe(ctx)
	must(t, err)
	defer stream.Close()
	// Bob never reads; Alice sends far more than flow control buffers.
	// Random bodies: compression must not shrink them.
	for i := 0; i < 40; i++ {
		_, err := alice.Send(ctx, appMsg(gid, 1, string(randBytes(256<<10))))
		must(t, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(e.url + "/metrics")
		must(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), "mlsd_slow_consumers_total 1") {
			break
		}
		if time.Now().After(deadline) {
			t.Logf("%s", b)
			t.Fatal("slow consumer was not disconnected")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The stream is dead; Bob catches up with Fetch.
	for {
		if _, err := stream.Next(); err != nil {
			break
		}
	}
	all, err := bob.FetchAll(ctx, gid)
	must(t, err)
	if len(all) != 41 {
		t.Fatalf("fetch after disconnect: %d records", len(all))
	}
}
