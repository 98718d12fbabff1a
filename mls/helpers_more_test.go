package mls_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/mlskit/mlskit/mls"
)

// Helpers shared by the scenario, scale, hostile-input and window tests.

const fastSuite = mls.X25519_AES128GCM_SHA256_Ed25519

// seeded makes the test repeatable: crypto/rand (signing, HPKE
// encapsulation) is replaced for the test's duration, and the returned
// reader is meant for Config.Rand. Each call with a different salt gives an
// independent stream, so two clients never draw the same keys.
func seeded(t *testing.T, seed uint64) {
	t.Helper()
	cryptotest.SetGlobalRandom(t, seed)
}

func seededRand(salt string) *mrand.ChaCha8 {
	return mrand.NewChaCha8(sha256.Sum256([]byte("mlskit test " + salt)))
}

// fixedNow is the clock of detConfig: KeyPackage lifetimes are part of
// what is signed and hashed, so a moving clock would change every run. It
// is the time the test process started (whole seconds), so that it agrees
// with Configs that read the real clock, or MLS_TEST_NOW (Unix seconds) to
// replay a run exactly in another process.
func fixedNow() time.Time { return testClock }

var testClock = func() time.Time {
	if s := os.Getenv("MLS_TEST_NOW"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(n, 0)
		}
	}
	return time.Now().Truncate(time.Second)
}()

// detConfig is a Config with a seeded Rand.
func detConfig(salt string, pub bool) *mls.Config {
	return &mls.Config{Rand: seededRand(salt), PublicHandshakes: pub, Now: fixedNow}
}

// newGroupClient creates name's client and a one-member group.
func newGroupClient(t testing.TB, name string, cs mls.CipherSuite, cfg *mls.Config, opts *mls.GroupOptions) *client {
	t.Helper()
	c := newClient(t, name, cs, cfg)
	var err error
	c.g, err = mls.NewGroup(cfg, []byte("group"), c.cred, c.sig, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// keyPackageWith is keyPackage with options.
func (c *client) keyPackageWith(t testing.TB, opts *mls.KeyPackageOptions) *mls.KeyPackage {
	t.Helper()
	b, err := mls.NewKeyPackage(c.cfg, c.cred, c.sig, opts)
	if err != nil {
		t.Fatal(err)
	}
	c.bundle = b
	kp, err := mls.ParseKeyPackage(b.KeyPackage.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// process hands msg to c and merges a commit.
func process(t testing.TB, c *client, msg []byte) *mls.Received {
	t.Helper()
	r, err := c.g.Process(msg)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	if r.Commit != nil {
		if err := c.g.MergeStagedCommit(r.Commit); err != nil {
			t.Fatalf("%s merging: %v", c.name, err)
		}
	}
	return r
}

// wantErr fails unless err matches every sentinel in want.
func wantErr(t testing.TB, what string, err error, want ...error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: succeeded, want %v", what, want)
	}
	for _, w := range want {
		if !errors.Is(err, w) {
			t.Fatalf("%s: got %v, want errors.Is %v", what, err, w)
		}
	}
}

// publicSentinels are the classes every error caused by peer input must
// match one of (mls/errors.go).
var publicSentinels = []error{mls.ErrMalformed, mls.ErrWrongGroup, mls.ErrWrongEpoch, mls.ErrInvalidSignature,
	mls.ErrInvalidMembershipTag, mls.ErrInvalidConfirmationTag, mls.ErrUnknownSender, mls.ErrDecrypt,
	mls.ErrKeyUnavailable, mls.ErrInvalidProposal, mls.ErrInvalidCommit, mls.ErrInvalidTree,
	mls.ErrInvalidKeyPackage, mls.ErrInvalidWelcome, mls.ErrNoMatchingKeyPackage, mls.ErrMissingPSK,
	mls.ErrCredentialRejected, mls.ErrUnsupported, mls.ErrNotAuthorized, mls.ErrGroupInactive, mls.ErrGroupExists}

// sentinelOf names the public classes err matches ("" for none).
func sentinelOf(err error) string {
	var names []string
	for _, s := range publicSentinels {
		if errors.Is(err, s) {
			names = append(names, s.Error())
		}
	}
	return strings.Join(names, "|")
}

// typed fails unless err is non-nil and matches a public sentinel, and, if
// it is a validation failure, is a *ValidationError or *DecodeError.
func typed(t testing.TB, what string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: accepted", what)
	}
	if sentinelOf(err) == "" {
		t.Fatalf("%s: untyped error %v", what, err)
	}
	if errors.Is(err, mls.ErrMalformed) {
		var de *mls.DecodeError
		var ve *mls.ValidationError
		if !errors.As(err, &de) && !errors.As(err, &ve) {
			t.Fatalf("%s: malformed input without a *DecodeError: %v", what, err)
		}
	}
}

// noPanic runs f and turns a panic into a test failure naming what.
func noPanic(t testing.TB, what string, f func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("%s: panic: %v", what, r)
		}
	}()
	f()
}

// fingerprint summarises everything about a group that a failed operation
// must leave as it was: epoch, epoch authenticator, tree hash, exporter
// output, pending proposals and commit, members, and which message keys of
// the current epoch's secret tree are still available (via the export_test
// hook; this catches a consumed generation).
func fingerprint(t testing.TB, g *mls.Group) string {
	t.Helper()
	return fingerprintWith(t, g, mls.KeyAvailability)
}

// fingerprintWith is fingerprint with the key availability computed by
// avail (mls.KeyAvailability or its memoised form).
func fingerprintWith(t testing.TB, g *mls.Group, avail func(*mls.Group, int) string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "epoch=%d active=%v pending=%v\n", g.Epoch(), g.Active(), g.HasPendingCommit())
	fmt.Fprintf(&b, "auth=%x\ntree=%x\n", g.EpochAuthenticator(), g.TreeHash())
	exp, err := g.Export("fingerprint", []byte("ctx"), 32)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "export=%x\n", exp)
	for _, p := range g.PendingProposals() {
		fmt.Fprintf(&b, "proposal %d %x\n", p.Type, p.Ref)
	}
	for _, m := range g.Members() {
		fmt.Fprintf(&b, "member %d %x\n", m.Index, m.SignatureKey)
	}
	b.WriteString(avail(g, 12))
	return b.String()
}

// unchanged fails if g's fingerprint differs from before.
func unchanged(t testing.TB, what string, g *mls.Group, before string) {
	t.Helper()
	if after := fingerprint(t, g); after != before {
		t.Fatalf("%s changed the group:\n%s", what, diffLines(before, after))
	}
}

// unchangedButBurned is unchanged, except that at most one message key of
// the current epoch may have been consumed (one '+' turned 'u'): RFC 9420,
// Section 9.2 deletes a key once a message decrypted with it, and the
// package documents that a PrivateMessage whose sender data decrypts uses
// up its generation even if the rest of it is then rejected. It reports
// whether a key was consumed.
func unchangedButBurned(t testing.TB, what string, g *mls.Group, before string) bool {
	t.Helper()
	after := fingerprint(t, g)
	if after == before {
		return false
	}
	al, bl := strings.Split(before, "\n"), strings.Split(after, "\n")
	burned := 0
	if len(al) == len(bl) {
		for i := range al {
			if al[i] == bl[i] {
				continue
			}
			if len(al[i]) != len(bl[i]) || !strings.Contains(al[i], " leaf ") {
				burned = 99
				break
			}
			for j := range al[i] {
				if al[i][j] != bl[i][j] {
					if al[i][j] == '+' && bl[i][j] == 'u' {
						burned++
					} else {
						burned = 99
					}
				}
			}
		}
	}
	if burned != 1 {
		t.Fatalf("%s changed the group beyond consuming one key:\n%s", what, diffLines(before, after))
	}
	return true
}

// unchangedAfter is unchanged for a message sent as a PublicMessage, and
// unchangedButBurned for one sent as a PrivateMessage.
func unchangedAfter(t testing.TB, what string, g *mls.Group, before string, private bool) {
	t.Helper()
	if private {
		unchangedButBurned(t, what, g, before)
		return
	}
	unchanged(t, what, g, before)
}

func diffLines(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out strings.Builder
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			fmt.Fprintf(&out, "- %s\n+ %s\n", x, y)
		}
	}
	return out.String()
}
