package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mlskit/mlskit/internal/wire"
	"github.com/mlskit/mlskit/mls"
	"github.com/mlskit/mlskit/storage/sqlite"
)

// inspectFixture is a KeyPackage, a group's GroupInfo and a commit made
// through the public API, written to files.
type inspectFixture struct {
	dir                     string
	kp, gi, commit          []byte
	kpHex, kpBin, kpBare    string // files
	giFile, commitFile, bad string
}

var fixtureNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func newInspectFixture(t *testing.T) *inspectFixture {
	t.Helper()
	cfg := &mls.Config{Now: func() time.Time { return fixtureNow }, PublicHandshakes: true}
	cs := mls.X25519_AES128GCM_SHA256_Ed25519
	sigA, err := mls.GenerateSignatureKeyPair(cs, nil)
	if err != nil {
		t.Fatal(err)
	}
	sigB, err := mls.GenerateSignatureKeyPair(cs, nil)
	if err != nil {
		t.Fatal(err)
	}
	alice, err := mls.NewGroup(cfg, []byte("cli test"), mls.BasicCredential([]byte("alice")), sigA, nil)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := mls.NewKeyPackage(cfg, mls.BasicCredential([]byte("bob")), sigB, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &inspectFixture{dir: t.TempDir(), kp: bob.KeyPackage.Bytes()}
	if f.gi, err = alice.GroupInfo(true, false); err != nil {
		t.Fatal(err)
	}
	res, err := alice.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(bob.KeyPackage)}})
	if err != nil {
		t.Fatal(err)
	}
	f.commit = res.Commit
	m, err := wire.UnmarshalMLSMessage(f.kp)
	if err != nil {
		t.Fatal(err)
	}
	// Hex as people paste it: wrapped lines, mixed case, surrounding blanks.
	h := strings.ToUpper(hex.EncodeToString(f.kp))
	var wrapped strings.Builder
	for i := 0; i < len(h); i += 64 {
		wrapped.WriteString("  " + h[i:min(i+64, len(h))] + "\n")
	}
	f.kpHex = f.write(t, "kp.hex", []byte(wrapped.String()))
	f.kpBin = f.write(t, "kp.bin", f.kp)
	f.kpBare = f.write(t, "kp-bare.bin", m.KeyPackage.Raw())
	f.giFile = f.write(t, "gi.bin", f.gi)
	f.commitFile = f.write(t, "commit.hex", []byte(hex.EncodeToString(f.commit)))
	f.bad = f.write(t, "bad.bin", f.kp[:57])
	return f
}

func (f *inspectFixture) write(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type cliResult struct {
	code           int
	stdout, stderr string
}

func runInspectArgs(stdin []byte, args ...string) cliResult {
	var out, errb bytes.Buffer
	code := runInspect(args, bytes.NewReader(stdin), &out, &errb)
	return cliResult{code, out.String(), errb.String()}
}

func (r cliResult) noPanic(t *testing.T) {
	t.Helper()
	for _, s := range []string{"panic", "goroutine", ".go:"} {
		if strings.Contains(r.stderr, s) || strings.Contains(r.stdout, s) {
			t.Fatalf("output contains %q:\n%s%s", s, r.stdout, r.stderr)
		}
	}
}

func TestInspectCLI(t *testing.T) {
	f := newInspectFixture(t)
	now := "-now=" + fixtureNow.Format(time.RFC3339)

	t.Run("hex with whitespace", func(t *testing.T) {
		r := runInspectArgs(nil, now, f.kpHex)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "MLSMessage ("+strconv.Itoa(len(f.kp))+" bytes, hex input)") ||
			!strings.Contains(r.stdout, "key_package: signature (RFC 9420, Section 10.1): ok") {
			t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("binary from stdin", func(t *testing.T) {
		r := runInspectArgs(f.kp, now, "-")
		if r.code != 0 || !strings.Contains(r.stdout, "binary input") {
			t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("json", func(t *testing.T) {
		r := runInspectArgs(nil, now, "-json", f.kpBin)
		var v struct {
			Type   string
			Size   int
			Checks []struct{ Status string }
		}
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &v) != nil || v.Type != "MLSMessage" || v.Size != len(f.kp) || len(v.Checks) == 0 {
			t.Fatalf("exit %d, %+v\n%s%s", r.code, v, r.stdout, r.stderr)
		}
	})
	t.Run("a check fails: exit 3", func(t *testing.T) {
		r := runInspectArgs(nil, "-now=2099-01-01T00:00:00Z", f.kpBin)
		if r.code != 3 || !strings.Contains(r.stdout, "lifetime (RFC 9420, Section 7.3): FAILED: expired") {
			t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if r := runInspectArgs(nil, "-now=4102444800", f.kpBin); r.code != 3 {
			t.Fatalf("-now in Unix seconds: exit %d\n%s", r.code, r.stderr)
		}
	})
	t.Run("malformed: type, offset and reason, exit 1", func(t *testing.T) {
		r := runInspectArgs(nil, f.bad)
		r.noPanic(t)
		// Cut at 57 bytes, inside the leaf's encryption_key, whose 32 bytes
		// start at byte 42 (4 MLSMessage + 4 version and suite + 33 init_key
		// + its 1-byte length): the bytes from 42 on cannot be parsed.
		want := "mls inspect: malformed MLSMessage at byte 42: truncated (binary input)\n"
		if r.code != 1 || r.stdout != "" || !strings.HasPrefix(r.stderr, want) || !strings.Contains(r.stderr, "give -type") {
			t.Fatalf("exit %d\nstdout %q\nstderr %q\nwant prefix %q", r.code, r.stdout, r.stderr, want)
		}
	})
	t.Run("a bare struct needs -type", func(t *testing.T) {
		r := runInspectArgs(nil, now, f.kpBare)
		if r.code != 1 || !strings.Contains(r.stderr, "malformed MLSMessage") {
			t.Fatalf("without -type: exit %d\n%s", r.code, r.stderr)
		}
		r = runInspectArgs(nil, now, "-type", "key_package", f.kpBare)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "KeyPackage (") {
			t.Fatalf("with -type: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		r = runInspectArgs(nil, "-type", "LeafNode", f.kpBare)
		if r.code != 1 || !strings.Contains(r.stderr, "malformed LeafNode at byte") {
			t.Fatalf("a KeyPackage as a LeafNode: exit %d\n%s", r.code, r.stderr)
		}
	})
	t.Run("commit with the group info", func(t *testing.T) {
		r := runInspectArgs(nil, now, "-group-info", f.giFile, f.commitFile)
		for _, want := range []string{
			"public_message: signature (RFC 9420, Section 6.1): ok: by member at leaf 0",
			"public_message: valid for the group, as a public observer sees it (RFC 9420, Section 12.4.2): ok",
			"public_message: membership_tag (RFC 9420, Section 6.2): not verified: ",
		} {
			if !strings.Contains(r.stdout, want) {
				t.Fatalf("exit %d: no %q in\n%s%s", r.code, want, r.stdout, r.stderr)
			}
		}
		if r.code != 0 {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
		r = runInspectArgs(nil, now, f.commitFile)
		if !strings.Contains(r.stdout, "public_message: signature (RFC 9420, Section 6.1): not verified: the cipher suite is unknown") {
			t.Fatalf("without the group info:\n%s", r.stdout)
		}
	})
	t.Run("usage and input errors", func(t *testing.T) {
		for _, tc := range []struct {
			args   []string
			code   int
			stderr string
		}{
			{[]string{"-type", "Bogus", f.kpBin}, 2, `unknown type "Bogus"`},
			{[]string{f.kpBin, f.kpHex}, 2, "usage: mls inspect"},
			{[]string{"-hex", "-binary", f.kpBin}, 2, "usage: mls inspect"},
			{[]string{"-now", "yesterday", f.kpBin}, 2, "-now"},
			{[]string{"-suite", "x", f.kpBin}, 2, "-suite"},
			{[]string{"-hex", f.kpBin}, 1, "not hex: byte 0"},
			{[]string{filepath.Join(f.dir, "missing")}, 1, "no such file"},
			{[]string{"-group-info", f.kpBin, f.commitFile}, 1, "group info: the MLSMessage is a mls_key_package"},
			{[]string{"-group-info", f.bad, f.commitFile}, 1, "group info: malformed MLSMessage at byte 42: truncated"},
			{[]string{"-suite", "0x0a0a", f.commitFile}, 1, "suite: cipher suite 0x0a0a is not supported"},
		} {
			r := runInspectArgs(nil, tc.args...)
			r.noPanic(t)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, r.code, r.stderr, tc.code, tc.stderr)
			}
		}
		if r := runInspectArgs(nil, "-h"); r.code != 0 || !strings.Contains(r.stdout, "types: MLSMessage, ") || r.stderr != "" {
			t.Errorf("-h: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		if r := runInspectArgs([]byte(" \n")); r.code != 1 || !strings.Contains(r.stderr, "standard input: input is only whitespace") {
			t.Errorf("blank stdin: exit %d, %q", r.code, r.stderr)
		}
	})
}

// TestInspectCLICorrupted feeds every truncation and a bit flip at every
// byte of a commit to the command, with the group info: each run exits 0,
// 1 or 3 and never prints a panic.
func TestInspectCLICorrupted(t *testing.T) {
	f := newInspectFixture(t)
	gi := f.giFile
	counts := map[int]int{}
	for n := 0; n < len(f.commit); n++ {
		r := runInspectArgs(f.commit[:n], "-group-info", gi, "-binary")
		r.noPanic(t)
		want := "malformed MLSMessage at byte "
		if n == 0 {
			want = "standard input: empty input"
		}
		if r.code != 1 || !strings.Contains(r.stderr, want) {
			t.Fatalf("truncated to %d: exit %d\n%s", n, r.code, r.stderr)
		}
		bad := bytes.Clone(f.commit)
		bad[n] ^= 1 << (n % 8)
		r = runInspectArgs(bad, "-group-info", gi, "-binary", "-json")
		r.noPanic(t)
		counts[r.code]++
		switch r.code {
		case 0, 3:
			if !json.Valid([]byte(r.stdout)) {
				t.Fatalf("flip at %d: invalid JSON", n)
			}
		case 1:
			if !strings.Contains(r.stderr, "malformed") {
				t.Fatalf("flip at %d: %s", n, r.stderr)
			}
		default:
			t.Fatalf("flip at %d: exit %d\n%s", n, r.code, r.stderr)
		}
	}
	if counts[3] == 0 {
		t.Fatalf("no bit flip made a check fail: %v", counts)
	}
	t.Logf("bit flips by exit code: %v", counts)
}

func TestRunDispatchesInspect(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"inspect", "-h"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "usage: mls inspect") {
		t.Fatalf("mls inspect -h: exit %d\n%s", code, out.String())
	}
	out.Reset()
	run([]string{"help"}, &out, &errb)
	if !strings.Contains(out.String(), "inspect [flags] [FILE]") {
		t.Fatalf("usage does not list inspect:\n%s", out.String())
	}
}

// TestInspectState: -state reads a client's state directory (DIR/state.db,
// as mls chat keeps it) to open a Welcome to one of its KeyPackages and to
// decrypt its group's messages, and never writes it.
func TestInspectState(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := &mls.Config{Now: func() time.Time { return fixtureNow }}
	cs := mls.X25519_AES128GCM_SHA256_Ed25519
	sigA, _ := mls.GenerateSignatureKeyPair(cs, nil)
	sigB, _ := mls.GenerateSignatureKeyPair(cs, nil)
	alice, err := mls.NewGroup(cfg, []byte("state test"), mls.BasicCredential([]byte("alice")), sigA, nil)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := mls.NewKeyPackage(cfg, mls.BasicCredential([]byte("bob")), sigB, nil)
	if err != nil {
		t.Fatal(err)
	}
	withStore := func(f func(st *sqlite.Store)) {
		st, err := sqlite.Open(filepath.Join(dir, stateFile), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		f(st)
	}
	withStore(func(st *sqlite.Store) {
		if err := mls.SaveKeyPackage(ctx, st, bob); err != nil {
			t.Fatal(err)
		}
	})
	res, err := alice.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(bob.KeyPackage)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	now := "-now=" + fixtureNow.Format(time.RFC3339)
	f := &inspectFixture{dir: dir}
	welcome := f.write(t, "welcome.bin", res.Welcome)
	r := runInspectArgs(nil, now, "-state", dir, welcome)
	if r.code != 0 || !strings.Contains(r.stdout, "welcome: encrypted_group_info decrypts with the welcome_secret (RFC 9420, Section 12.4.3.1): ok") ||
		!strings.Contains(r.stdout, "joiner_secret: 32 bytes (secret, not shown)") {
		t.Fatalf("welcome: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	withStore(func(st *sqlite.Store) {
		if _, err := mls.JoinFromStore(ctx, cfg, st, res.Welcome, nil); err != nil {
			t.Fatal(err)
		}
	})
	msg, err := alice.Encrypt([]byte("hello bob"), nil)
	if err != nil {
		t.Fatal(err)
	}
	file := f.write(t, "msg.bin", msg)
	before, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the state is not written, so the key is still there the second time
		r = runInspectArgs(nil, now, "-state", filepath.Join(dir, stateFile), file)
		if r.code != 0 || !strings.Contains(r.stdout, `application_data: 9 bytes 68656c6c6f20626f62 "hello bob"`) {
			t.Fatalf("message: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	}
	after, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil || !bytes.Equal(before, after) {
		t.Fatalf("inspect changed the state file (%v)", err)
	}
	if r := runInspectArgs(nil, "-state", filepath.Join(dir, "missing"), file); r.code != 1 || !strings.Contains(r.stderr, "-state:") {
		t.Fatalf("missing state: exit %d %q", r.code, r.stderr)
	}
	if r := runInspectArgs(nil, "-state", t.TempDir(), file); r.code != 1 || !strings.Contains(r.stderr, "no client state") {
		t.Fatalf("empty state dir: exit %d %q", r.code, r.stderr)
	}
}
