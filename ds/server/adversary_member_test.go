package server_test

// The membership half of the adversary suite (issue 16, findings 1, 2, 7
// and 13): each attack is made through the real API by a self-registered
// client, is refused with a clear code, and afterwards the honest members
// (real mls clients) still send, receive and commit, every acknowledged
// message is in the log and the chain verifies. Each test runs on SQLite
// and PostgreSQL.

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"

	v1 "github.com/mlskit/mlskit/ds/api/mlsdv1"
	"github.com/mlskit/mlskit/ds/client"
	"github.com/mlskit/mlskit/ds/store"
	"github.com/mlskit/mlskit/ds/store/postgres/pgtest"
	"github.com/mlskit/mlskit/internal/fakemsg"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/mls"
)

// onEngines runs f on SQLite and on PostgreSQL.
func onEnginesUnlimited(t *testing.T, f func(t *testing.T, e *env)) {
	t.Run("sqlite", func(t *testing.T) { f(t, newEnv(t, unlimited)) })
	t.Run("postgres", func(t *testing.T) {
		cfg := unlimited
		cfg.Store = pgtest.Open(t, pgtest.NewSchema(), true)
		f(t, newEnv(t, cfg))
	})
}

// peer is an honest (or not) client running the real mls library.
type peer struct {
	*member
	t       *testing.T
	sig     *mls.SignatureKeyPair
	mcred   mls.Credential
	cfg     *mls.Config
	bundles map[string]*mls.KeyPackageBundle
	groups  map[string]*mls.Group
	got     map[string][]string // application messages received, per group
}

func (e *env) peer(t *testing.T, name string, public bool) *peer {
	t.Helper()
	sig, err := mls.GenerateSignatureKeyPair(testSuite, rand.Reader)
	must(t, err)
	s, _ := suite.Lookup(testSuite)
	sg, err := s.NewSigner(sig.PrivateKey())
	must(t, err)
	cred := mls.BasicCredential([]byte(name))
	p := &peer{member: &member{Client: client.New(e.url, nil), signer: sg, sig: sig, cred: cred.Bytes(), name: name},
		t: t, sig: sig, mcred: cred, cfg: &mls.Config{PublicHandshakes: public, KeyPackageLifetime: 30 * 24 * time.Hour},
		bundles: map[string]*mls.KeyPackageBundle{}, groups: map[string]*mls.Group{}, got: map[string][]string{}}
	must(t, p.Login(ctx, testSuite, sg, p.cred))
	return p
}

// publish uploads fresh KeyPackages.
func (p *peer) publish(n int) {
	var kps [][]byte
	for i := 0; i < n; i++ {
		b, err := mls.NewKeyPackage(p.cfg, p.mcred, p.sig, nil)
		must(p.t, err)
		p.bundles[string(b.KeyPackage.Ref())] = b
		kps = append(kps, b.KeyPackage.Bytes())
	}
	_, err := p.UploadKeyPackages(ctx, kps, nil)
	must(p.t, err)
}

func (p *peer) create(gid string, pol *v1.GroupPolicy) *mls.Group {
	g, err := mls.NewGroup(p.cfg, []byte(gid), p.mcred, p.sig, nil)
	must(p.t, err)
	gi, err := g.GroupInfo(true, pol.GetExternalJoins())
	must(p.t, err)
	must(p.t, p.CreateGroupWithPolicy(ctx, []byte(gid), gi, pol))
	p.groups[gid] = g
	return g
}

func nameOf(c mls.Credential) string { return string(c.Identity) }

// commit sends a commit of opts as one bundle with its Welcome and
// GroupInfo, stating membership as a client would; the group enters the
// new epoch only if the server accepts it.
func (p *peer) commit(gid string, opts *mls.CommitOptions) (*v1.SendCommitResponse, error) {
	g := p.groups[gid]
	if opts == nil {
		opts = &mls.CommitOptions{}
	}
	opts.ExternalPub, opts.GroupInfo = true, true
	res, err := g.Commit(opts)
	must(p.t, err)
	req := &v1.SendCommitRequest{Commit: res.Commit, GroupInfo: res.GroupInfo}
	for _, a := range res.Staged.Added {
		req.AddMembers = append(req.AddMembers, nameOf(a.KeyPackage.Credential()))
	}
	for _, r := range res.Staged.Removed {
		req.RemoveMembers = append(req.RemoveMembers, nameOf(r.Credential))
	}
	if res.Welcome != nil {
		req.Welcomes = []*v1.Welcome{{Welcome: res.Welcome}}
	}
	resp, err := p.Commit(ctx, req)
	if err != nil {
		g.DiscardPendingCommit()
		return nil, err
	}
	must(p.t, g.MergePendingCommit())
	return resp, nil
}

func (p *peer) invite(gid string, who ...*peer) {
	p.t.Helper()
	p.sync(gid)
	var names []string
	for _, w := range who {
		names = append(names, w.name)
	}
	claimed, err := p.ClaimKeyPackages(ctx, testSuite, names...)
	must(p.t, err)
	var props []*mls.Proposal
	for _, c := range claimed.KeyPackages {
		kp, err := mls.ParseKeyPackage(c.KeyPackage)
		must(p.t, err)
		props = append(props, mls.AddProposal(kp))
	}
	_, err = p.commit(gid, &mls.CommitOptions{Proposals: props})
	must(p.t, err)
}

func (p *peer) leafOf(gid string, name string) mls.LeafIndex {
	for _, m := range p.groups[gid].Members() {
		if nameOf(m.Credential) == name {
			return m.Index
		}
	}
	p.t.Fatalf("%s is not in %s's view of %s", name, p.name, gid)
	return 0
}

// say sends an application message and returns its sequence number.
func (p *peer) say(gid, text string) uint64 {
	p.t.Helper()
	p.sync(gid)
	msg, err := p.groups[gid].Encrypt([]byte(text), nil)
	must(p.t, err)
	resp, err := p.Send(ctx, msg)
	must(p.t, err)
	return resp.Seq
}

// sync reads the group's log from the acknowledged cursor, verifies the
// chain, processes every record and acknowledges it.
func (p *peer) sync(gid string) {
	p.t.Helper()
	for {
		resp, err := p.Fetch(ctx, []byte(gid), nil, 0)
		must(p.t, err)
		if len(resp.Records) == 0 {
			return
		}
		for _, r := range resp.Records {
			if _, err := p.Verify(r); err != nil {
				p.t.Fatalf("%s: chain: %v", p.name, err)
			}
			p.handle(gid, r)
		}
		must(p.t, p.Ack(ctx, []byte(gid), resp.Records[len(resp.Records)-1].Seq))
	}
}

func (p *peer) handle(gid string, r *v1.Record) {
	g := p.groups[gid]
	switch {
	case r.Kind == uint32(store.KindWelcome):
		if r.Body == nil || g != nil {
			return
		}
		refs, err := mls.WelcomeKeyPackageRefs(r.Body)
		must(p.t, err)
		for _, ref := range refs {
			if b, ok := p.bundles[string(ref)]; ok {
				g, err := mls.JoinFromWelcome(p.cfg, r.Body, b, nil)
				must(p.t, err)
				p.groups[gid] = g
				return
			}
		}
		p.t.Fatalf("%s got a Welcome for none of its KeyPackages", p.name)
	case g == nil || r.Sender == p.name:
		// Not joined yet, or our own record (our commits are merged
		// already, our messages are ours).
	default:
		rcv, err := g.Process(r.Body)
		if err != nil {
			p.t.Fatalf("%s processing record %d from %s: %v", p.name, r.Seq, r.Sender, err)
		}
		switch {
		case rcv.Application != nil:
			p.got[gid] = append(p.got[gid], string(rcv.Application))
		case rcv.Commit != nil:
			must(p.t, g.MergeStagedCommit(rcv.Commit))
		}
	}
}

// honest checks that the members still work after an attack: each sends
// a message that all others receive, one of them commits, every
// acknowledged message of sent is in the log, and the chain verifies.
func honest(t *testing.T, gid string, sent map[uint64]string, ps ...*peer) {
	t.Helper()
	for _, p := range ps {
		p.sync(gid)
	}
	for i, p := range ps {
		text := fmt.Sprintf("%s still talks (%d)", p.name, len(sent)+i)
		sent[p.say(gid, text)] = text
	}
	_, err := ps[0].commit(gid, nil)
	must(t, err)
	for _, p := range ps {
		p.sync(gid)
		if p.groups[gid].Epoch() != ps[0].groups[gid].Epoch() {
			t.Fatalf("%s is at epoch %d, %s at %d", p.name, p.groups[gid].Epoch(), ps[0].name, ps[0].groups[gid].Epoch())
		}
	}
	for _, p := range ps {
		all, err := p.FetchAll(ctx, []byte(gid))
		must(t, err) // the chain verifies
		bySeq := map[uint64]store.Record{}
		for _, r := range all {
			bySeq[r.Seq] = r
		}
		for seq, text := range sent {
			if seq <= all[0].Seq-1 {
				continue // before this member joined
			}
			r, ok := bySeq[seq]
			if !ok || r.Kind != store.KindApplication {
				t.Fatalf("%s: acknowledged message %d (%q) missing from the log", p.name, seq, text)
			}
			if r.Sender != p.name && !slices.Contains(p.got[gid], text) {
				t.Fatalf("%s never received %q", p.name, text)
			}
		}
	}
}

func notMember(t *testing.T, e *env, gid, who string) {
	t.Helper()
	if _, err := e.st.Membership(ctx, []byte(gid), who); err == nil {
		t.Fatalf("%s became a member of %s", who, gid)
	}
}

// Finding 1: a non-member's forged external commit took over or bricked any
// group. Now an external commit is validated against the group's state and
// admits only its signer, and only where the group allows external joins.
func TestAdversaryForgedExternalCommit(t *testing.T) {
	for _, public := range []bool{false, true} {
		t.Run(fmt.Sprintf("public=%v", public), func(t *testing.T) {
			onEnginesUnlimited(t, func(t *testing.T, e *env) { forgedExternalCommit(t, e, public) })
		})
	}
}

func forgedExternalCommit(t *testing.T, e *env, public bool) {
	alice, bob := e.peer(t, "alice", public), e.peer(t, "bob", public)
	mallory := e.peer(t, "mallory", public)
	bob.publish(2)
	sent := map[uint64]string{}
	closed, open := "closed", "open"
	alice.create(closed, &v1.GroupPolicy{PublicHandshakes: public})
	alice.create(open, &v1.GroupPolicy{PublicHandshakes: public, ExternalJoins: true})
	alice.invite(closed, bob)
	alice.invite(open, bob)
	sent[alice.say(closed, "before")] = "before"

	junk := func(gid string, epoch uint64) []byte {
		return fakemsg.PublicMessage([]byte(gid), epoch, fakemsg.SenderNewMemberCommit, 0, fakemsg.ContentCommit, []byte("unsigned"))
	}
	// The reported attack: junk external commit removing everyone, with a
	// GroupInfo of the attacker's choosing.
	_, err := mallory.Commit(ctx, &v1.SendCommitRequest{Commit: junk(closed, 1), RemoveMembers: []string{"alice", "bob"},
		GroupInfo: fakemsg.GroupInfo(testSuite, []byte(closed), 2, []byte("mine"))})
	wantCode(t, "junk external commit to a closed group", err, connect.CodePermissionDenied)
	// Without a removal list (the "brick" variant).
	_, err = mallory.Commit(ctx, &v1.SendCommitRequest{Commit: junk(closed, 1)})
	wantCode(t, "junk external commit, no removals", err, connect.CodePermissionDenied)
	// Where external joins are allowed, junk does not validate.
	_, err = mallory.Commit(ctx, &v1.SendCommitRequest{Commit: junk(open, 1), RemoveMembers: []string{"alice", "bob"}})
	wantCode(t, "junk external commit to an open group", err, connect.CodeInvalidArgument)

	// A real external commit, signed by mallory's key, that claims to be
	// alice: the joiner's leaf must be the caller's.
	gi, err := mallory.GroupInfo(ctx, []byte(open))
	must(t, err)
	forged, err := mls.ExternalJoin(mallory.cfg, gi.GroupInfo, mls.BasicCredential([]byte("alice")), mallory.sig, nil)
	must(t, err)
	_, err = mallory.Commit(ctx, &v1.SendCommitRequest{Commit: forged.Commit, GroupInfo: forged.GroupInfo})
	wantCode(t, "external commit naming another client", err, connect.CodePermissionDenied)
	// A real external commit of mallory that also removes alice and bob
	// (an external commit may remove only the joiner's own old leaf).
	rm := alice.leafOf(open, "alice")
	evict, err := mls.ExternalJoin(mallory.cfg, gi.GroupInfo, mallory.mcred, mallory.sig, &mls.ExternalJoinOptions{RemoveLeaf: &rm})
	if err == nil {
		_, err = mallory.Commit(ctx, &v1.SendCommitRequest{Commit: evict.Commit, GroupInfo: evict.GroupInfo})
		if connect.CodeOf(err) != connect.CodeInvalidArgument && connect.CodeOf(err) != connect.CodePermissionDenied {
			t.Fatalf("external commit removing alice: %v", err)
		}
		t.Logf("external commit removing another member: refused: %v", err)
	}
	// The state is unchanged: no new member, no one removed, no record.
	notMember(t, e, closed, "mallory")
	notMember(t, e, open, "mallory")
	for _, gid := range []string{closed, open} {
		ms, err := e.st.Members(ctx, []byte(gid))
		must(t, err)
		if !slices.Equal(ms, []string{"alice", "bob"}) {
			t.Fatalf("members of %s after the attack: %v", gid, ms)
		}
	}
	honest(t, closed, sent, alice, bob)

	// The open group still admits a genuine external joiner, whose
	// commit the members process.
	sentOpen := map[uint64]string{}
	carol := e.peer(t, "carol", public)
	gi, err = carol.GroupInfo(ctx, []byte(open))
	must(t, err)
	j, err := mls.ExternalJoin(carol.cfg, gi.GroupInfo, carol.mcred, carol.sig, &mls.ExternalJoinOptions{ExternalPub: true})
	must(t, err)
	_, err = carol.Commit(ctx, &v1.SendCommitRequest{Commit: j.Commit, GroupInfo: j.GroupInfo})
	must(t, err)
	carol.groups[open] = j.Group
	carol.sync(open)
	honest(t, open, sentOpen, alice, bob, carol)
}

// Finding 2: a junk commit in the attacker's own group with a Welcome for
// the victim broke the victim's client. Now a Welcome goes only to the
// owner of a KeyPackage the sender claimed.
func TestAdversaryUnsolicitedWelcome(t *testing.T) {
	onEnginesUnlimited(t, func(t *testing.T, e *env) {
		alice, victim := e.peer(t, "alice", false), e.peer(t, "victim", false)
		mallory := e.peer(t, "mallory", false)
		victim.publish(3)
		stream, err := victim.Subscribe(ctx)
		must(t, err)
		defer stream.Close()
		mallory.create("mallory's", nil)
		// Alice claims one of the victim's KeyPackages for a genuine
		// invitation; mallory learns its reference.
		claimed, err := alice.ClaimKeyPackages(ctx, testSuite, "victim")
		must(t, err)
		aliceRef := claimed.KeyPackages[0].Ref
		for name, refs := range map[string][][]byte{
			"a Welcome to an unknown KeyPackageRef":       {randBytes(32)},
			"a Welcome to a KeyPackage alice claimed":     {aliceRef},
			"a Welcome to an unclaimed and a claimed ref": {aliceRef, randBytes(32)},
		} {
			_, err := mallory.Commit(ctx, &v1.SendCommitRequest{Commit: commitMsg([]byte("mallory's"), 0, name),
				Welcomes:   []*v1.Welcome{{Welcome: fakemsg.Welcome(testSuite, refs, []byte("junk")), Recipients: []string{"victim"}}},
				AddMembers: []string{"victim"}})
			wantCode(t, name, err, connect.CodePermissionDenied)
		}
		notMember(t, e, "mallory's", "victim")
		if gs, err := victim.ListGroups(ctx); err != nil || len(gs) != 0 {
			t.Fatalf("victim's groups after the attack: %v %v", gs, err)
		}
		// The victim's genuine invitation still works, and its stream
		// carried nothing from mallory's group.
		sent := map[uint64]string{}
		alice.create("real", nil)
		kp, err := mls.ParseKeyPackage(claimed.KeyPackages[0].KeyPackage)
		must(t, err)
		_, err = alice.commit("real", &mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(kp)}})
		must(t, err)
		victim.sync("real")
		if victim.groups["real"] == nil {
			t.Fatal("the victim did not join from the genuine Welcome")
		}
		for {
			ev, err := stream.Next()
			must(t, err)
			if r := ev.GetRecord(); r != nil {
				if string(r.GroupId) != "real" {
					t.Fatalf("victim's stream carried a record of %q", r.GroupId)
				}
				break
			}
		}
		honest(t, "real", sent, alice, victim)
	})
}

// Finding 13: a member's commit naming anyone in add_members, without a
// Welcome or a KeyPackage of theirs claimed, made them a member, and the
// group's traffic streamed to them.
func TestAdversaryForcedMembership(t *testing.T) {
	for _, public := range []bool{false, true} {
		t.Run(fmt.Sprintf("public=%v", public), func(t *testing.T) {
			onEnginesUnlimited(t, func(t *testing.T, e *env) { forcedMembership(t, e, public) })
		})
	}
}

func forcedMembership(t *testing.T, e *env, public bool) {
	alice, mallory := e.peer(t, "alice", public), e.peer(t, "mallory", public)
	victim := e.peer(t, "victim", public)
	mallory.publish(1)
	victim.publish(1)
	sent := map[uint64]string{}
	gid := "g"
	alice.create(gid, &v1.GroupPolicy{PublicHandshakes: public})
	alice.invite(gid, mallory)
	mallory.sync(gid)
	sent[alice.say(gid, "hello")] = "hello"
	mallory.sync(gid)
	epoch := mallory.groups[gid].Epoch()

	// Mallory, a member, names the victim in add_members. With encrypted
	// handshakes the commit is opaque; with public ones it is a real,
	// valid commit that adds no one.
	var body []byte
	var gi []byte
	if public {
		res, err := mallory.groups[gid].Commit(&mls.CommitOptions{GroupInfo: true})
		must(t, err)
		body, gi = res.Commit, res.GroupInfo
	} else {
		body = commitMsg([]byte(gid), epoch, "force victim in")
	}
	_, err := mallory.Commit(ctx, &v1.SendCommitRequest{Commit: body, GroupInfo: gi, AddMembers: []string{"victim"}})
	want := connect.CodePermissionDenied
	if public {
		want = connect.CodeInvalidArgument // the commit adds no one
	}
	wantCode(t, "add_members naming an uninvited client", err, want)
	// With a Welcome to a KeyPackage mallory did not claim.
	_, err = mallory.Commit(ctx, &v1.SendCommitRequest{Commit: body, GroupInfo: gi, AddMembers: []string{"victim"},
		Welcomes: []*v1.Welcome{{Welcome: fakemsg.Welcome(testSuite, [][]byte{randBytes(32)}, []byte("w"))}}})
	wantCode(t, "add_members with a Welcome to an unclaimed KeyPackage", err, connect.CodePermissionDenied)
	notMember(t, e, gid, "victim")
	if _, err := victim.Fetch(ctx, []byte(gid), nil, 0); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("victim reads the group: %v", err)
	}
	if public {
		mallory.groups[gid].DiscardPendingCommit()
	}
	honest(t, gid, sent, alice, mallory)
}

// Finding 7: GetGroupInfo gave the roster to anyone; Fetch from 0 gave a
// new member the records from before it joined. And a removed member gets
// the commit that removed it, then nothing more.
func TestAdversaryMetadata(t *testing.T) {
	onEnginesUnlimited(t, func(t *testing.T, e *env) {
		alice, bob, carol := e.peer(t, "alice", false), e.peer(t, "bob", false), e.peer(t, "carol", false)
		eve := e.peer(t, "eve", false)
		bob.publish(1)
		carol.publish(1)
		gid := "private"
		alice.create(gid, nil)
		sent := map[uint64]string{}
		before := alice.say(gid, "before bob")
		sent[before] = "before bob"

		_, err := eve.GroupInfo(ctx, []byte(gid))
		wantCode(t, "GetGroupInfo by a non-member", err, connect.CodePermissionDenied)
		_, err = eve.Fetch(ctx, []byte(gid), new(uint64), 0)
		wantCode(t, "Fetch by a non-member", err, connect.CodePermissionDenied)

		alice.invite(gid, bob)
		joined, err := e.st.Membership(ctx, []byte(gid), "bob")
		must(t, err)
		// Bob asks for everything from the start: he gets his join on.
		resp, err := bob.Fetch(ctx, []byte(gid), new(uint64), 0)
		must(t, err)
		if len(resp.Records) == 0 || resp.Records[0].Seq != joined.JoinedSeq+1 {
			t.Fatalf("bob's fetch from 0 starts at %v, want record %d", resp.Records, joined.JoinedSeq+1)
		}
		for _, r := range resp.Records {
			if r.Seq <= before || bytes.Contains(r.Body, []byte("before bob")) {
				t.Fatalf("bob read record %d from before he joined", r.Seq)
			}
		}
		if _, err := bob.GroupInfo(ctx, []byte(gid)); err != nil {
			t.Fatalf("a member's GetGroupInfo: %v", err)
		}
		bob.sync(gid)
		delete(sent, before) // bob cannot have it
		alice.invite(gid, carol)
		carol.sync(gid)
		bob.sync(gid)

		// Carol removes bob: he receives that commit, then nothing more.
		stream, err := bob.Subscribe(ctx)
		must(t, err)
		defer stream.Close()
		res, err := carol.commit(gid, &mls.CommitOptions{Proposals: []*mls.Proposal{mls.RemoveProposal(carol.leafOf(gid, "bob"))}})
		must(t, err)
		after := alice.say(gid, "after bob")
		sent[after] = "after bob"
		resp, err = bob.Fetch(ctx, []byte(gid), nil, 0)
		must(t, err)
		if n := len(resp.Records); n == 0 || resp.Records[n-1].Seq != res.Seq || resp.HeadSeq != res.Seq {
			t.Fatalf("removed bob's fetch: %v (head %d), want it to end at his removal %d", resp.Records, resp.HeadSeq, res.Seq)
		}
		for {
			ev, err := stream.Next()
			must(t, err)
			r := ev.GetRecord()
			if r == nil {
				continue
			}
			if r.Seq > res.Seq {
				t.Fatalf("removed bob's stream carried record %d after his removal at %d", r.Seq, res.Seq)
			}
			if r.Seq == res.Seq {
				break
			}
		}
		// Nothing more comes: alice's message after the removal is not
		// streamed to bob.
		more := make(chan uint64, 1)
		go func() {
			for {
				ev, err := stream.Next()
				if err != nil {
					return
				}
				if r := ev.GetRecord(); r != nil {
					more <- r.Seq
					return
				}
			}
		}()
		select {
		case seq := <-more:
			t.Fatalf("removed bob's stream carried record %d after his removal at %d", seq, res.Seq)
		case <-time.After(500 * time.Millisecond):
		}
		rcv, err := bob.groups[gid].Process(resp.Records[len(resp.Records)-1].Body)
		must(t, err)
		if rcv.Commit == nil || !rcv.Commit.SelfRemoved {
			t.Fatal("bob did not learn he was removed")
		}
		_, err = bob.Send(ctx, appMsg([]byte(gid), res.Seq, "still here?"))
		wantCode(t, "a removed member's send", err, connect.CodePermissionDenied)
		_, err = bob.GroupInfo(ctx, []byte(gid))
		wantCode(t, "a removed member's GetGroupInfo", err, connect.CodePermissionDenied)
		must(t, bob.Ack(ctx, []byte(gid), res.Seq))
		if gs, err := bob.ListGroups(ctx); err != nil || len(gs) != 0 {
			t.Fatalf("bob's groups after acknowledging his removal: %v %v", gs, err)
		}
		honest(t, gid, sent, alice, carol)
	})
}
