package mls_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/mlskit/mlskit/mls"
)

// Scenario tests through the public API, each run with handshakes sent as
// PrivateMessage and as PublicMessage, each ending with every member at the
// same epoch_authenticator and able to read every other (checkAgree).

const (
	extCustom  = 0xff00 // an application-defined GroupContext extension
	propCustom = 0xff01 // an application-defined proposal type
	extReqCaps = 3      // required_capabilities (RFC 9420, Section 17.3)
)

// capsWith lists what a test client supports, beyond the defaults.
func capsWith(cs mls.CipherSuite, exts, props []uint16) *mls.Capabilities {
	return &mls.Capabilities{Versions: []uint16{1}, CipherSuites: []mls.CipherSuite{cs}, Extensions: exts,
		Proposals: props, Credentials: []mls.CredentialType{mls.CredentialTypeBasic}}
}

// requiredCapabilities encodes the required_capabilities extension
// (RFC 9420, Section 11.1): three vectors of uint16 with varint lengths.
func requiredCapabilities(exts, props, creds []uint16) mls.Extension {
	var b []byte
	for _, list := range [][]uint16{exts, props, creds} {
		b = append(b, byte(2*len(list))) // < 64 entries: a one-byte varint
		for _, v := range list {
			b = append(b, byte(v>>8), byte(v))
		}
	}
	return mls.Extension{Type: extReqCaps, Data: b}
}

// groupOf creates creator's group with opts and adds the others in one
// commit, each with their KeyPackage options.
func groupOf(t *testing.T, creator *client, gopts *mls.GroupOptions, others []*client, kopts []*mls.KeyPackageOptions) []*client {
	t.Helper()
	var err error
	creator.g, err = mls.NewGroup(creator.cfg, []byte("group"), creator.cred, creator.sig, gopts)
	if err != nil {
		t.Fatal(err)
	}
	var adds []*mls.Proposal
	for i, c := range others {
		var o *mls.KeyPackageOptions
		if kopts != nil {
			o = kopts[i]
		}
		adds = append(adds, mls.AddProposal(c.keyPackageWith(t, o)))
	}
	commit(t, creator, &mls.CommitOptions{Proposals: adds}, nil, others...)
	all := append([]*client{creator}, others...)
	checkAgree(t, all)
	return all
}

// TestScenarioThreePartyJoin: three ways for three parties to come
// together: one commit adding two, two commits adding one each (the second
// by the member just added), and an Add proposal by one member committed
// by another.
func TestScenarioThreePartyJoin(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			seeded(t, 1)
			cfg := detConfig("three "+m.name, m.pub)
			all := threeParty(t, fastSuite, cfg)
			if n := len(all[2].g.Members()); n != 3 {
				t.Fatalf("%d members", n)
			}

			alice, bob, carol := newGroupClient(t, "alice", fastSuite, cfg, nil), newClient(t, "bob", fastSuite, cfg), newClient(t, "carol", fastSuite, cfg)
			commit(t, alice, &mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(bob.keyPackage(t))}}, nil, bob)
			commit(t, bob, &mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(carol.keyPackage(t))}}, []*client{alice}, carol)
			checkAgree(t, []*client{alice, bob, carol})
			if carol.g.Epoch() != 2 {
				t.Fatalf("carol at epoch %d", carol.g.Epoch())
			}

			alice, bob, carol = newGroupClient(t, "alice", fastSuite, cfg, nil), newClient(t, "bob", fastSuite, cfg), newClient(t, "carol", fastSuite, cfg)
			commit(t, alice, &mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(bob.keyPackage(t))}}, nil, bob)
			p, err := bob.g.ProposeAdd(carol.keyPackage(t))
			if err != nil {
				t.Fatal(err)
			}
			r, err := alice.g.Process(p)
			if err != nil {
				t.Fatal(err)
			}
			if r.Proposal == nil || r.Proposal.Type != mls.ProposalAdd || r.Proposal.Sender.Leaf != bob.g.LeafIndex() {
				t.Fatalf("alice sees %+v", r.Proposal)
			}
			res := commit(t, alice, nil, []*client{bob}, carol)
			if len(res.Staged.Added) != 1 {
				t.Fatalf("commit added %d", len(res.Staged.Added))
			}
			checkAgree(t, []*client{alice, bob, carol})
		})
	}
}

// TestScenarioWelcomePathSecretAncestors: members added together by one
// commit get the path secret of their lowest common ancestor with the
// committer and must derive every node key above it (RFC 9420, Section
// 12.4.3.1). Leaf 1 needs the key of node 3 (leaves 0-3) to read a commit
// from leaf 5.
func TestScenarioWelcomePathSecretAncestors(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			seeded(t, 2)
			cfg := detConfig("ancestors "+m.name, m.pub)
			creator := newClient(t, "m0", fastSuite, cfg)
			var others []*client
			for i := 1; i < 8; i++ {
				others = append(others, newClient(t, fmt.Sprintf("m%d", i), fastSuite, cfg))
			}
			all := groupOf(t, creator, nil, others, nil)
			for _, from := range []int{5, 2, 7, 1} {
				commit(t, all[from], nil, all)
				checkAgree(t, all)
			}
		})
	}
}

// TestScenarioExternalSenders: a party listed in external_senders (a
// delivery service, RFC 9420, Section 12.1.8.1) proposes an Add and a
// Remove; members commit them. A sender not listed, or listed with another
// key, is refused and leaves the group as it was.
func TestScenarioExternalSenders(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			seeded(t, 3)
			cfg := detConfig("extsender "+m.name, m.pub)
			cfg.ExternalProposals = mls.AllowExternalProposals // RFC 9420, Section 12.1.8
			ds, err := mls.GenerateSignatureKeyPair(fastSuite, cfg.Rand)
			if err != nil {
				t.Fatal(err)
			}
			ext, err := mls.ExternalSenderExtension(mls.ExternalSenderInfo{SignatureKey: ds.PublicKey(), Credential: mls.BasicCredential([]byte("ds"))})
			if err != nil {
				t.Fatal(err)
			}
			alice := newClient(t, "alice", fastSuite, cfg)
			bob, carol := newClient(t, "bob", fastSuite, cfg), newClient(t, "carol", fastSuite, cfg)
			all := groupOf(t, alice, &mls.GroupOptions{Extensions: []mls.Extension{ext}}, []*client{bob, carol}, nil)
			gid := alice.g.GroupID()

			// External Add, committed by bob; dave joins by Welcome.
			dave := newClient(t, "dave", fastSuite, cfg)
			p, err := mls.ExternalProposal(ds, 0, gid, alice.g.Epoch(), mls.AddProposal(dave.keyPackage(t)), []byte("from the DS"))
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range all {
				r, err := c.g.Process(p)
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				if r.Sender.Type != mls.SenderExternal || r.Sender.Leaf != 0 || r.Proposal.Type != mls.ProposalAdd ||
					!bytes.Equal(r.AuthenticatedData, []byte("from the DS")) {
					t.Fatalf("%s: %+v %+v", c.name, r.Sender, r.Proposal)
				}
			}
			res := commit(t, bob, nil, all, dave)
			if len(res.Staged.Added) != 1 {
				t.Fatalf("added %d", len(res.Staged.Added))
			}
			all = append(all, dave)
			checkAgree(t, all)

			// External Remove of carol, committed by dave.
			p, err = mls.ExternalProposal(ds, 0, gid, alice.g.Epoch(), mls.RemoveProposal(carol.g.LeafIndex()), nil)
			if err != nil {
				t.Fatal(err)
			}
			deliver(t, nil, p, all...)
			res, err = dave.g.Commit(nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range all[:3] {
				r := process(t, c, res.Commit)
				if r.Commit.SelfRemoved != (c == carol) {
					t.Fatalf("%s: SelfRemoved=%v", c.name, r.Commit.SelfRemoved)
				}
			}
			if err := dave.g.MergePendingCommit(); err != nil {
				t.Fatal(err)
			}
			all = []*client{alice, bob, dave}
			checkAgree(t, all)

			// Impostors: a key not in the list, an index past its end, and
			// a type external senders may not propose.
			before := fingerprint(t, bob.g)
			other, _ := mls.GenerateSignatureKeyPair(fastSuite, cfg.Rand)
			forged, err := mls.ExternalProposal(other, 0, gid, bob.g.Epoch(), mls.RemoveProposal(alice.g.LeafIndex()), nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = bob.g.Process(forged)
			wantErr(t, "external proposal signed by an unlisted key", err, mls.ErrInvalidSignature)
			unlisted, err := mls.ExternalProposal(ds, 1, gid, bob.g.Epoch(), mls.RemoveProposal(alice.g.LeafIndex()), nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = bob.g.Process(unlisted)
			wantErr(t, "external sender index 1 of 1", err, mls.ErrUnknownSender)
			if _, err := mls.ExternalProposal(ds, 0, gid, bob.g.Epoch(), mls.CustomProposal(propCustom, nil), nil); err == nil {
				t.Fatal("ExternalProposal made a custom proposal")
			}
			stale, err := mls.ExternalProposal(ds, 0, gid, bob.g.Epoch()-1, mls.RemoveProposal(alice.g.LeafIndex()), nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = bob.g.Process(stale)
			wantErr(t, "external proposal for the previous epoch", err, mls.ErrWrongEpoch)
			unchanged(t, "refused external proposals", bob.g, before)
			checkAgree(t, all)
		})
	}
}

// TestScenarioNewMemberProposal: a client asks to join with an Add proposal
// of its own (sender new_member_proposal, RFC 9420, Section 12.1.8); a
// member commits it and the client joins from the Welcome.
func TestScenarioNewMemberProposal(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			seeded(t, 4)
			cfg := detConfig("newmember "+m.name, m.pub)
			cfg.ExternalProposals = mls.AllowExternalProposals // RFC 9420, Section 12.1.8
			all := threeParty(t, fastSuite, cfg)
			dave := newClient(t, "dave", fastSuite, cfg)
			dave.keyPackage(t)
			gid, epoch := all[0].g.GroupID(), all[0].g.Epoch()

			stale, err := mls.NewMemberAddProposal(dave.bundle, gid, epoch+1)
			if err != nil {
				t.Fatal(err)
			}
			before := fingerprint(t, all[1].g)
			_, err = all[1].g.Process(stale)
			wantErr(t, "new-member proposal for a future epoch", err, mls.ErrWrongEpoch)
			other, err := mls.NewMemberAddProposal(dave.bundle, []byte("other group"), epoch)
			if err != nil {
				t.Fatal(err)
			}
			_, err = all[1].g.Process(other)
			wantErr(t, "new-member proposal for another group", err, mls.ErrWrongGroup)
			unchanged(t, "refused new-member proposals", all[1].g, before)

			p, err := mls.NewMemberAddProposal(dave.bundle, gid, epoch)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range all {
				r, err := c.g.Process(p)
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				if r.Sender.Type != mls.SenderNewMemberProposal || r.Proposal.Type != mls.ProposalAdd ||
					!bytes.Equal(r.Proposal.Added.SignatureKey(), dave.sig.PublicKey()) {
					t.Fatalf("%s: %+v", c.name, r.Proposal)
				}
			}
			res := commit(t, all[2], nil, all, dave)
			if len(res.Staged.Added) != 1 {
				t.Fatalf("added %d", len(res.Staged.Added))
			}
			all = append(all, dave)
			checkAgree(t, all)
		})
	}
}

// TestScenarioResumptionPSK injects this group's resumption PSKs of earlier
// epochs (RFC 9420, Section 8.6), by proposal and by value. A member that
// was not in the group at that epoch lacks the PSK: it rejects the commit
// with ErrMissingPSK and stays as it was.
func TestScenarioResumptionPSK(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			seeded(t, 5)
			cfg := detConfig("resumption "+m.name, m.pub)
			all := threeParty(t, fastSuite, cfg)
			alice, bob, carol := all[0], all[1], all[2]
			commit(t, alice, nil, all) // epoch 2

			p, err := bob.g.ProposeResumptionPSK(1)
			if err != nil {
				t.Fatal(err)
			}
			deliver(t, bob, p, all...)
			for _, c := range all {
				if pp := c.g.PendingProposals(); len(pp) != 1 || pp[0].PSK == nil || pp[0].PSK.External || pp[0].PSK.Epoch != 1 {
					t.Fatalf("%s pending %+v", c.name, pp)
				}
			}
			sc := commit(t, carol, nil, all).Staged
			if len(sc.PSKs) != 1 || sc.PSKs[0].Usage != 1 || sc.PSKs[0].Epoch != 1 || !bytes.Equal(sc.PSKs[0].GroupID, alice.g.GroupID()) {
				t.Fatalf("commit PSKs %+v", sc.PSKs)
			}
			checkAgree(t, all)

			// By value, two at once.
			sc = commit(t, alice, &mls.CommitOptions{Proposals: []*mls.Proposal{
				mls.ResumptionPSKProposal(alice.g.GroupID(), 2), mls.ResumptionPSKProposal(alice.g.GroupID(), 3)}}, all).Staged
			if len(sc.PSKs) != 2 {
				t.Fatalf("commit PSKs %+v", sc.PSKs)
			}
			checkAgree(t, all)

			// Epoch 0 happened before bob and carol joined.
			res, err := alice.g.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.ResumptionPSKProposal(alice.g.GroupID(), 0)}})
			if err != nil {
				t.Fatal(err)
			}
			before := fingerprint(t, bob.g)
			_, err = bob.g.Process(res.Commit)
			wantErr(t, "commit with a resumption PSK from before bob joined", err, mls.ErrMissingPSK)
			unchangedAfter(t, "commit with a missing PSK", bob.g, before, !m.pub)
			alice.g.DiscardPendingCommit()
			// A resumption PSK of another group is never available.
			_, err = alice.g.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.ResumptionPSKProposal([]byte("other"), 1)}})
			if err == nil {
				alice.g.DiscardPendingCommit()
				t.Fatal("commit with another group's resumption PSK")
			}
			wantErr(t, "another group's resumption PSK", err, mls.ErrMissingPSK)
			commit(t, bob, nil, all)
			checkAgree(t, all)
		})
	}
}

// TestScenarioExternalPSK injects an external PSK (RFC 9420, Section 8.4)
// from each member's Config.PSKs. A member that lacks it fails the commit
// with ErrMissingPSK and is unchanged; once given the PSK it processes the
// same commit. A member holding a different value for the id derives
// another epoch and rejects the confirmation tag.
func TestScenarioExternalPSK(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			seeded(t, 6)
			psk := []byte("0123456789abcdef0123456789abcdef")
			stores := map[string]*mls.PSKMap{}
			mk := func(name string) *client {
				cfg := detConfig("extpsk "+m.name+name, m.pub)
				stores[name] = &mls.PSKMap{}
				cfg.PSKs = stores[name]
				if name != "carol" {
					stores[name].Put([]byte("psk-1"), psk)
				}
				return newClient(t, name, fastSuite, cfg)
			}
			alice, bob, carol := mk("alice"), mk("bob"), mk("carol")
			all := groupOf(t, alice, nil, []*client{bob, carol}, nil)

			p, err := alice.g.ProposeExternalPSK([]byte("psk-1"))
			if err != nil {
				t.Fatal(err)
			}
			deliver(t, alice, p, all...)
			res, err := bob.g.Commit(nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Staged.PSKs) != 1 || !res.Staged.PSKs[0].External || string(res.Staged.PSKs[0].ID) != "psk-1" {
				t.Fatalf("commit PSKs %+v", res.Staged.PSKs)
			}
			before := fingerprint(t, carol.g)
			_, err = carol.g.Process(res.Commit)
			wantErr(t, "commit with an external PSK carol lacks", err, mls.ErrMissingPSK)
			unchangedAfter(t, "commit with a missing PSK", carol.g, before, !m.pub)
			stores["carol"].Put([]byte("psk-1"), psk)
			if !m.pub {
				// The commit decrypted, so its key is gone (RFC 9420,
				// Section 9.2): carol cannot process it again. bob
				// commits anew, which works now that carol has the PSK.
				_, err = carol.g.Process(res.Commit)
				wantErr(t, "the same PrivateMessage commit again", err, mls.ErrKeyUnavailable)
				bob.g.DiscardPendingCommit()
				if res, err = bob.g.Commit(nil); err != nil {
					t.Fatal(err)
				}
			}
			deliver(t, bob, res.Commit, alice, carol)
			if err := bob.g.MergePendingCommit(); err != nil {
				t.Fatal(err)
			}
			checkAgree(t, all)

			// By value, and with a different value at carol.
			stores["carol"].Put([]byte("psk-2"), []byte("carol's idea of psk-2"))
			for _, c := range []*client{alice, bob} {
				stores[c.name].Put([]byte("psk-2"), []byte("the real psk-2"))
			}
			res, err = alice.g.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.ExternalPSKProposal([]byte("psk-2"))}})
			if err != nil {
				t.Fatal(err)
			}
			before = fingerprint(t, carol.g)
			_, err = carol.g.Process(res.Commit)
			wantErr(t, "commit with a PSK whose value differs", err, mls.ErrInvalidConfirmationTag)
			unchangedAfter(t, "commit with a wrong PSK value", carol.g, before, !m.pub)
			stores["carol"].Put([]byte("psk-2"), []byte("the real psk-2"))
			if !m.pub {
				alice.g.DiscardPendingCommit()
				if res, err = alice.g.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.ExternalPSKProposal([]byte("psk-2"))}}); err != nil {
					t.Fatal(err)
				}
			}
			deliver(t, alice, res.Commit, bob, carol)
			if err := alice.g.MergePendingCommit(); err != nil {
				t.Fatal(err)
			}
			checkAgree(t, all)

			// A committer without the PSK cannot commit it.
			p, err = alice.g.ProposeExternalPSK([]byte("psk-3"))
			if err != nil {
				t.Fatal(err)
			}
			deliver(t, alice, p, all...)
			// A committer without the PSK leaves it out of its commit and
			// says why (RFC 9420, Section 12.4).
			before = fingerprint(t, bob.g)
			res, err = bob.g.Commit(nil)
			if err != nil || len(res.Dropped) != 1 {
				t.Fatalf("committing a PSK the committer lacks: %v, %d dropped", err, len(res.Dropped))
			}
			wantErr(t, "PSK the committer lacks", res.Dropped[0].Reason, mls.ErrMissingPSK)
			bob.g.DiscardPendingCommit()
			unchangedAfter(t, "discarded commit", bob.g, before, !m.pub) // a sent commit uses up its key
			for _, st := range stores {
				st.Put([]byte("psk-3"), psk)
			}
			commit(t, bob, nil, all)
			checkAgree(t, all)
		})
	}
}

// TestScenarioGroupContextExtensions changes the GroupContext extensions
// (RFC 9420, Section 12.1.7): required_capabilities every member meets,
// then a custom extension that one member does not support (refused), and
// the same together with that member's removal (accepted). A later joiner
// that does not support the extension is refused.
func TestScenarioGroupContextExtensions(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			seeded(t, 7)
			cfg := detConfig("gce "+m.name, m.pub)
			yes := capsWith(fastSuite, []uint16{extCustom}, []uint16{propCustom})
			no := capsWith(fastSuite, nil, nil)
			alice, bob, carol := newClient(t, "alice", fastSuite, cfg), newClient(t, "bob", fastSuite, cfg), newClient(t, "carol", fastSuite, cfg)
			all := groupOf(t, alice, &mls.GroupOptions{Capabilities: yes}, []*client{bob, carol},
				[]*mls.KeyPackageOptions{{Capabilities: yes}, {Capabilities: no}})

			rc := requiredCapabilities(nil, nil, []uint16{uint16(mls.CredentialTypeBasic)})
			p, err := bob.g.ProposeGroupContextExtensions([]mls.Extension{rc})
			if err != nil {
				t.Fatal(err)
			}
			deliver(t, bob, p, all...)
			commit(t, carol, nil, all)
			for _, c := range all {
				if e := c.g.Extensions(); len(e) != 1 || e[0].Type != extReqCaps || !bytes.Equal(e[0].Data, rc.Data) {
					t.Fatalf("%s: extensions %v", c.name, e)
				}
			}
			checkAgree(t, all)

			// carol does not support extCustom, nor propCustom.
			custom := mls.Extension{Type: extCustom, Data: []byte("config v1")}
			for _, exts := range [][]mls.Extension{
				{rc, custom},
				{requiredCapabilities([]uint16{extCustom}, nil, nil)},
				{requiredCapabilities(nil, []uint16{propCustom}, nil)},
			} {
				before := fingerprint(t, alice.g)
				_, err := alice.g.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.GroupContextExtensionsProposal(exts)}})
				wantErr(t, "extension a member does not support", err, mls.ErrInvalidProposal)
				unchanged(t, "refused GroupContextExtensions", alice.g, before)
			}

			// Removing carol in the same commit makes it valid.
			sc := commit(t, alice, &mls.CommitOptions{Proposals: []*mls.Proposal{
				mls.RemoveProposal(carol.g.LeafIndex()),
				mls.GroupContextExtensionsProposal([]mls.Extension{custom, requiredCapabilities([]uint16{extCustom}, nil, nil)})}},
				[]*client{bob, carol}).Staged
			if len(sc.Removed) != 1 {
				t.Fatalf("removed %v", sc.Removed)
			}
			all = []*client{alice, bob}
			for _, c := range all {
				if e := c.g.Extensions(); len(e) != 2 || e[0].Type != extCustom || string(e[0].Data) != "config v1" {
					t.Fatalf("%s: extensions %v", c.name, e)
				}
			}
			checkAgree(t, all)

			// A joiner without extCustom is refused, one with it joins.
			erin, dave := newClient(t, "erin", fastSuite, cfg), newClient(t, "dave", fastSuite, cfg)
			before := fingerprint(t, bob.g)
			_, err = bob.g.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(erin.keyPackageWith(t, &mls.KeyPackageOptions{Capabilities: no}))}})
			wantErr(t, "adding a member that lacks a required extension", err, mls.ErrInvalidKeyPackage)
			unchanged(t, "refused Add", bob.g, before)
			commit(t, bob, &mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(dave.keyPackageWith(t, &mls.KeyPackageOptions{Capabilities: yes}))}}, all, dave)
			all = append(all, dave)
			if e := dave.g.Extensions(); len(e) != 2 || e[0].Type != extCustom {
				t.Fatalf("dave: extensions %v", e)
			}
			checkAgree(t, all)
		})
	}
}

// TestScenarioCustomProposal sends an application-defined proposal type
// (RFC 9420, Section 13.2) that every member lists in its capabilities, by
// reference and by value. While a member that does not list it is in the
// group, a commit carrying it is refused.
func TestScenarioCustomProposal(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			seeded(t, 8)
			cfg := detConfig("custom "+m.name, m.pub)
			yes := capsWith(fastSuite, nil, []uint16{propCustom})
			no := capsWith(fastSuite, nil, nil)
			alice, bob, carol := newClient(t, "alice", fastSuite, cfg), newClient(t, "bob", fastSuite, cfg), newClient(t, "carol", fastSuite, cfg)
			all := groupOf(t, alice, &mls.GroupOptions{Capabilities: yes}, []*client{bob, carol},
				[]*mls.KeyPackageOptions{{Capabilities: yes}, {Capabilities: no}})

			before := fingerprint(t, bob.g)
			_, err := bob.g.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.CustomProposal(propCustom, []byte("x"))}})
			wantErr(t, "custom proposal carol does not support", err, mls.ErrInvalidCommit)
			unchanged(t, "refused commit", bob.g, before)
			if _, err := bob.g.ProposeCustom(mls.ProposalRemove, nil); err == nil {
				t.Fatal("ProposeCustom accepted a default proposal type")
			}

			commit(t, alice, &mls.CommitOptions{Proposals: []*mls.Proposal{mls.RemoveProposal(carol.g.LeafIndex())}}, all)
			all = all[:2]
			p, err := bob.g.ProposeCustom(propCustom, []byte("vote: yes"))
			if err != nil {
				t.Fatal(err)
			}
			r, err := alice.g.Process(p)
			if err != nil {
				t.Fatal(err)
			}
			if r.Proposal.Type != propCustom {
				t.Fatalf("alice sees proposal type %d", r.Proposal.Type)
			}
			sc := commit(t, alice, nil, all).Staged
			if sc.Epoch != 3 {
				t.Fatalf("epoch %d", sc.Epoch)
			}
			checkAgree(t, all)
			commit(t, bob, &mls.CommitOptions{Proposals: []*mls.Proposal{mls.CustomProposal(propCustom, []byte("by value"))}}, all)
			checkAgree(t, all)
		})
	}
}

// TestSeededRunsRepeat: with crypto/rand replaced (SetGlobalRandom), a
// seeded Config.Rand and a fixed clock, the same scenario gives the same
// epoch authenticator, so a failure seen once can be replayed (in another
// process, with MLS_TEST_NOW set to the clock this test logs).
func TestSeededRunsRepeat(t *testing.T) {
	run := func() []byte {
		seeded(t, 99)
		cfg := detConfig("repeat", false)
		all := threeParty(t, fastSuite, cfg)
		p, err := all[1].g.ProposeUpdate(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		deliver(t, all[1], p, all...)
		commit(t, all[2], nil, all)
		return all[0].g.EpochAuthenticator()
	}
	a, b := run(), run()
	t.Logf("test clock MLS_TEST_NOW=%d", fixedNow().Unix())
	if !bytes.Equal(a, b) {
		t.Fatalf("two seeded runs differ: %x, %x", a, b)
	}
}

// TestScenarioUnsupportedProposalsLeftOut: proposals that a member staying
// in the group does not support (a GroupContextExtensions with an extension
// it lacks, a custom proposal type it does not list) are invalid (RFC 9420,
// Sections 12.1.7 and 12.2). Members cache them on receipt, since whether
// they are valid depends on the commit; a committer must leave them out
// rather than fail, or nobody could commit (nor, with them pending, send)
// until someone thought of OnlyInline. With a Remove of that member in the
// same commit they become valid and are included.
func TestScenarioUnsupportedProposalsLeftOut(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			seeded(t, 9)
			cfg := detConfig("unsupported "+m.name, m.pub)
			yes := capsWith(fastSuite, []uint16{extCustom}, []uint16{propCustom})
			no := capsWith(fastSuite, nil, nil)
			alice, bob, carol := newClient(t, "alice", fastSuite, cfg), newClient(t, "bob", fastSuite, cfg), newClient(t, "carol", fastSuite, cfg)
			all := groupOf(t, alice, &mls.GroupOptions{Capabilities: yes}, []*client{bob, carol},
				[]*mls.KeyPackageOptions{{Capabilities: yes}, {Capabilities: no}})
			custom := mls.Extension{Type: extCustom, Data: []byte("v1")}
			propose := func() {
				t.Helper()
				p1, err := bob.g.ProposeGroupContextExtensions([]mls.Extension{custom})
				if err != nil {
					t.Fatal(err)
				}
				p2, err := bob.g.ProposeCustom(propCustom, []byte("poll"))
				if err != nil {
					t.Fatal(err)
				}
				deliver(t, bob, p1, all...)
				deliver(t, bob, p2, all...)
			}
			propose()
			if _, err := alice.g.Encrypt([]byte("x"), nil); err == nil {
				t.Fatal("alice sends with proposals pending")
			}
			commit(t, alice, nil, all)
			for _, c := range all {
				if e := c.g.Extensions(); len(e) != 0 {
					t.Fatalf("%s: extensions %v after a commit that should have left the GCE out", c.name, e)
				}
			}
			checkAgree(t, all)

			// With carol's removal proposed too, both are valid.
			propose()
			rm, err := alice.g.ProposeRemove(carol.g.LeafIndex())
			if err != nil {
				t.Fatal(err)
			}
			deliver(t, alice, rm, all...)
			res, err := bob.g.Commit(nil)
			if err != nil {
				t.Fatal(err)
			}
			deliver(t, bob, res.Commit, alice, carol)
			if err := bob.g.MergePendingCommit(); err != nil {
				t.Fatal(err)
			}
			all = all[:2]
			for _, c := range all {
				if e := c.g.Extensions(); len(e) != 1 || e[0].Type != extCustom {
					t.Fatalf("%s: extensions %v", c.name, e)
				}
			}
			checkAgree(t, all)
		})
	}
}
