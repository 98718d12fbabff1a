package mls_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/mlskit/mlskit/mls"
)

// client is one participant in a scenario.
type client struct {
	name   string
	cfg    *mls.Config
	sig    *mls.SignatureKeyPair
	cred   mls.Credential
	bundle *mls.KeyPackageBundle
	g      *mls.Group
}

func newClient(t testing.TB, name string, cs mls.CipherSuite, cfg *mls.Config) *client {
	t.Helper()
	sig, err := mls.GenerateSignatureKeyPair(cs, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &client{name: name, cfg: cfg, sig: sig, cred: mls.BasicCredential([]byte(name))}
	return c
}

func (c *client) keyPackage(t testing.TB) *mls.KeyPackage {
	t.Helper()
	b, err := mls.NewKeyPackage(c.cfg, c.cred, c.sig, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.bundle = b
	// Round-trip through the wire form, as a delivery service would.
	kp, err := mls.ParseKeyPackage(b.KeyPackage.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// deliver hands msg to every group but the sender's and merges commits.
func deliver(t testing.TB, from *client, msg []byte, to ...*client) {
	t.Helper()
	for _, c := range to {
		if c == from || c.g == nil {
			continue
		}
		r, err := c.g.Process(msg)
		if err != nil {
			t.Fatalf("%s processing message from %s: %v", c.name, from.name, err)
		}
		if r.Commit != nil {
			if err := c.g.MergeStagedCommit(r.Commit); err != nil {
				t.Fatalf("%s merging: %v", c.name, err)
			}
		}
	}
}

// commit has from commit, everyone else process it, and joiners join.
func commit(t testing.TB, from *client, opts *mls.CommitOptions, members []*client, joiners ...*client) *mls.CommitResult {
	t.Helper()
	res, err := from.g.Commit(opts)
	if err != nil {
		t.Fatalf("%s commit: %v", from.name, err)
	}
	deliver(t, from, res.Commit, members...)
	if err := from.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	for _, j := range joiners {
		if res.Welcome == nil {
			t.Fatal("no Welcome")
		}
		g, err := mls.JoinFromWelcome(j.cfg, res.Welcome, j.bundle, nil)
		if err != nil {
			t.Fatalf("%s join: %v", j.name, err)
		}
		j.g = g
	}
	return res
}

// checkAgree asserts that every member has the same epoch authenticator
// and that every member can read a message from every other.
func checkAgree(t testing.TB, members []*client) {
	t.Helper()
	var ref []byte
	for _, c := range members {
		if c.g == nil {
			continue
		}
		a := c.g.EpochAuthenticator()
		if ref == nil {
			ref = a
		} else if !bytes.Equal(a, ref) {
			t.Fatalf("%s has epoch authenticator %x, others %x (epoch %d)", c.name, a, ref, c.g.Epoch())
		}
	}
	for _, s := range members {
		if s.g == nil {
			continue
		}
		text := []byte("hello from " + s.name)
		ct, err := s.g.Encrypt(text, []byte("aad"))
		if err != nil {
			t.Fatalf("%s encrypt: %v", s.name, err)
		}
		for _, r := range members {
			if r == s || r.g == nil {
				continue
			}
			got, err := r.g.Process(ct)
			if err != nil {
				t.Fatalf("%s decrypting from %s: %v", r.name, s.name, err)
			}
			if !bytes.Equal(got.Application, text) || !bytes.Equal(got.AuthenticatedData, []byte("aad")) {
				t.Fatalf("%s got %q", r.name, got.Application)
			}
		}
	}
}

func modes() []struct {
	name string
	pub  bool
} {
	return []struct {
		name string
		pub  bool
	}{{"private", false}, {"public", true}}
}

func TestScenarioJoinsUpdatesRemoves(t *testing.T) {
	for _, cs := range mls.SupportedCipherSuites() {
		for _, m := range modes() {
			// P-521's field arithmetic is pure Go, which the race detector
			// slows tenfold: under -race run it in one handshake mode.
			if raceEnabled && cs == mls.P521_AES256GCM_SHA512_P521 && m.pub {
				continue
			}
			t.Run(fmt.Sprintf("%d/%s", cs, m.name), func(t *testing.T) {
				cfg := &mls.Config{PublicHandshakes: m.pub}
				alice := newClient(t, "alice", cs, cfg)
				var err error
				alice.g, err = mls.NewGroup(cfg, []byte("group"), alice.cred, alice.sig, nil)
				if err != nil {
					t.Fatal(err)
				}
				bob := newClient(t, "bob", cs, cfg)
				// 1:1 join
				commit(t, alice, &mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(bob.keyPackage(t))}}, nil, bob)
				all := []*client{alice, bob}
				checkAgree(t, all)
				// several joins in one commit
				carol, dave := newClient(t, "carol", cs, cfg), newClient(t, "dave", cs, cfg)
				commit(t, bob, &mls.CommitOptions{Proposals: []*mls.Proposal{
					mls.AddProposal(carol.keyPackage(t)), mls.AddProposal(dave.keyPackage(t))}}, all, carol, dave)
				all = append(all, carol, dave)
				checkAgree(t, all)
				// update proposal by reference, committed by someone else
				up, err := carol.g.ProposeUpdate(nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				deliver(t, carol, up, all...)
				commit(t, dave, nil, all)
				checkAgree(t, all)
				// empty commit (path only)
				commit(t, alice, nil, all)
				checkAgree(t, all)
				// remove by proposal from one, commit by another
				rm, err := alice.g.ProposeRemove(bob.g.LeafIndex())
				if err != nil {
					t.Fatal(err)
				}
				deliver(t, alice, rm, all...)
				res, err := carol.g.Commit(nil)
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range []*client{alice, dave} {
					deliver(t, carol, res.Commit, c)
				}
				r, err := bob.g.Process(res.Commit)
				if err != nil {
					t.Fatal(err)
				}
				if !r.Commit.SelfRemoved {
					t.Fatal("bob not told he was removed")
				}
				if err := bob.g.MergeStagedCommit(r.Commit); err != nil {
					t.Fatal(err)
				}
				if err := carol.g.MergePendingCommit(); err != nil {
					t.Fatal(err)
				}
				if _, err := bob.g.Encrypt([]byte("x"), nil); !errors.Is(err, mls.ErrRemoved) {
					t.Fatalf("removed member encrypts: %v", err)
				}
				all = []*client{alice, carol, dave}
				checkAgree(t, all)
				// a message in the new epoch is not readable by bob
				ct, _ := alice.g.Encrypt([]byte("secret"), nil)
				if _, err := bob.g.Process(ct); err == nil {
					t.Fatal("removed member decrypted a message")
				}
			})
		}
	}
}

func TestScenarioExternalJoin(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			cs := mls.X25519_AES128GCM_SHA256_Ed25519
			cfg := &mls.Config{PublicHandshakes: m.pub}
			alice := newClient(t, "alice", cs, cfg)
			var err error
			alice.g, err = mls.NewGroup(cfg, []byte("group"), alice.cred, alice.sig, nil)
			if err != nil {
				t.Fatal(err)
			}
			bob := newClient(t, "bob", cs, cfg)
			commit(t, alice, &mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(bob.keyPackage(t))}}, nil, bob)
			all := []*client{alice, bob}
			gi, err := alice.g.GroupInfo(true, true)
			if err != nil {
				t.Fatal(err)
			}
			carol := newClient(t, "carol", cs, cfg)
			res, err := mls.ExternalJoin(cfg, gi, carol.cred, carol.sig, nil)
			if err != nil {
				t.Fatal(err)
			}
			carol.g = res.Group
			deliver(t, carol, res.Commit, all...)
			all = append(all, carol)
			checkAgree(t, all)
			// resync: bob rejoins and removes his old leaf
			gi, _ = carol.g.GroupInfo(true, true)
			old := bob.g.LeafIndex()
			bob2 := newClient(t, "bob", cs, cfg)
			bob2.sig = bob.sig
			res, err = mls.ExternalJoin(cfg, gi, bob.cred, bob.sig, &mls.ExternalJoinOptions{RemoveLeaf: &old})
			if err != nil {
				t.Fatal(err)
			}
			bob2.g = res.Group
			deliver(t, bob2, res.Commit, alice, carol)
			all = []*client{alice, carol, bob2}
			checkAgree(t, all)
		})
	}
}

// threeParty builds alice, bob and carol in one group.
func threeParty(t *testing.T, cs mls.CipherSuite, cfg *mls.Config) []*client {
	t.Helper()
	alice, bob, carol := newClient(t, "alice", cs, cfg), newClient(t, "bob", cs, cfg), newClient(t, "carol", cs, cfg)
	var err error
	alice.g, err = mls.NewGroup(cfg, []byte("group"), alice.cred, alice.sig, nil)
	if err != nil {
		t.Fatal(err)
	}
	commit(t, alice, &mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(bob.keyPackage(t)),
		mls.AddProposal(carol.keyPackage(t))}}, nil, bob, carol)
	all := []*client{alice, bob, carol}
	checkAgree(t, all)
	return all
}

func TestScenarioReInit(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			cfg := &mls.Config{PublicHandshakes: m.pub}
			all := threeParty(t, mls.X25519_AES128GCM_SHA256_Ed25519, cfg)
			alice, bob, carol := all[0], all[1], all[2]
			newCS := mls.P256_AES128GCM_SHA256_P256
			p, err := bob.g.ProposeReInit([]byte("group-2"), newCS, nil)
			if err != nil {
				t.Fatal(err)
			}
			deliver(t, bob, p, all...)
			commit(t, alice, nil, all)
			for _, c := range all {
				if c.g.Active() {
					t.Fatalf("%s: group still active after ReInit", c.name)
				}
				if _, err := c.g.Encrypt([]byte("x"), nil); !errors.Is(err, mls.ErrGroupInactive) {
					t.Fatalf("%s: sending after ReInit: %v", c.name, err)
				}
			}
			// Everyone makes a KeyPackage for the new suite.
			var kps []*mls.KeyPackage
			next := map[*client]*client{}
			for _, c := range []*client{bob, carol} {
				n := newClient(t, c.name, newCS, cfg)
				kps = append(kps, n.keyPackage(t))
				next[c] = n
			}
			aliceSig, _ := mls.GenerateSignatureKeyPair(newCS, nil)
			ng, res, err := alice.g.ReInitGroup(kps, &mls.ResumeOptions{Signer: aliceSig})
			if err != nil {
				t.Fatal(err)
			}
			if err := ng.MergePendingCommit(); err != nil {
				t.Fatal(err)
			}
			na := &client{name: "alice", cfg: cfg, g: ng}
			group := []*client{na}
			for _, c := range []*client{bob, carol} {
				n := next[c]
				n.g, err = mls.JoinFromWelcome(cfg, res.Welcome, n.bundle, &mls.JoinOptions{Previous: c.g})
				if err != nil {
					t.Fatalf("%s joining the reinitialised group: %v", c.name, err)
				}
				group = append(group, n)
			}
			if ng.Epoch() != 1 || ng.CipherSuite() != newCS || !bytes.Equal(ng.GroupID(), []byte("group-2")) {
				t.Fatalf("new group: epoch %d suite %d id %q", ng.Epoch(), ng.CipherSuite(), ng.GroupID())
			}
			checkAgree(t, group)
		})
	}
}

func TestScenarioBranch(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			cs := mls.X25519_AES128GCM_SHA256_Ed25519
			cfg := &mls.Config{PublicHandshakes: m.pub}
			all := threeParty(t, cs, cfg)
			alice, bob := all[0], all[1]
			nb := newClient(t, "bob", cs, cfg)
			nb.sig = bob.sig
			kp := nb.keyPackage(t)
			ng, res, err := alice.g.Branch([]byte("sub"), []*mls.KeyPackage{kp}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := ng.MergePendingCommit(); err != nil {
				t.Fatal(err)
			}
			nb.g, err = mls.JoinFromWelcome(cfg, res.Welcome, nb.bundle, &mls.JoinOptions{Previous: bob.g})
			if err != nil {
				t.Fatal(err)
			}
			checkAgree(t, []*client{{name: "alice", g: ng}, nb})
			// The original group goes on.
			checkAgree(t, all)
			// A joiner without the old group cannot derive the PSK.
			other := newClient(t, "carol", cs, cfg)
			kp2 := other.keyPackage(t)
			_, res2, err := alice.g.Branch([]byte("sub2"), []*mls.KeyPackage{kp2}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := mls.JoinFromWelcome(cfg, res2.Welcome, other.bundle, nil); !errors.Is(err, mls.ErrMissingPSK) {
				t.Fatalf("join without the resumption PSK: %v", err)
			}
		})
	}
}

// TestPublicGroupFollows has a secret-free observer follow a group whose
// handshakes are public, ending at the members' tree hash and epoch.
func TestPublicGroupFollows(t *testing.T) {
	cs := mls.X25519_AES128GCM_SHA256_Ed25519
	cfg := &mls.Config{PublicHandshakes: true}
	all := threeParty(t, cs, cfg)
	alice, bob, carol := all[0], all[1], all[2]
	gi, err := alice.g.GroupInfo(true, false)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := mls.NewPublicGroup(cfg, gi, nil)
	if err != nil {
		t.Fatal(err)
	}
	observe := func(msg []byte) {
		t.Helper()
		r, err := pg.Process(msg)
		if err != nil {
			t.Fatalf("observer: %v", err)
		}
		if r.Commit != nil {
			if err := pg.Merge(r.Commit); err != nil {
				t.Fatal(err)
			}
		}
	}
	up, _ := bob.g.ProposeUpdate(nil, nil)
	deliver(t, bob, up, all...)
	observe(up)
	dave := newClient(t, "dave", cs, cfg)
	res, err := carol.g.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(dave.keyPackage(t))}})
	if err != nil {
		t.Fatal(err)
	}
	observe(res.Commit)
	deliver(t, carol, res.Commit, alice, bob)
	carol.g.MergePendingCommit()
	if pg.Epoch() != alice.g.Epoch() || !bytes.Equal(pg.TreeHash(), alice.g.TreeHash()) {
		t.Fatalf("observer at epoch %d, members at %d", pg.Epoch(), alice.g.Epoch())
	}
	if len(pg.Members()) != 4 {
		t.Fatalf("observer sees %d members", len(pg.Members()))
	}
	// A forged commit (signature broken) is rejected by the observer.
	res2, _ := alice.g.Commit(nil)
	bad := bytes.Clone(res2.Commit)
	// Flip a bit of the signature (the last 66 bytes are the two tags,
	// which an observer cannot check).
	bad[len(bad)-80] ^= 1
	if _, err := pg.Process(bad); err == nil {
		t.Fatal("observer accepted a corrupted commit")
	}
}

// TestJoinSurvivesBundleErase: erasing the KeyPackage bundle after a join
// (as an application should, RFC 9420 Section 16.8) must not erase the
// group's copy of the leaf private key.
func TestJoinSurvivesBundleErase(t *testing.T) {
	cs := mls.X25519_AES128GCM_SHA256_Ed25519
	cfg := &mls.Config{}
	alice, bob, carol := newClient(t, "alice", cs, cfg), newClient(t, "bob", cs, cfg), newClient(t, "carol", cs, cfg)
	var err error
	alice.g, err = mls.NewGroup(cfg, []byte("g"), alice.cred, alice.sig, nil)
	if err != nil {
		t.Fatal(err)
	}
	commit(t, alice, &mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(bob.keyPackage(t)),
		mls.AddProposal(carol.keyPackage(t))}}, nil, bob, carol)
	bob.bundle.Erase()
	carol.bundle.Erase()
	// A commit from carol must be decryptable by bob: it needs bob's keys.
	commit(t, carol, nil, []*client{alice, bob, carol})
	checkAgree(t, []*client{alice, bob, carol})
}
