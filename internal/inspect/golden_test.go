package inspect

import (
	"bytes"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/mlskit/mlskit/mls"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// goldenNow is the clock of the generated group and of its inspection.
var goldenNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// goldenGroup is a small group built deterministically through the public
// API: Alice creates a group and commits an Add of Bob's KeyPackage, with
// handshakes sent as PublicMessage so that the commit can be inspected.
type goldenGroup struct {
	keyPackage []byte // Bob's KeyPackage (MLSMessage)
	groupInfo0 []byte // the GroupInfo of epoch 0, with the ratchet tree
	commit     []byte // Alice's commit adding Bob (MLSMessage, PublicMessage)
	groupInfo1 []byte // the GroupInfo of epoch 1
	welcome    []byte
	proposal   []byte // an Add proposal for Bob (MLSMessage, PublicMessage)
	byRef      []byte // a commit of that proposal, by reference

	alice *mls.Group
	bob   *mls.KeyPackageBundle
	sigs  map[string]*mls.SignatureKeyPair
}

// newGoldenGroup builds the group from fixed seeds: Config.Rand for keys
// and path secrets, cryptotest.SetGlobalRandom for HPKE encapsulation, a
// fixed clock. Ed25519 signatures are deterministic.
func newGoldenGroup(t *testing.T) *goldenGroup {
	t.Helper()
	cryptotest.SetGlobalRandom(t, 9420)
	rnd := rand.NewChaCha8([32]byte{'m', 'l', 's', 'k', 'i', 't', ' ', 'i', 'n', 's', 'p', 'e', 'c', 't'})
	cfg := &mls.Config{Rand: rnd, Now: func() time.Time { return goldenNow }, PublicHandshakes: true}
	cs := mls.X25519_AES128GCM_SHA256_Ed25519
	g := &goldenGroup{sigs: map[string]*mls.SignatureKeyPair{}}
	for _, name := range []string{"alice", "bob"} {
		sig, err := mls.GenerateSignatureKeyPair(cs, rnd)
		if err != nil {
			t.Fatal(err)
		}
		g.sigs[name] = sig
	}
	var err error
	if g.alice, err = mls.NewGroup(cfg, []byte("inspect golden group"), mls.BasicCredential([]byte("alice")), g.sigs["alice"], nil); err != nil {
		t.Fatal(err)
	}
	if g.bob, err = mls.NewKeyPackage(cfg, mls.BasicCredential([]byte("bob")), g.sigs["bob"], nil); err != nil {
		t.Fatal(err)
	}
	g.keyPackage = g.bob.KeyPackage.Bytes()
	if g.groupInfo0, err = g.alice.GroupInfo(true, false); err != nil {
		t.Fatal(err)
	}
	if g.proposal, err = g.alice.ProposeAdd(g.bob.KeyPackage); err != nil {
		t.Fatal(err)
	}
	res, err := g.alice.Commit(nil) // the cached proposal, by reference
	if err != nil {
		t.Fatal(err)
	}
	g.byRef = res.Commit
	g.alice.DiscardPendingCommit()
	res, err = g.alice.Commit(&mls.CommitOptions{OnlyInline: true, Proposals: []*mls.Proposal{mls.AddProposal(g.bob.KeyPackage)}, GroupInfo: true})
	if err != nil {
		t.Fatal(err)
	}
	g.commit, g.welcome, g.groupInfo1 = res.Commit, res.Welcome, res.GroupInfo
	return g
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run Golden -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the output; got:\n%s\n(run go test -run Golden -update if the change is intended)", path, got)
	}
}

// TestGoldenDeterministic: the golden inputs really are reproducible, so a
// golden mismatch means the output changed, not the input.
func TestGoldenDeterministic(t *testing.T) {
	a, b := newGoldenGroup(t), newGoldenGroup(t)
	for _, p := range [][2][]byte{{a.keyPackage, b.keyPackage}, {a.groupInfo0, b.groupInfo0}, {a.commit, b.commit}} {
		if !bytes.Equal(p[0], p[1]) {
			t.Fatal("two runs with the same seeds built different objects")
		}
	}
}

func TestGoldenKeyPackage(t *testing.T) {
	g := newGoldenGroup(t)
	rep, err := Inspect(g.keyPackage, "", Context{Now: goldenNow})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed() {
		t.Errorf("a check failed on a fresh KeyPackage:\n%s", rep.Text(false))
	}
	golden(t, "keypackage.golden", rep.Text(false))
}

func TestGoldenCommit(t *testing.T) {
	g := newGoldenGroup(t)
	rep, err := Inspect(g.commit, "", Context{Now: goldenNow, GroupInfo: g.groupInfo0})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed() {
		t.Errorf("a check failed on a valid commit:\n%s", rep.Text(false))
	}
	for _, want := range []string{"signature", "valid for the group, as a public observer sees it"} {
		if c := findCheck(rep, "public_message", want); c == nil || c.Status != StatusOK {
			t.Errorf("check %q: %+v, want ok", want, c)
		}
	}
	golden(t, "commit.golden", rep.Text(false))
}

func findCheck(rep *Report, path, name string) *Check {
	for i := range rep.Checks {
		if rep.Checks[i].Path == path && rep.Checks[i].Name == name {
			return &rep.Checks[i]
		}
	}
	return nil
}
