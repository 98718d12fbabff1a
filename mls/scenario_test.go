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
