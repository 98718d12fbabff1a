package secrettree

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/mlskit/mlskit/internal/keyschedule"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/treemath"
	"github.com/mlskit/mlskit/internal/wire"
)

func testSuite(t testing.TB) *suite.Suite {
	t.Helper()
	s, err := suite.Lookup(suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func encSecret(s *suite.Suite, seed byte) keyschedule.Secret {
	b := make(keyschedule.Secret, s.HashSize())
	for i := range b {
		b[i] = seed + byte(i)
	}
	return b
}

func newTree(t testing.TB, leaves uint32, cfg Config) *Tree {
	t.Helper()
	s := testSuite(t)
	tr, err := New(s, encSecret(s, 1), leaves, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func isZero(b []byte) bool {
	for _, v := range b {
		if v != 0 {
			return false
		}
	}
	return true
}

// wantErr checks that err wraps target and is an *Error naming leaf.
func wantErr(t *testing.T, err, target error, leaf treemath.LeafIndex) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
	var e *Error
	if !errors.As(err, &e) || e.Leaf != leaf {
		t.Fatalf("error %v is not an *Error for leaf %d", err, leaf)
	}
}

// A receiver's keys match the sender's, whatever order they are asked in,
// for every suite.
func TestSenderReceiverAgree(t *testing.T) {
	for _, id := range suite.Supported() {
		s, err := suite.Lookup(id)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(id.String(), func(t *testing.T) {
			send, _ := New(s, encSecret(s, 7), 8, Config{})
			recv, _ := New(s, encSecret(s, 7), 8, Config{})
			type kn struct{ key, nonce []byte }
			sent := map[uint32]kn{}
			for range 12 {
				g, k, n, err := send.Next(5, Application)
				if err != nil {
					t.Fatal(err)
				}
				if len(k) != s.KeySize() || len(n) != s.NonceSize() {
					t.Fatalf("key/nonce sizes %d/%d", len(k), len(n))
				}
				sent[g] = kn{k, n}
			}
			// Out of order, within the window of 5 below the newest.
			for _, g := range []uint32{3, 1, 2, 0, 7, 5, 4, 6, 11, 8, 10, 9} {
				k, n, err := recv.Get(5, Application, g)
				if err != nil {
					t.Fatalf("Get %d: %v", g, err)
				}
				if !bytes.Equal(k, sent[g].key) || !bytes.Equal(n, sent[g].nonce) {
					t.Fatalf("generation %d: receiver and sender disagree", g)
				}
			}
			// The two ratchets of a leaf, and different leaves, differ.
			_, hk, _, _ := send.Next(5, Handshake)
			_, ok, _, _ := send.Next(4, Handshake)
			if bytes.Equal(hk, sent[0].key) || bytes.Equal(hk, ok) {
				t.Fatal("ratchets share keys")
			}
		})
	}
}

func TestConsumedKeyCannotBeObtainedAgain(t *testing.T) {
	tr := newTree(t, 4, Config{})
	if _, _, err := tr.Get(1, Handshake, 0); err != nil {
		t.Fatal(err)
	}
	_, _, err := tr.Get(1, Handshake, 0)
	wantErr(t, err, ErrGenerationUsed, 1)

	// A kept skipped key is handed out once.
	if _, _, err := tr.Get(1, Handshake, 3); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tr.Get(1, Handshake, 2); err != nil {
		t.Fatal(err)
	}
	_, _, err = tr.Get(1, Handshake, 2)
	wantErr(t, err, ErrGenerationUsed, 1)
	_, _, err = tr.Get(1, Handshake, 3)
	wantErr(t, err, ErrGenerationUsed, 1)

	// A generation a sender used is gone too.
	g, _, _, err := tr.Next(2, Application)
	if err != nil || g != 0 {
		t.Fatalf("Next: %d, %v", g, err)
	}
	_, _, err = tr.Get(2, Application, 0)
	wantErr(t, err, ErrGenerationUsed, 2)
	if g, _, _, _ := tr.Next(2, Application); g != 1 {
		t.Fatalf("Next after Next gave generation %d, want 1", g)
	}
	// The other ratchet of the leaf is independent.
	if _, _, err := tr.Get(2, Handshake, 0); err != nil {
		t.Fatal(err)
	}
}

func TestFarFutureGenerationRefused(t *testing.T) {
	tr := newTree(t, 2, Config{MaxForwardDistance: 10})
	_, _, err := tr.Get(0, Application, 11)
	wantErr(t, err, ErrTooFarAhead, 0)
	// A refused request derives nothing: the tree still holds only its root.
	if len(tr.ratchets) != 0 || len(tr.nodes) != 1 {
		t.Fatalf("refused Get derived state: %d ratchets, %d nodes", len(tr.ratchets), len(tr.nodes))
	}
	if _, _, err := tr.Get(0, Application, 10); err != nil {
		t.Fatalf("a jump of exactly MaxForwardDistance: %v", err)
	}
	// The distance counts from the ratchet's position.
	_, _, err = tr.Get(0, Application, 22)
	wantErr(t, err, ErrTooFarAhead, 0)
	if _, _, err := tr.Get(0, Application, 21); err != nil {
		t.Fatal(err)
	}

	// The default is 1000.
	tr = newTree(t, 2, Config{})
	_, _, err = tr.Get(1, Handshake, DefaultMaxForwardDistance+1)
	wantErr(t, err, ErrTooFarAhead, 1)
	if _, _, err := tr.Get(1, Handshake, DefaultMaxForwardDistance); err != nil {
		t.Fatal(err)
	}
	// Even the largest generation is refused without work.
	_, _, err = tr.Get(1, Application, math.MaxUint32)
	wantErr(t, err, ErrTooFarAhead, 1)

	// Negative: only the next generation.
	tr = newTree(t, 2, Config{MaxForwardDistance: -1})
	_, _, err = tr.Get(1, Handshake, 1)
	wantErr(t, err, ErrTooFarAhead, 1)
	if _, _, err := tr.Get(1, Handshake, 0); err != nil {
		t.Fatal(err)
	}
}

func TestSkippedKeysExpireWhenWindowMoves(t *testing.T) {
	tr := newTree(t, 2, Config{OutOfOrderTolerance: 3})
	// Jump to 10: generations 7, 8, 9 are kept; 0..6 are not.
	if _, _, err := tr.Get(0, Application, 10); err != nil {
		t.Fatal(err)
	}
	r := tr.initialised(0, Application)
	if n := r.kept(); n != 3 {
		t.Fatalf("kept %d keys, want 3", n)
	}
	_, _, err := tr.Get(0, Application, 6)
	wantErr(t, err, ErrOutsideWindow, 0)
	_, _, err = tr.Get(0, Application, 0)
	wantErr(t, err, ErrOutsideWindow, 0)

	// Keep references to the kept keys to check they are erased on expiry.
	slot7 := r.window[7%3]
	if slot7.gen != 7 || slot7.key == nil {
		t.Fatalf("slot of generation 7 holds %d", slot7.gen)
	}
	// Receive 11: the window becomes 8..10, so 7 expires and is zeroed.
	if _, _, err := tr.Get(0, Application, 11); err != nil {
		t.Fatal(err)
	}
	if !isZero(slot7.key) || !isZero(slot7.nonce) {
		t.Fatal("expired key was not zeroed")
	}
	_, _, err = tr.Get(0, Application, 7)
	wantErr(t, err, ErrOutsideWindow, 0)
	for _, g := range []uint32{9, 8} {
		if _, _, err := tr.Get(0, Application, g); err != nil {
			t.Fatalf("Get %d inside window: %v", g, err)
		}
	}
	// 10 was received, so it is used, not expired.
	_, _, err = tr.Get(0, Application, 10)
	wantErr(t, err, ErrGenerationUsed, 0)
	if n := r.kept(); n != 0 {
		t.Fatalf("kept %d keys, want 0", n)
	}

	// A sender's Next moves the window too.
	tr = newTree(t, 2, Config{OutOfOrderTolerance: 2})
	if _, _, err := tr.Get(1, Handshake, 3); err != nil { // keeps 1, 2
		t.Fatal(err)
	}
	if g, _, _, _ := tr.Next(1, Handshake); g != 4 {
		t.Fatalf("Next gave %d, want 4", g)
	}
	_, _, err = tr.Get(1, Handshake, 1)
	wantErr(t, err, ErrOutsideWindow, 1)
	if _, _, err := tr.Get(1, Handshake, 2); err != nil {
		t.Fatal(err)
	}

	// Negative tolerance keeps nothing.
	tr = newTree(t, 2, Config{OutOfOrderTolerance: -1})
	if _, _, err := tr.Get(1, Handshake, 3); err != nil {
		t.Fatal(err)
	}
	_, _, err = tr.Get(1, Handshake, 2)
	wantErr(t, err, ErrOutsideWindow, 1)
	if tr.initialised(1, Handshake).window != nil {
		t.Fatal("window allocated with tolerance 0")
	}
}

// However messages arrive, a ratchet holds at most tolerance keys.
func TestWindowBounded(t *testing.T) {
	tr := newTree(t, 2, Config{})
	r := (*ratchet)(nil)
	for i := uint32(0); i < 2000; i += 7 {
		for _, g := range []uint32{i + 6, i + 1, i + 3} {
			if _, _, err := tr.Get(0, Application, g); err != nil {
				t.Fatalf("Get %d: %v", g, err)
			}
		}
		r = tr.initialised(0, Application)
		if n := r.kept(); n > DefaultOutOfOrderTolerance {
			t.Fatalf("kept %d keys", n)
		}
	}
	if r.kept() == 0 {
		t.Fatal("no keys kept: the test exercises nothing")
	}
}

func TestLazyDerivationAndNodeDeletion(t *testing.T) {
	const n = 16384
	tr := newTree(t, n, Config{})
	if len(tr.nodes) != 1 || len(tr.ratchets) != 0 {
		t.Fatalf("new tree holds %d nodes, %d ratchets", len(tr.nodes), len(tr.ratchets))
	}
	root := tr.nodes[tr.root]
	if _, _, _, err := tr.Next(5000, Application); err != nil {
		t.Fatal(err)
	}
	if !isZero(root) {
		t.Fatal("root secret not zeroed after its children were derived")
	}
	// One leaf derived: the siblings of its path (14 of them) remain.
	if len(tr.nodes) != 14 || len(tr.ratchets) != 1 {
		t.Fatalf("after one leaf: %d nodes, %d ratchets", len(tr.nodes), len(tr.ratchets))
	}
	if _, ok := tr.nodes[treemath.LeafIndex(5000).Node()]; ok {
		t.Fatal("leaf secret kept after its ratchets were initialised")
	}
	// Its sibling leaf is now one derivation away.
	if _, _, err := tr.Get(5001, Handshake, 0); err != nil {
		t.Fatal(err)
	}
	if len(tr.nodes) != 13 {
		t.Fatalf("after sibling: %d nodes", len(tr.nodes))
	}
	// Deriving every leaf leaves no tree secrets at all.
	small := newTree(t, 8, Config{})
	for l := range treemath.LeafIndex(8) {
		if _, _, _, err := small.Next(l, Handshake); err != nil {
			t.Fatal(err)
		}
	}
	if len(small.nodes) != 0 {
		t.Fatalf("all leaves derived but %d tree secrets remain", len(small.nodes))
	}
}

func TestRatchetSecretReplacedAndZeroed(t *testing.T) {
	tr := newTree(t, 2, Config{})
	if _, _, _, err := tr.Next(0, Handshake); err != nil {
		t.Fatal(err)
	}
	r := tr.initialised(0, Handshake)
	old := r.secret
	if _, _, _, err := tr.Next(0, Handshake); err != nil {
		t.Fatal(err)
	}
	if !isZero(old) || isZero(r.secret) {
		t.Fatal("advancing the ratchet did not replace and zero its secret")
	}
}

func TestExhaustion(t *testing.T) {
	tr := newTree(t, 1, Config{})
	if _, _, _, err := tr.Next(0, Application); err != nil {
		t.Fatal(err)
	}
	r := tr.initialised(0, Application)
	// Pretend the ratchet reached its last generation.
	r.next = math.MaxUint32
	g, _, _, err := tr.Next(0, Application)
	if err != nil || g != math.MaxUint32 {
		t.Fatalf("last generation: %d, %v", g, err)
	}
	if r.secret != nil {
		t.Fatal("secret kept after the last generation")
	}
	_, _, _, err = tr.Next(0, Application)
	wantErr(t, err, ErrExhausted, 0)
	_, _, err = tr.Get(0, Application, math.MaxUint32)
	wantErr(t, err, ErrGenerationUsed, 0)
}

func TestBadInput(t *testing.T) {
	s := testSuite(t)
	for _, n := range []uint32{0, 3, 6, 10000} {
		if _, err := New(s, encSecret(s, 1), n, Config{}); err == nil {
			t.Errorf("New accepted %d leaves", n)
		}
	}
	if _, err := New(s, encSecret(s, 1)[:5], 4, Config{}); err == nil {
		t.Error("New accepted a short encryption_secret")
	}
	tr := newTree(t, 4, Config{})
	_, _, err := tr.Get(4, Handshake, 0)
	wantErr(t, err, ErrLeafOutOfRange, 4)
	_, _, _, err = tr.Next(math.MaxUint32, Application)
	wantErr(t, err, ErrLeafOutOfRange, math.MaxUint32)
	if _, _, err := tr.Get(0, Kind(0), 0); err == nil {
		t.Error("Get accepted kind 0")
	}
	if _, _, _, err := tr.Next(0, Kind(3)); err == nil {
		t.Error("Next accepted kind 3")
	}
	if len(tr.ratchets) != 0 {
		t.Error("rejected requests derived state")
	}
}

func TestNewCopiesSecret(t *testing.T) {
	s := testSuite(t)
	sec := encSecret(s, 9)
	a, _ := New(s, sec, 2, Config{})
	sec.Erase()
	b, _ := New(s, encSecret(s, 9), 2, Config{})
	_, ka, _, _ := a.Next(1, Handshake)
	_, kb, _, _ := b.Next(1, Handshake)
	if !bytes.Equal(ka, kb) {
		t.Fatal("erasing the caller's encryption_secret changed the tree")
	}
}

func TestErase(t *testing.T) {
	tr := newTree(t, 4, Config{})
	if _, _, err := tr.Get(0, Application, 3); err != nil {
		t.Fatal(err)
	}
	r := tr.initialised(0, Application)
	held := []keyschedule.Secret{r.secret, r.window[1%5].key}
	for _, v := range tr.nodes {
		held = append(held, v)
	}
	tr.Erase()
	for i, v := range held {
		if v == nil || !isZero(v) {
			t.Fatalf("secret %d not zeroed (nil=%v)", i, v == nil)
		}
	}
	_, _, _, err := tr.Next(1, Handshake)
	wantErr(t, err, ErrErased, 1)
	_, _, err = tr.Get(0, Application, 1)
	wantErr(t, err, ErrErased, 0)
}

// Errors name the leaf and generation but never print key material.
func TestErrorsCarryNoSecrets(t *testing.T) {
	tr := newTree(t, 2, Config{})
	key, _, err := tr.Get(0, Application, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = tr.Get(0, Application, 0)
	msg := err.Error()
	if !strings.Contains(msg, "leaf 0") || !strings.Contains(msg, "generation 0") {
		t.Fatalf("error %q does not say which leaf and generation", msg)
	}
	if strings.Contains(msg, fmt.Sprintf("%x", []byte(key))) {
		t.Fatal("error contains the key")
	}
	if s := fmt.Sprintf("%v %x", key, key); strings.Contains(s, fmt.Sprintf("%x", []byte(key))) {
		t.Fatal("returned key prints its bytes")
	}
}

func TestKindOf(t *testing.T) {
	for ct, want := range map[uint8]Kind{1: Application, 2: Handshake, 3: Handshake} {
		if k, ok := KindOf(wire.ContentType(ct)); !ok || k != want {
			t.Errorf("KindOf(%d) = %v, %v", ct, k, ok)
		}
	}
	if _, ok := KindOf(wire.ContentType(0)); ok {
		t.Error("KindOf(0) ok")
	}
}
