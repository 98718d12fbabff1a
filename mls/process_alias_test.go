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
