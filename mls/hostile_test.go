package mls_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/mlskit/mlskit/mls"
)

// Hostile input for every message kind: truncated, bit-flipped, for the
// wrong epoch or group, replayed, and with forged signatures. Each must fail
// with an error that matches a public sentinel (errors.Is), never panic, and
// leave the receiving group as it was (fingerprint), its secret tree
// included: no message key may be used up by a message that fails to
// decrypt or verify.

// framingConsumesOnFailure: whether internal/framing.UnprotectPrivate
// consumes a message key before the content has decrypted and verified.
// It did until commit b0f9fc0 (it took the key with secrettree.Tree.Get
// first); now it Peeks and consumes only on success, so the hostile tests
// demand that a corrupted or forged PrivateMessage leaves the secret tree
// untouched. (Setting it to true tolerates the old behaviour only where it
// can occur: the sender data still decrypts.)
const framingConsumesOnFailure = false

const hashLen = 32 // KDF.Nh of fastSuite: the ciphertext sample length (RFC 9420, Section 6.3.2)

// sender is a way for bob to make a fresh valid message of one kind, and to
// drop the state the making left at bob.
type sender struct {
	name string
	make func(t *testing.T) []byte
	undo func()
}

func senders(t *testing.T, env []*client, pub bool) []sender {
	bob, carol := env[1], env[2]
	wf := "PrivateMessage"
	if pub {
		wf = "PublicMessage"
	}
	out := []sender{
		{"PrivateMessage/application", func(t *testing.T) []byte {
			b, err := bob.g.Encrypt([]byte("attack at dawn"), []byte("ad"))
			return must(t, b, err)
		}, func() {}},
		{wf + "/proposal", func(t *testing.T) []byte {
			b, err := bob.g.ProposeRemove(carol.g.LeafIndex())
			return must(t, b, err)
		}, func() { mls.DropOwnProposals(bob.g) }},
		{wf + "/commit", func(t *testing.T) []byte {
			res, err := bob.g.Commit(nil)
			if err != nil {
				t.Fatal(err)
			}
			return res.Commit
		}, func() { bob.g.DiscardPendingCommit() }},
	}
	if pub {
		out = append(out, sender{"PublicMessage/application", func(t *testing.T) []byte {
			b, err := mls.PublicApplication(bob.g, []byte("in the clear"))
			return must(t, b, err)
		}, func() {}})
	}
	return out
}

func must(t *testing.T, b []byte, err error) []byte {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hostileEnv(t *testing.T, pub bool, salt string) []*client {
	t.Helper()
	return threeParty(t, fastSuite, detConfig("hostile "+salt, pub))
}

// prefixes returns every proper prefix length of an n-byte message, or for
// a large one the first and last 256 and every step-th in between.
func prefixes(n, max int) []int {
	var out []int
	for i := range n {
		if n <= max || i < 256 || i >= n-256 || i%(n/max+1) == 0 {
			out = append(out, i)
		}
	}
	return out
}

// flip returns msg with bit i%8 of byte i inverted.
func flip(msg []byte, i int) []byte {
	m := bytes.Clone(msg)
	m[i] ^= 1 << (i % 8)
	return m
}

// cheapState is the part of the fingerprint checked after every variant.
func cheapState(g *mls.Group) string {
	return fmt.Sprintf("%d/%d/%v/%v", g.Epoch(), len(g.PendingProposals()), g.HasPendingCommit(), g.Active())
}

// TestHostileTruncated feeds every proper prefix of every kind of group
// message. All are malformed; none may change the group.
func TestHostileTruncated(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			seeded(t, 20)
			env := hostileEnv(t, m.pub, "trunc "+m.name)
			alice := env[0]
			for _, s := range senders(t, env, m.pub) {
				msg := s.make(t)
				before := fingerprint(t, alice.g)
				for _, n := range prefixes(len(msg), 2048) {
					what := fmt.Sprintf("%s truncated to %d of %d bytes", s.name, n, len(msg))
					noPanic(t, what, func() {
						_, err := alice.g.Process(msg[:n])
						wantErr(t, what, err, mls.ErrMalformed)
						typed(t, what, err)
					})
				}
				unchanged(t, s.name+" truncations", alice.g, before)
				if strings.HasSuffix(s.name, "PublicMessage/application") {
					s.undo()
					continue
				}
				// The untouched message still works.
				if _, err := alice.g.Process(msg); err != nil {
					t.Fatalf("%s after its truncations: %v", s.name, err)
				}
				s.undo()
				mls.DropOwnProposals(alice.g)
			}
		})
	}
}

// privateLayout finds the byte ranges of a PrivateMessage (RFC 9420,
// Section 6.3) inside an MLSMessage: authenticated_data and ciphertext
// contents.
type privateLayout struct{ ad, ct [2]int }

func readVarint(b []byte, off int) (n, size int) {
	switch b[off] >> 6 {
	case 0:
		return int(b[off] & 0x3f), 1
	case 1:
		return int(b[off]&0x3f)<<8 | int(b[off+1]), 2
	default:
		return int(b[off]&0x3f)<<24 | int(b[off+1])<<16 | int(b[off+2])<<8 | int(b[off+3]), 4
	}
}

func layoutOf(msg []byte) privateLayout {
	off := 4 // version, wire_format
	skip := func() [2]int {
		n, s := readVarint(msg, off)
		r := [2]int{off + s, off + s + n}
		off += s + n
		return r
	}
	skip()       // group_id
	off += 8 + 1 // epoch, content_type
	var l privateLayout
	l.ad = skip()
	skip() // encrypted_sender_data
	l.ct = skip()
	return l
}

// burnAllowed reports whether flipping byte i of a PrivateMessage leaves its
// sender data decryptable while breaking the content: a byte of
// authenticated_data (in the content AAD, not the sender data AAD) or of
// the ciphertext after the sample the sender data key is derived from.
func (l privateLayout) burnAllowed(i int) bool {
	return (i >= l.ad[0] && i < l.ad[1]) || (i >= l.ct[0]+hashLen && i < l.ct[1])
}

// withoutRatchet drops the current epoch's key-availability lines of one
// ratchet from a fingerprint.
func withoutRatchet(fp string, epoch uint64, leaf mls.LeafIndex, application bool) string {
	kind := "handshake"
	if application {
		kind = "application"
	}
	prefix := fmt.Sprintf("epoch %d leaf %d %s:", epoch, leaf, kind)
	var out []string
	for _, line := range strings.Split(fp, "\n") {
		if !strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestHostileBitFlips flips one bit in every byte of every kind of group
// message (a dense sample for commits with a path). Every variant must fail
// with a typed error and leave alice as she was, her secret tree included
// (a flip in authenticated_data or past the ciphertext sample leaves the
// sender data decryptable and reaches the content key). Afterwards the
// genuine message still works.
func TestHostileBitFlips(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			seeded(t, 21)
			env := hostileEnv(t, m.pub, "flip "+m.name)
			alice := env[0]
			for _, s := range senders(t, env, m.pub) {
				t.Run(strings.ReplaceAll(s.name, "/", "-"), func(t *testing.T) {
					hostileFlips(t, alice, s)
				})
			}
		})
	}
}

func hostileFlips(t *testing.T, alice *client, s sender) {
	msg := s.make(t)
	private := strings.HasPrefix(s.name, "PrivateMessage")
	var (
		layout      privateLayout
		leaf        mls.LeafIndex
		app         bool
		gen         uint32
		burns, regs int
	)
	track := func() {
		layout = layoutOf(msg)
		var ok bool
		if leaf, app, gen, ok = mls.SenderDataOf(alice.g, msg); !ok {
			t.Fatalf("%s: sender data does not decrypt", s.name)
		}
		if !mls.KeyUsable(alice.g, leaf, app, gen) {
			t.Fatalf("%s: generation %d not usable before the flips", s.name, gen)
		}
	}
	if private {
		track()
	}
	before := fingerprint(t, alice.g)
	cheap := cheapState(alice.g)
	step := 1
	if len(msg) > 1024 {
		step = 3
	}
	for i := 0; i < len(msg); i += step {
		bad := flip(msg, i)
		what := fmt.Sprintf("%s with byte %d of %d flipped", s.name, i, len(msg))
		noPanic(t, what, func() {
			_, err := alice.g.Process(bad)
			typed(t, what, err)
		})
		if c := cheapState(alice.g); c != cheap {
			t.Fatalf("%s changed the group: %s -> %s", what, cheap, c)
		}
		if private && !mls.KeyUsable(alice.g, leaf, app, gen) {
			if !framingConsumesOnFailure {
				t.Fatalf("%s used up generation %d", what, gen)
			}
			if !layout.burnAllowed(i) {
				t.Fatalf("%s used up generation %d, though its sender data cannot decrypt", what, gen)
			}
			burns++
			// Go on with a fresh message (the next generation).
			s.undo()
			msg = s.make(t)
			regs++
			track()
		}
	}
	if private {
		b, a := fingerprint(t, alice.g), ""
		a = withoutRatchet(b, alice.g.Epoch(), leaf, app)
		if w := withoutRatchet(before, alice.g.Epoch(), leaf, app); w != a {
			t.Fatalf("flips changed the group beyond bob's ratchet:\n%s", diffLines(w, a))
		}
	} else {
		unchanged(t, s.name+" bit flips", alice.g, before)
	}
	t.Logf("%d bytes flipped; %d used up a generation (sender data decrypted, content did not)", len(msg)/step, burns)
	if strings.HasSuffix(s.name, "PublicMessage/application") {
		return
	}
	r, err := alice.g.Process(msg)
	if err != nil {
		t.Fatalf("valid %s after the flips: %v", s.name, err)
	}
	if r.Application == nil && r.Proposal == nil && r.Commit == nil {
		t.Fatalf("valid %s gave nothing", s.name)
	}
	s.undo()
}

// TestCorruptedCopyFirst: a corrupted copy of a PrivateMessage arriving
// before the genuine one must not spend its key (the corruption is in the
// content's AEAD tag, so the sender data decrypts).
func TestCorruptedCopyFirst(t *testing.T) {
	seeded(t, 22)
	env := hostileEnv(t, false, "corrupted copy")
	alice, bob := env[0], env[1]
	msg, err := bob.g.Encrypt([]byte("hello"), nil)
	if err != nil {
		t.Fatal(err)
	}
	l := layoutOf(msg)
	before := fingerprint(t, alice.g)
	_, err = alice.g.Process(flip(msg, l.ct[1]-1))
	wantErr(t, "corrupted content", err, mls.ErrDecrypt)
	if framingConsumesOnFailure {
		unchangedButBurned(t, "corrupted content", alice.g, before)
		return
	}
	unchanged(t, "corrupted content", alice.g, before)
	r, err := alice.g.Process(msg)
	if err != nil {
		t.Fatalf("genuine message after a corrupted copy: %v", err)
	}
	if string(r.Application) != "hello" {
		t.Fatalf("got %q", r.Application)
	}
}

// TestHostileWrongGroupEpochReplay sends bob's messages to alice for
// another group, for a later and an earlier epoch, twice, and her own back
// to her.
func TestHostileWrongGroupEpochReplay(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			seeded(t, 23)
			cfg := detConfig("replay "+m.name, m.pub)
			env := threeParty(t, fastSuite, cfg)
			alice, bob, carol := env[0], env[1], env[2]
			private := !m.pub

			// Another group with the same members (bob creates it).
			bob2 := &client{name: "bob2", cfg: cfg, sig: bob.sig, cred: bob.cred}
			alice2 := newClient(t, "alice2", fastSuite, cfg)
			var err error
			bob2.g, err = mls.NewGroup(cfg, []byte("other group"), bob.cred, bob.sig, nil)
			if err != nil {
				t.Fatal(err)
			}
			commit(t, bob2, &mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(alice2.keyPackage(t))}}, nil, alice2)
			for _, s := range senders(t, []*client{alice2, bob2, alice2}, m.pub) {
				msg := s.make(t)
				before := fingerprint(t, alice.g)
				_, err := alice.g.Process(msg)
				wantErr(t, s.name+" of another group", err, mls.ErrWrongGroup)
				unchanged(t, s.name+" of another group", alice.g, before)
				s.undo()
			}

			// bob and carol move to the next epoch without alice.
			res, err := carol.g.Commit(nil)
			if err != nil {
				t.Fatal(err)
			}
			deliver(t, carol, res.Commit, bob)
			if err := carol.g.MergePendingCommit(); err != nil {
				t.Fatal(err)
			}
			future := map[string][]byte{}
			for _, s := range senders(t, env, m.pub) {
				msg := s.make(t)
				future[s.name] = msg
				before := fingerprint(t, alice.g)
				_, err := alice.g.Process(msg)
				if strings.HasSuffix(s.name, "PublicMessage/application") {
					typed(t, s.name, err)
				} else {
					wantErr(t, s.name+" of the next epoch", err, mls.ErrWrongEpoch)
				}
				unchanged(t, s.name+" of the next epoch", alice.g, before)
				s.undo()
			}
			// A proposal alice made in the old epoch, late at bob.
			oldProp, err := alice.g.ProposeRemove(carol.g.LeafIndex())
			if err != nil {
				t.Fatal(err)
			}
			mls.DropOwnProposals(alice.g)
			before := fingerprint(t, bob.g)
			_, err = bob.g.Process(oldProp)
			wantErr(t, "handshake of the previous epoch", err, mls.ErrWrongEpoch)
			unchanged(t, "handshake of the previous epoch", bob.g, before)

			deliver(t, carol, res.Commit, alice)
			// A commit replayed after it was merged is for an old epoch.
			before = fingerprint(t, alice.g)
			_, err = alice.g.Process(res.Commit)
			wantErr(t, "commit replayed after merge", err, mls.ErrWrongEpoch)
			unchanged(t, "commit replayed after merge", alice.g, before)
			// The messages made for this epoch now work (application data
			// was sent before the proposal, so is still readable).
			if _, err := alice.g.Process(future["PrivateMessage/application"]); err != nil {
				t.Fatalf("application message of the (now current) epoch: %v", err)
			}

			// Replays within the epoch.
			app, _ := bob.g.Encrypt([]byte("once"), nil)
			process(t, alice, app)
			before = fingerprint(t, alice.g)
			_, err = alice.g.Process(app)
			wantErr(t, "replayed application message", err, mls.ErrKeyUnavailable)
			unchanged(t, "replayed application message", alice.g, before)

			prop, _ := bob.g.ProposeRemove(carol.g.LeafIndex())
			process(t, alice, prop)
			before = fingerprint(t, alice.g)
			_, err = alice.g.Process(prop)
			if private {
				wantErr(t, "replayed proposal", err, mls.ErrKeyUnavailable)
			} else {
				wantErr(t, "replayed proposal", err, mls.ErrInvalidProposal)
			}
			unchanged(t, "replayed proposal", alice.g, before)
			mls.DropOwnProposals(bob.g)

			cres, err := bob.g.Commit(nil)
			if err != nil {
				t.Fatal(err)
			}
			r1, err := alice.g.Process(cres.Commit)
			if err != nil {
				t.Fatal(err)
			}
			before = fingerprint(t, alice.g)
			r2, err := alice.g.Process(cres.Commit)
			if private {
				wantErr(t, "commit processed twice", err, mls.ErrKeyUnavailable)
			} else if err != nil {
				// Staging is pure: a PublicMessage commit can be staged
				// twice; only one of the two can be merged.
				t.Fatalf("public commit staged again: %v", err)
			}
			unchanged(t, "commit processed twice", alice.g, before)
			if err := alice.g.MergeStagedCommit(r1.Commit); err != nil {
				t.Fatal(err)
			}
			if r2 != nil {
				if err := alice.g.MergeStagedCommit(r2.Commit); err == nil {
					t.Fatal("a second staging of the same commit merged on top of the first")
				}
			}
			// alice's own messages, back to her.
			own, _ := alice.g.Encrypt([]byte("mine"), nil)
			_, err = alice.g.Process(own)
			if err == nil {
				t.Fatal("own application message accepted")
			}
			if !errors.Is(err, mls.ErrOwnMessage) {
				typed(t, "own application message", err)
			}
			ownProp, _ := alice.g.ProposeRemove(carol.g.LeafIndex())
			before = fingerprint(t, alice.g)
			_, err = alice.g.Process(ownProp)
			if err == nil {
				t.Fatal("own proposal accepted")
			}
			if !m.pub {
				typed(t, "own private proposal", err)
			} else if !errors.Is(err, mls.ErrOwnMessage) {
				t.Fatalf("own public proposal: %v", err)
			}
			unchanged(t, "own proposal", alice.g, before)
			mls.DropOwnProposals(alice.g)
			deliver(t, bob, cres.Commit, carol)
			if err := bob.g.MergePendingCommit(); err != nil {
				t.Fatal(err)
			}
			checkAgree(t, env)
		})
	}
}

// TestHostileForgedSignatures has bob sign with a key that is not his,
// with everything else correct: the encryption (PrivateMessage) or the
// membership tag (PublicMessage) is valid.
func TestHostileForgedSignatures(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			seeded(t, 24)
			env := hostileEnv(t, m.pub, "forged "+m.name)
			alice, bob := env[0], env[1]
			forger, err := mls.GenerateSignatureKeyPair(fastSuite, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range senders(t, env, m.pub) {
				if strings.HasSuffix(s.name, "PublicMessage/application") {
					continue
				}
				var msg []byte
				mls.WithSigner(bob.g, forger, func() { msg = s.make(t) })
				before := fingerprint(t, alice.g)
				_, err := alice.g.Process(msg)
				wantErr(t, "forged "+s.name, err, mls.ErrInvalidSignature)
				unchangedAfter(t, "forged "+s.name, alice.g, before, framingConsumesOnFailure && strings.HasPrefix(s.name, "PrivateMessage"))
				s.undo()
			}
			// The group still works.
			commit(t, bob, nil, env)
			checkAgree(t, env)
		})
	}
}

// TestHostileCommitUnknownReference: a commit that references a proposal
// the receiver never got (lost, or never sent to it) is refused with
// ErrInvalidCommit (RFC 9420, Section 12.4) and stages nothing; the
// receiver can rejoin the conversation once it has the proposal.
func TestHostileCommitUnknownReference(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			seeded(t, 25)
			env := hostileEnv(t, m.pub, "unknown ref "+m.name)
			alice, bob, carol := env[0], env[1], env[2]
			p, err := bob.g.ProposeUpdate(nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			deliver(t, bob, p, carol)
			res, err := carol.g.Commit(nil)
			if err != nil {
				t.Fatal(err)
			}
			before := fingerprint(t, alice.g)
			_, err = alice.g.Process(res.Commit)
			wantErr(t, "commit referencing a proposal alice never got", err, mls.ErrInvalidCommit)
			// A PrivateMessage commit decrypted and verified before the
			// reference failed, so its key is spent (doc.go).
			unchangedAfter(t, "commit referencing an unknown proposal", alice.g, before, !m.pub)
			if m.pub {
				deliver(t, bob, p, alice)
				deliver(t, carol, res.Commit, alice, bob)
				if err := carol.g.MergePendingCommit(); err != nil {
					t.Fatal(err)
				}
				checkAgree(t, env)
			}
		})
	}
}
