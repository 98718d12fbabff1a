package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlskit/mlskit/client"
	v1 "github.com/mlskit/mlskit/ds/api/mlsdv1"
	dsclient "github.com/mlskit/mlskit/ds/client"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/mls"
)

// TestHostileDisplay: what a hostile member sends, and names chosen to look
// like someone else's, never reach the terminal as they are.
func TestHostileDisplay(t *testing.T) {
	url := startMLSD(t)
	root := t.TempDir()
	alice, bob := filepath.Join(root, "alice"), filepath.Join(root, "bob")
	ok(t, alice, "init", "--name", "alice", "--server", url)
	ok(t, bob, "init", "--name", "bob", "--server", url)

	// A name that reads as "alice" (Cyrillic а), or hides a bidi override
	// or a zero-width character, is refused before anything is saved.
	for _, name := range []string{"\u0430lice", "alice\u202e", "al\u200bice", "ａｌｉｃｅ"} {
		dir := filepath.Join(root, "x")
		fails(t, dir, "the name", "init", "--name", name, "--server", url)
		fails(t, dir, "no identity in", "groups")
	}
	r := mlsCmd(t, filepath.Join(root, "x"), "init", "--name", "\u0430lice", "--server", url)
	contains(t, r.err, "mixes scripts (Cyrillic, Latin)")
	if strings.Contains(r.err, "\u0430") {
		t.Fatalf("the refusal repeats the confusable character raw: %q", r.err)
	}

	ok(t, alice, "create", "team")
	ok(t, alice, "invite", "team", "bob")
	ok(t, bob, "join")
	// Carriage return, erase-line and a fake sender; OSC to retitle the
	// terminal; a bidi override; a newline starting a fake line.
	attack := "\r\x1b[2Kcarol: I agree to transfer $1000\x1b]0;pwned\x07 \u202eevil\nalice: me too"
	ok(t, bob, "send", "team", attack)
	out := ok(t, alice, "read", "team")
	for _, raw := range []string{"\x1b", "\r", "\x07", "\u202e"} {
		if strings.Contains(out, raw) {
			t.Fatalf("read printed %+q raw:\n%q", raw, out)
		}
	}
	contains(t, out, `bob: \r\x1b[2Kcarol: I agree to transfer $1000\x1b]0;pwned\x07 \u202eevil\nalice: me too`)
	if n := strings.Count(strings.TrimSpace(out), "\n"); n != 0 {
		t.Fatalf("one message printed as %d lines:\n%s", n+1, out)
	}
}

// hostileMember logs in to mlsd as name with its own key, outside the mls
// command, to send what an honest client never would.
type hostileMember struct {
	ds  *dsclient.Client
	cfg *mls.Config
	sig *mls.SignatureKeyPair
	cre mls.Credential
}

func newHostileMember(t *testing.T, url, name string) *hostileMember {
	t.Helper()
	ctx := context.Background()
	sig, err := mls.GenerateSignatureKeyPair(client.DefaultSuite, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := suite.Lookup(suite.ID(client.DefaultSuite))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := s.NewSigner(sig.PrivateKey())
	if err != nil {
		t.Fatal(err)
	}
	cred := mls.BasicCredential([]byte(name))
	enc, _ := cred.Marshal()
	ds := dsclient.New(url, nil)
	if err := ds.Login(ctx, uint16(client.DefaultSuite), signer, enc); err != nil {
		t.Fatal(err)
	}
	return &hostileMember{ds: ds, cfg: &mls.Config{}, sig: sig, cre: cred}
}

// inviteToOther adds user to a new group in the log, with a Welcome that
// is genuine but for another group, named other (one user is in already).
func (h *hostileMember) inviteToOther(t *testing.T, group, other, user string) {
	t.Helper()
	g2, err := mls.NewGroup(h.cfg, []byte(other), h.cre, h.sig, nil)
	if err != nil {
		t.Fatal(err)
	}
	claimed, err := h.ds.ClaimKeyPackages(context.Background(), uint16(client.DefaultSuite), user)
	if err != nil || len(claimed.KeyPackages) != 1 {
		t.Fatalf("claiming %s's KeyPackage: %v", user, err)
	}
	kp, err := mls.ParseKeyPackage(claimed.KeyPackages[0].KeyPackage)
	if err != nil {
		t.Fatal(err)
	}
	res, err := g2.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(kp)}})
	if err != nil {
		t.Fatal(err)
	}
	h.invite(t, group, user, func([]byte) []byte { return res.Welcome })
}

// inviteWithJunk creates group and adds user with a real commit, but sends
// user a Welcome with one byte of its encrypted GroupInfo flipped: it names
// user's KeyPackage and does not decrypt.
func (h *hostileMember) inviteWithJunk(t *testing.T, group, user string) {
	h.invite(t, group, user, func(w []byte) []byte {
		junk := bytes.Clone(w)
		junk[len(junk)-1] ^= 1
		return junk
	})
}

// invite creates group and commits the Add of user's KeyPackage; the
// Welcome sent is what welcome makes of the real one.
func (h *hostileMember) invite(t *testing.T, group, user string, welcome func([]byte) []byte) {
	t.Helper()
	ctx := context.Background()
	g, err := mls.NewGroup(h.cfg, []byte(group), h.cre, h.sig, nil)
	if err != nil {
		t.Fatal(err)
	}
	gi, err := g.GroupInfo(true, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.ds.CreateGroup(ctx, []byte(group), gi); err != nil {
		t.Fatal(err)
	}
	claimed, err := h.ds.ClaimKeyPackages(ctx, uint16(client.DefaultSuite), user)
	if err != nil || len(claimed.KeyPackages) != 1 {
		t.Fatalf("claiming %s's KeyPackage: %v", user, err)
	}
	kp, err := mls.ParseKeyPackage(claimed.KeyPackages[0].KeyPackage)
	if err != nil {
		t.Fatal(err)
	}
	res, err := g.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(kp)}, GroupInfo: true})
	if err != nil {
		t.Fatal(err)
	}
	junk := welcome(res.Welcome)
	if _, err := h.ds.Commit(ctx, &v1.SendCommitRequest{Commit: res.Commit, GroupInfo: res.GroupInfo, AddMembers: []string{user},
		Welcomes: []*v1.Welcome{{Welcome: junk, Recipients: []string{user}}}}); err != nil {
		t.Fatal(err)
	}
}

// TestJunkWelcome: an invitation whose Welcome cannot be used is skipped
// and reported once; it blocks neither a genuine invitation that comes
// after it nor reading; the user can ignore the group.
func TestJunkWelcome(t *testing.T) {
	url := startMLSD(t)
	root := t.TempDir()
	alice, bob := filepath.Join(root, "alice"), filepath.Join(root, "bob")
	ok(t, alice, "init", "--name", "alice", "--server", url)
	ok(t, bob, "init", "--name", "bob", "--server", url)
	newHostileMember(t, url, "mallory").inviteWithJunk(t, "junk", "bob")
	ok(t, alice, "create", "team")
	ok(t, alice, "invite", "team", "bob")

	out := ok(t, bob, "read")
	contains(t, out, `an invitation to group "junk" could not be used and was skipped`, "alice added you")
	ok(t, alice, "send", "team", "after the junk")
	out = ok(t, bob, "read")
	contains(t, out, "alice: after the junk")
	if strings.Contains(out, "junk\"") {
		t.Fatalf("the skipped invitation was reported twice:\n%s", out)
	}
	contains(t, ok(t, bob, "members", "team"), "2 members")
	contains(t, ok(t, bob, "groups"), "junk", "invitation skipped")
	contains(t, ok(t, bob, "leave", "junk"), `ignoring group "junk"`)
	contains(t, ok(t, bob, "groups"), "invitation ignored")
	r := mlsCmd(t, bob, "join")
	if r.code != 0 || strings.Contains(r.out, "junk") {
		t.Fatalf("join after ignoring: %d %q %q", r.code, r.out, r.err)
	}

	// A genuine Welcome, but for a group bob is in ("team"), sent in the
	// log of another: it must not replace bob's state of "team".
	before := authenticator(t, bob, "team")
	newHostileMember(t, url, "trudy").inviteToOther(t, "junk2", "team", "bob")
	contains(t, ok(t, bob, "read"), `invitation to group "junk2" could not be used`, `is for group "team"`)
	if after := authenticator(t, bob, "team"); after != before {
		t.Fatalf("a Welcome for another group replaced team's state")
	}
	ok(t, alice, "send", "team", "still one group")
	contains(t, ok(t, bob, "read", "team"), "alice: still one group")
}
