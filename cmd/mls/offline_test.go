package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlskit/mlskit/client"
	"github.com/mlskit/mlskit/mls"
)

// TestOfflineRoundTrip: two state directories form a group and exchange
// messages through files only, no server.
func TestOfflineRoundTrip(t *testing.T) {
	root := t.TempDir()
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	f := func(name string) string { return filepath.Join(root, name) }
	ok(t, a, "offline", "init", "--name", "alice")
	ok(t, b, "offline", "init", "--name", "bob")
	ok(t, b, "offline", "keypackage", "-o", f("bob.kp"))
	ok(t, a, "offline", "create", "files")
	contains(t, ok(t, a, "offline", "commit", "files", "--add", f("bob.kp"), "-o", f("c1"), "--welcome", f("w1")), "epoch 1")
	contains(t, ok(t, b, "offline", "join", f("w1")), `joined group "files"`)

	ok(t, a, "offline", "encrypt", "files", "-o", f("m1"), "hello", "bob")
	if got := ok(t, b, "offline", "decrypt", "files", f("m1")); got != "hello bob\n" {
		t.Fatalf("bob decrypted %q", got)
	}
	ok(t, b, "offline", "encrypt", "files", "-o", f("m2"), "-hex", "hi alice")
	if data, _ := os.ReadFile(f("m2")); strings.ContainsAny(strings.TrimSpace(string(data)), "ghijklmnopqrstuvwxyz\x00") {
		t.Fatalf("-hex wrote non-hex: %q", data)
	}
	if got := ok(t, a, "offline", "decrypt", "-hex", "files", f("m2")); got != "hi alice\n" {
		t.Fatalf("alice decrypted %q", got)
	}
	// A commit file moves both to the next epoch; old-epoch keys are gone
	// for new messages.
	ok(t, b, "offline", "commit", "files", "-o", f("c2"))
	contains(t, ok(t, a, "offline", "process", "files", f("c2")), "bob updated their keys (epoch 2)")
	a1 := authenticator(t, a, "files")
	if b1 := authenticator(t, b, "files"); a1 != b1 {
		t.Fatalf("authenticators differ: %s vs %s", a1, b1)
	}
	// --public: the commit is a PublicMessage (wire_format 1), which the
	// other member processes like any other; --group-info writes the new
	// epoch's GroupInfo, which inspect takes as context.
	ok(t, a, "offline", "commit", "files", "--public", "-o", f("c3"), "--group-info", f("gi3"))
	if data, _ := os.ReadFile(f("c3")); len(data) < 4 || data[3] != 1 {
		t.Fatalf("--public wrote wire_format %x", data[2:4])
	}
	contains(t, ok(t, b, "offline", "process", "files", f("c3")), "alice updated their keys (epoch 3)")
	if gi, _ := os.ReadFile(f("gi3")); len(gi) < 4 || gi[3] != 4 {
		t.Fatalf("--group-info wrote no GroupInfo: %x", gi)
	}
	// Dave joins by external commit from that GroupInfo (as another
	// implementation would); process says who joined.
	gi, err := os.ReadFile(f("gi3"))
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := mls.GenerateSignatureKeyPair(mls.X25519_AES128GCM_SHA256_Ed25519, nil)
	join, err := mls.ExternalJoin(&mls.Config{}, gi, mls.BasicCredential([]byte("dave")), sig, nil)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(f("ext"), join.Commit, 0o644)
	for _, dir := range []string{a, b} {
		out := ok(t, dir, "offline", "process", "files", f("ext"))
		contains(t, out, "dave joined the group from outside (external commit, epoch 4)")
		if strings.Contains(out, "0 added") {
			t.Fatalf("process of an external commit: %s", out)
		}
	}
	contains(t, ok(t, a, "members", "files"), "epoch 4, 3 members", "leaf 2    dave")
	ok(t, a, "offline", "encrypt", "files", "-o", f("m3"), "after the commit")
	if got := ok(t, b, "offline", "decrypt", "files", f("m3")); got != "after the commit\n" {
		t.Fatalf("bob decrypted %q", got)
	}
	// A message is processed once; a damaged file fails with a clear error.
	fails(t, b, "processing", "offline", "decrypt", "files", f("m3"))
	os.WriteFile(f("junk"), []byte{0, 1, 0, 2, 9}, 0o644)
	fails(t, b, "processing", "offline", "decrypt", "files", f("junk"))
	fails(t, b, "not for any KeyPackage", "offline", "join", f("w1"))
	fails(t, a, "-o COMMIT", "offline", "commit", "files")
}

// TestHelpEverywhere: every command and subcommand answers -h, -help and
// --help with its own usage on stdout and exit status 0; an unknown flag
// or command is bad usage: a message on stderr and exit status 2.
func TestHelpEverywhere(t *testing.T) {
	type tc struct {
		args []string
		code int
		out  string // a part of stdout
		err  string // a part of stderr
	}
	var cases []tc
	for cmd := range chatCommands {
		if cmd == "offline" || cmd == "cert" {
			continue // subcommands below
		}
		for _, h := range []string{"-h", "--help"} {
			cases = append(cases, tc{[]string{cmd, h}, 0, "usage: mls " + cmd + " " + chatCommands[cmd], ""})
		}
		// What the command does, not the list of every command.
		cases = append(cases, tc{[]string{cmd, "-help"}, 0, chatHelp[cmd][:20], ""})
		cases = append(cases, tc{[]string{cmd, "--bogus"}, 2, "", "flag provided but not defined: -bogus"})
	}
	for sub := range offlineArgs {
		cases = append(cases,
			tc{[]string{"offline", sub, "--help"}, 0, "usage: mls offline " + sub, ""},
			tc{[]string{"offline", sub, "--bogus"}, 2, "", "flag provided but not defined"})
	}
	for _, sub := range []string{"import", "crl", "request"} {
		cases = append(cases,
			tc{[]string{"cert", sub, "--help"}, 0, "usage: mls cert " + sub, ""},
			tc{[]string{"cert", sub, "--bogus"}, 2, "", "flag provided but not defined"})
	}
	cases = append(cases,
		tc{[]string{"--help"}, 0, "usage: mls <command>", ""},
		tc{[]string{"help"}, 0, "usage: mls <command>", ""},
		tc{[]string{"help", "send"}, 0, "usage: mls send GROUP TEXT...", ""},
		tc{[]string{"help", "inspect"}, 0, "usage: mls inspect", ""},
		tc{[]string{"help", "frobnicate"}, 2, "", "unknown command \"frobnicate\""},
		tc{[]string{}, 2, "", "usage: mls <command>"},
		tc{[]string{"frobnicate"}, 2, "", "unknown command \"frobnicate\""},
		tc{[]string{"offline", "--help"}, 0, "MLS objects as files", ""},
		tc{[]string{"offline"}, 2, "", "MLS objects as files"},
		tc{[]string{"offline", "frobnicate"}, 2, "", "unknown command"},
		tc{[]string{"cert", "--help"}, 0, "usage: mls cert <command>", ""},
		tc{[]string{"cert"}, 2, "", "usage: mls cert <command>"},
		tc{[]string{"demo", "--help"}, 0, "usage: mls demo", ""},
		tc{[]string{"demo", "-h"}, 0, "-public-handshakes", ""},
		tc{[]string{"demo", "--bogus"}, 2, "", "flag provided but not defined"},
		tc{[]string{"demo", "extra"}, 2, "", "unexpected argument"},
		tc{[]string{"vectors", "--help"}, 0, "usage: mls vectors verify", ""},
		tc{[]string{"vectors", "verify", "--help"}, 0, "usage: mls vectors verify", ""},
		tc{[]string{"vectors", "verify", "--bogus"}, 2, "", "flag provided but not defined"},
		tc{[]string{"vectors"}, 2, "", "usage: mls vectors verify"},
		tc{[]string{"inspect", "--help"}, 0, "usage: mls inspect", ""},
		tc{[]string{"inspect", "-h"}, 0, "types: MLSMessage", ""},
		tc{[]string{"inspect", "--bogus"}, 2, "", "flag provided but not defined"},
	)
	for _, c := range cases {
		var out, errb bytes.Buffer
		args := c.args
		if len(args) > 0 && isChatCommand(args[0]) {
			args = append(args, "--dir", t.TempDir())
		}
		code := run(args, &out, &errb)
		name := "mls " + strings.Join(c.args, " ")
		if code != c.code {
			t.Errorf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", name, code, c.code, out.String(), errb.String())
			continue
		}
		if c.code == 0 && (errb.Len() != 0 || !strings.Contains(out.String(), c.out)) {
			t.Errorf("%s: want %q on stdout and nothing on stderr\nstdout: %s\nstderr: %s", name, c.out, out.String(), errb.String())
		}
		if c.code != 0 && (out.Len() != 0 || !strings.Contains(errb.String(), c.err)) {
			t.Errorf("%s: want %q on stderr and nothing on stdout\nstdout: %s\nstderr: %s", name, c.err, out.String(), errb.String())
		}
	}
}

// TestBusyDirectory: a directory another process uses is an error (exit
// 1, docs/CLI.md), not bad usage; looking at it still works.
func TestBusyDirectory(t *testing.T) {
	dir := t.TempDir()
	ok(t, dir, "offline", "init", "--name", "alice")
	ok(t, dir, "offline", "create", "g")
	held, err := client.Open(dir) // as a running "mls follow" would
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	r := mlsCmd(t, dir, "offline", "create", "h")
	if r.code != 1 || !strings.Contains(r.err, "another mls command is using") {
		t.Fatalf("busy directory: exit %d, stderr %q", r.code, r.err)
	}
	contains(t, ok(t, dir, "members", "g"), "alice (you)")
}
