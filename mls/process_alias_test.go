package mls_test

import (
	"bytes"
	"testing"

	"github.com/mlskit/mlskit/mls"
)

// scribbling delivers msg to each of to, then overwrites msg, as a caller
// reusing its receive buffer does.
func scribbling(t *testing.T, from *client, msg []byte, to ...*client) {
	t.Helper()
	deliver(t, from, msg, to...)
	for i := range msg {
		msg[i] = 0xA5
	}
}

// TestProcessKeepsNoAliasOfInput: Process keeps nothing that aliases the
// caller's bytes (the decoder's copy is the only one since Process stopped
// copying first). Each message below is overwritten right after it is
// processed, and what the receivers kept from it must still be whole: a
// cached Update proposal committed by reference later, a joiner's leaf
// from an Add, a commit's UpdatePath keys, an application message. All
// members then agree and can exchange messages.
func TestProcessKeepsNoAliasOfInput(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			seeded(t, 91)
			cfg := detConfig("alias "+m.name, m.pub)
			all := threeParty(t, fastSuite, cfg)
			alice, bob, carol := all[0], all[1], all[2]

			sig, err := mls.GenerateSignatureKeyPair(fastSuite, nil)
			if err != nil {
				t.Fatal(err)
			}
			p, err := bob.g.ProposeUpdate(nil, sig)
			if err != nil {
				t.Fatal(err)
			}
			scribbling(t, bob, p, all...)

			dave := newClient(t, "dave", fastSuite, cfg)
			p, err = carol.g.ProposeAdd(dave.keyPackage(t))
			if err != nil {
				t.Fatal(err)
			}
			scribbling(t, carol, p, all...)

			res, err := alice.g.Commit(nil) // by reference: bob's Update, carol's Add
			if err != nil {
				t.Fatal(err)
			}
			if err := alice.g.MergePendingCommit(); err != nil {
				t.Fatal(err)
			}
			if len(res.Staged.Updated) != 1 || len(res.Staged.Added) != 1 {
				t.Fatalf("commit updated %d, added %d; want 1 and 1", len(res.Staged.Updated), len(res.Staged.Added))
			}
			scribbling(t, alice, res.Commit, bob, carol)
			if dave.g, err = mls.JoinFromWelcome(cfg, res.Welcome, dave.bundle, nil); err != nil {
				t.Fatal(err)
			}
			all = append(all, dave)
			checkAgree(t, all)

			res, err = carol.g.Commit(nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := carol.g.MergePendingCommit(); err != nil {
				t.Fatal(err)
			}
			scribbling(t, carol, res.Commit, all...)
			checkAgree(t, all)

			for _, from := range all {
				msg, err := from.g.Encrypt([]byte("hello from "+from.name), nil)
				if err != nil {
					t.Fatal(err)
				}
				want := append([]byte(nil), msg...)
				for _, to := range all {
					if to == from {
						continue
					}
					r, err := to.g.Process(msg)
					if err != nil || !bytes.Equal(r.Application, []byte("hello from "+from.name)) {
						t.Fatalf("%s from %s: %v", to.name, from.name, err)
					}
					copy(msg, bytes.Repeat([]byte{0x5A}, len(msg)))
					if !bytes.Equal(r.Application, []byte("hello from "+from.name)) {
						t.Fatalf("%s: the plaintext aliases the input", to.name)
					}
					copy(msg, want)
				}
			}
		})
	}
}

// TestProcessDoesNotWriteInput: Process never writes to the caller's bytes,
// though a PrivateMessage's content is decrypted in place (in the decoder's
// copy): a commit and an application message, each processed by two
// members, and a copy of each with its AEAD tag flipped, which fails to
// decrypt (a failed in-place decryption zeroes what it decrypted into).
func TestProcessDoesNotWriteInput(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			seeded(t, 92)
			cfg := detConfig("nowrite "+m.name, m.pub)
			all := threeParty(t, fastSuite, cfg)
			alice, bob, carol := all[0], all[1], all[2]
			check := func(what string, msg []byte, to ...*client) {
				t.Helper()
				bad := bytes.Clone(msg)
				bad[len(bad)-1] ^= 1
				badBefore := bytes.Clone(bad)
				for _, c := range to {
					if _, err := c.g.Process(bad); err == nil {
						t.Fatalf("%s: %s accepted a flipped tag", what, c.name)
					}
					if !bytes.Equal(bad, badBefore) {
						t.Fatalf("%s: a failed Process wrote to its input", what)
					}
				}
				before := bytes.Clone(msg)
				deliver(t, alice, msg, to...)
				if !bytes.Equal(msg, before) {
					t.Fatalf("%s: Process wrote to its input", what)
				}
			}
			res, err := alice.g.Commit(nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := alice.g.MergePendingCommit(); err != nil {
				t.Fatal(err)
			}
			check("commit", res.Commit, bob, carol)
			msg, err := alice.g.Encrypt([]byte("hello"), nil)
			if err != nil {
				t.Fatal(err)
			}
			check("application message", msg, bob, carol)
			checkAgree(t, all)
		})
	}
}

// TestJoinKeepsNoAliasOfInput: a joined group keeps none of the caller's
// bytes. A joiner's tree is decoded where it lies in the GroupInfo's own
// buffer (the decrypted Welcome's, or ExternalJoin's copy of the
// GroupInfo), so a tree given out of band, which is the caller's, must be
// copied. Each join below is followed by overwriting everything the caller
// passed in: the Welcome or GroupInfo and the out-of-band tree. The joined
// member must then agree with the group (which exchanges messages) and
// commit.
func TestJoinKeepsNoAliasOfInput(t *testing.T) {
	scribble := func(bs ...[]byte) {
		for _, b := range bs {
			for i := range b {
				b[i] = 0xA5
			}
		}
	}
	for _, outOfBand := range []bool{false, true} {
		name := "tree in the GroupInfo"
		if outOfBand {
			name = "tree out of band"
		}
		t.Run(name, func(t *testing.T) {
			seeded(t, 93)
			cfg := detConfig("join alias", true)
			all := threeParty(t, fastSuite, cfg)
			alice := all[0]

			// A Welcome.
			dave := newClient(t, "dave", fastSuite, cfg)
			res, err := alice.g.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(dave.keyPackage(t))},
				RatchetTreeOutOfBand: outOfBand})
			if err != nil {
				t.Fatal(err)
			}
			if err := alice.g.MergePendingCommit(); err != nil {
				t.Fatal(err)
			}
			deliver(t, alice, res.Commit, all[1:]...)
			var opts *mls.JoinOptions
			var tree []byte
			if outOfBand {
				if tree, err = alice.g.RatchetTree(); err != nil {
					t.Fatal(err)
				}
				opts = &mls.JoinOptions{RatchetTree: tree}
			}
			if dave.g, err = mls.JoinFromWelcome(cfg, res.Welcome, dave.bundle, opts); err != nil {
				t.Fatal(err)
			}
			scribble(res.Welcome, tree)
			all = append(all, dave)
			checkAgree(t, all)

			// An external join.
			erin := newClient(t, "erin", fastSuite, cfg)
			gi, err := alice.g.GroupInfo(!outOfBand, true)
			if err != nil {
				t.Fatal(err)
			}
			var eopts *mls.ExternalJoinOptions
			tree = nil
			if outOfBand {
				if tree, err = alice.g.RatchetTree(); err != nil {
					t.Fatal(err)
				}
				eopts = &mls.ExternalJoinOptions{RatchetTree: tree}
			}
			ext, err := mls.ExternalJoin(cfg, gi, erin.cred, erin.sig, eopts)
			if err != nil {
				t.Fatal(err)
			}
			scribble(gi, tree)
			erin.g = ext.Group
			deliver(t, erin, ext.Commit, all...)
			all = append(all, erin)
			checkAgree(t, all)

			// The joiners commit; checkAgree has everyone read everyone.
			for _, c := range []*client{dave, erin} {
				commit(t, c, nil, all)
				checkAgree(t, all)
			}
		})
	}
}
