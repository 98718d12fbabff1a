package art

import (
	"bytes"
	"errors"
	mrand "math/rand/v2"
	"testing"

	"github.com/mlskit/mlskit/internal/suite"
)

// detRand is a repeatable randomness source for tests.
type detRand struct{ r *mrand.ChaCha8 }

func newRand(seed byte) *detRand {
	var s [32]byte
	s[0] = seed
	return &detRand{mrand.NewChaCha8(s)}
}

func (d *detRand) Read(p []byte) (int, error) { return d.r.Read(p) }

type person struct {
	signer     suite.Signer
	prekeyPriv []byte
	prekey     Prekey
}

func newPerson(t testing.TB, s *suite.Suite, r *detRand) *person {
	t.Helper()
	sigPriv, sigPub, err := s.GenerateSignatureKey(r)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := s.NewSigner(sigPriv)
	if err != nil {
		t.Fatal(err)
	}
	priv, pub, err := NewPrekey(r)
	if err != nil {
		t.Fatal(err)
	}
	return &person{signer: signer, prekeyPriv: priv, prekey: Prekey{Public: pub, SigKey: sigPub}}
}

// world is a group of n members, every one's view, by leaf.
type world struct {
	t      testing.TB
	s      *suite.Suite
	r      *detRand
	people []*person
	views  []*Group // nil: not a member (never joined, or removed)
}

func newWorld(t testing.TB, n int, seed byte) *world {
	t.Helper()
	s := Suite1()
	w := &world{t: t, s: s, r: newRand(seed)}
	for range n {
		w.people = append(w.people, newPerson(t, s, w.r))
	}
	var others []Prekey
	for _, p := range w.people[1:] {
		others = append(others, p.prekey)
	}
	g0, setupMsg, err := NewGroup(s, w.people[0].signer, others, w.r)
	if err != nil {
		t.Fatal(err)
	}
	w.views = []*Group{g0}
	for i := 1; i < n; i++ {
		g, err := Join(s, w.people[i].signer, i, w.people[i].prekeyPriv, w.people[0].prekey.SigKey, setupMsg)
		if err != nil {
			t.Fatalf("member %d joining: %v", i, err)
		}
		w.views = append(w.views, g)
	}
	return w
}

// deliver merges st at the sender and has every other member receive msg.
func (w *world) deliver(sender int, st *Staged) {
	w.t.Helper()
	if err := w.views[sender].Merge(st); err != nil {
		w.t.Fatal(err)
	}
	for i, g := range w.views {
		if g == nil || i == sender {
			continue
		}
		rst, err := g.Receive(st.Message)
		if errors.Is(err, ErrRemoved) {
			if err := g.Merge(rst); err != nil {
				w.t.Fatal(err)
			}
			w.views[i] = nil
			continue
		}
		if err != nil {
			w.t.Fatalf("member %d receiving from %d: %v", i, sender, err)
		}
		if err := g.Merge(rst); err != nil {
			w.t.Fatal(err)
		}
	}
}

// agree checks every member holds the same tree and stage key, and returns it.
func (w *world) agree() (tree, stage []byte) {
	w.t.Helper()
	for i, g := range w.views {
		if g == nil {
			continue
		}
		if tree == nil {
			tree, stage = g.TreeKey(), g.StageKey()
			if len(tree) != keySize || len(stage) != keySize {
				w.t.Fatalf("member %d: key lengths %d, %d", i, len(tree), len(stage))
			}
			continue
		}
		if !bytes.Equal(g.TreeKey(), tree) || !bytes.Equal(g.StageKey(), stage) {
			w.t.Fatalf("member %d derives a different key at stage %d", i, g.Stage())
		}
	}
	return tree, stage
}

func TestPathShapes(t *testing.T) {
	for n := 1; n <= 40; n++ {
		seen := map[int]bool{}
		for l := range n {
			steps := pathOf(n, l)
			if n > 1 && steps[len(steps)-1].node != rootIndex(n) {
				t.Fatalf("n=%d leaf %d: path does not end at the root", n, l)
			}
			child := 2 * l
			for _, s := range steps {
				if s.child != child {
					t.Fatalf("n=%d leaf %d: broken path", n, l)
				}
				child = s.node
				seen[s.node] = true
			}
		}
		if len(seen) != n-1 {
			t.Fatalf("n=%d: %d parents, want %d", n, len(seen), n-1)
		}
		// Appending a leaf changes only the new leaf's path: every
		// other parent keeps its children.
		if n > 1 {
			old := map[int][2]int{}
			for l := range n - 1 {
				for _, s := range pathOf(n-1, l) {
					old[s.node] = [2]int{min(s.child, s.sibling), max(s.child, s.sibling)}
				}
			}
			onNew := map[int]bool{}
			for _, s := range pathOf(n, n-1) {
				onNew[s.node] = true
			}
			for l := range n {
				for _, s := range pathOf(n, l) {
					if c, ok := old[s.node]; ok && !onNew[s.node] && c != [2]int{min(s.child, s.sibling), max(s.child, s.sibling)} {
						t.Fatalf("n=%d: node %d reshaped by an append", n, s.node)
					}
				}
			}
		}
	}
}

func TestSetupAgrees(t *testing.T) {
	for _, n := range []int{2, 3, 5, 8, 13, 33} {
		w := newWorld(t, n, byte(n))
		w.agree()
	}
}

func TestUpdateChangesKey(t *testing.T) {
	w := newWorld(t, 11, 1)
	tk0, sk0 := w.agree()
	for _, sender := range []int{0, 5, 10, 3} {
		st, err := w.views[sender].Update(w.r)
		if err != nil {
			t.Fatal(err)
		}
		w.deliver(sender, st)
		tk, sk := w.agree()
		if bytes.Equal(tk, tk0) || bytes.Equal(sk, sk0) {
			t.Fatalf("update by %d left the key unchanged", sender)
		}
		tk0, sk0 = tk, sk
	}
}

// TestRemovedCannotDerive: after a remove, the removed member's old
// secrets give nothing current: none of them is the secret of a public
// key in the new tree, and running the receiver's computation on the
// remove message with them gives a different tree key.
func TestRemovedCannotDerive(t *testing.T) {
	w := newWorld(t, 9, 2)
	victim := 6
	old := w.views[victim]
	held := map[int][]byte{}
	for x, s := range old.secrets {
		held[x] = bytes.Clone(s)
	}
	stale := &Group{s: old.s, signer: old.signer, me: old.me, n: old.n, pub: bytes2(old.pub), sigKeys: bytes2(old.sigKeys),
		secrets: held, stage: old.stage, stageKey: old.StageKey()}
	st, err := w.views[1].Remove(victim, w.r)
	if err != nil {
		t.Fatal(err)
	}
	w.deliver(1, st)
	if w.views[victim] != nil {
		t.Fatal("the removed member was not told")
	}
	tk, sk := w.agree()

	g := w.views[0]
	for x, s := range held {
		p := pubOf(s)
		for y, q := range g.pub {
			if bytes.Equal(p, q) {
				t.Fatalf("old secret of node %d is the secret of node %d in the new tree", x, y)
			}
		}
		if bytes.Equal(s, tk) {
			t.Fatal("old secret equals the new tree key")
		}
	}
	// What it can compute in one step from what it holds: each old secret
	// combined with each public key it has seen (old tree, new tree, the
	// remove message). None of these is the new tree key or the secret of
	// any node of the new tree, and chaining them into the stage key gives
	// nothing current.
	m, err := parseMessage(st.Message)
	if err != nil {
		t.Fatal(err)
	}
	seen := append(append(bytes2(stale.pub), bytes2(g.pub)...), m.Path...)
	current := map[string]bool{}
	for _, q := range g.pub {
		if q != nil {
			current[string(q)] = true
		}
	}
	for _, x := range held {
		for _, q := range seen {
			if len(q) != keySize {
				continue
			}
			shared, err := dh(nodeKey(x), q)
			if err != nil {
				continue
			}
			c := iota(w.s, shared)
			if bytes.Equal(c, tk) || current[string(pubOf(c))] {
				t.Fatal("the removed member derived a current secret from what it holds")
			}
			if bytes.Equal(nextStageKey(w.s, stale.stageKey, c, st.Message), sk) {
				t.Fatal("the removed member derived the new stage key")
			}
		}
	}
	// The same one-step derivation is what an ordinary member does, so the
	// check can succeed: a member at the remover's side finds its secret.
	found := false
	for _, x := range w.views[0].secrets {
		for _, q := range seen {
			if shared, err := dh(nodeKey(x), q); err == nil && current[string(pubOf(iota(w.s, shared)))] {
				found = true
			}
		}
	}
	if !found {
		t.Fatal("control: a current member derives nothing either; the check above proves nothing")
	}
	// And the old state refuses the group's next message.
	up, err := w.views[3].Update(w.r)
	if err != nil {
		t.Fatal(err)
	}
	w.deliver(3, up)
	if _, err := stale.Receive(up.Message); !errors.Is(err, ErrWrongStage) {
		t.Fatalf("stale state received the next stage: %v", err)
	}
}

func bytes2(in [][]byte) [][]byte {
	out := make([][]byte, len(in))
	for i, b := range in {
		out[i] = bytes.Clone(b)
	}
	return out
}

func TestAddReusesVacantSlotAndGrows(t *testing.T) {
	w := newWorld(t, 5, 3)
	// Remove leaf 2, then add twice: the first add takes slot 2, the
	// second a new leaf 5.
	st, err := w.views[0].Remove(2, w.r)
	if err != nil {
		t.Fatal(err)
	}
	w.deliver(0, st)
	tk0, _ := w.agree()
	for _, want := range []int{2, 5, 6} {
		p := newPerson(t, w.s, w.r)
		adder := 4
		st, err := w.views[adder].Add(p.prekey, w.r)
		if err != nil {
			t.Fatal(err)
		}
		w.deliver(adder, st)
		g, err := JoinWelcome(w.s, p.signer, p.prekeyPriv, w.people[adder].prekey.SigKey, st.Welcome)
		if err != nil {
			t.Fatalf("joining: %v", err)
		}
		if g.Index() != want {
			t.Fatalf("new member at leaf %d, want %d", g.Index(), want)
		}
		for len(w.views) <= want {
			w.views = append(w.views, nil)
			w.people = append(w.people, nil)
		}
		w.views[want], w.people[want] = g, p
		tk, _ := w.agree()
		if bytes.Equal(tk, tk0) {
			t.Fatal("add left the tree key unchanged")
		}
		tk0 = tk
	}
	// The new members can update too.
	st, err = w.views[6].Update(w.r)
	if err != nil {
		t.Fatal(err)
	}
	w.deliver(6, st)
	w.agree()
}

// TestConcurrentUpdates: two updates made against the same stage cannot
// both apply. Once the first is merged the second is refused, and the
// loser recovers by updating again on the new tree.
func TestConcurrentUpdates(t *testing.T) {
	w := newWorld(t, 8, 4)
	a, err := w.views[1].Update(w.r)
	if err != nil {
		t.Fatal(err)
	}
	b, err := w.views[6].Update(w.r)
	if err != nil {
		t.Fatal(err)
	}
	w.deliver(1, a)
	if _, err := w.views[0].Receive(b.Message); !errors.Is(err, ErrWrongStage) {
		t.Fatalf("second update of a stage: %v, want ErrWrongStage", err)
	}
	if err := w.views[6].Merge(b); !errors.Is(err, ErrWrongStage) {
		t.Fatalf("loser merged its stale update: %v", err)
	}
	// Had members applied it anyway (ignoring the stage), the sender and a
	// receiver on the other side would disagree: the meeting node's key
	// was computed against the winner's old key.
	b.stage = w.views[6].stage
	forged := *w.views[2]
	forged.secrets = map[int][]byte{}
	for x, s := range w.views[2].secrets {
		forged.secrets[x] = s
	}
	m, _ := parseMessage(b.Message)
	m.Stage = forged.stage
	m.Signature, _ = sign(w.people[6].signer, m.tbs())
	fst, err := forged.Receive(m.marshal())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(fst.treeKey, b.treeKey) {
		t.Fatal("a stale update applied cleanly; expected divergence")
	}
	again, err := w.views[6].Update(w.r)
	if err != nil {
		t.Fatal(err)
	}
	w.deliver(6, again)
	w.agree()
}

func TestRejectsBadMessages(t *testing.T) {
	w := newWorld(t, 6, 5)
	st, err := w.views[2].Update(w.r)
	if err != nil {
		t.Fatal(err)
	}
	g := w.views[4]
	before := g.StageKey()
	for i := range len(st.Message) {
		if _, err := g.Receive(st.Message[:i]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("prefix of %d bytes: %v", i, err)
		}
	}
	bad := bytes.Clone(st.Message)
	bad[len(bad)-1] ^= 1
	if _, err := g.Receive(bad); !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("flipped signature: %v", err)
	}
	bad = bytes.Clone(st.Message)
	bad[30] ^= 1 // inside the path
	if _, err := g.Receive(bad); !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("flipped path key: %v", err)
	}
	if !bytes.Equal(g.StageKey(), before) || g.Stage() != 0 {
		t.Fatal("a refused message changed the group")
	}
	// A member cannot forge another's update with its own key.
	m, _ := parseMessage(st.Message)
	m.Signature, _ = sign(w.people[3].signer, m.tbs())
	if _, err := g.Receive(m.marshal()); !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("update signed by someone else: %v", err)
	}
}
