package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	contains(t, ok(t, a, "offline", "process", "files", f("c2")), "bob committed", "epoch 2")
	ok(t, a, "offline", "encrypt", "files", "-o", f("m3"), "after the commit")
	if got := ok(t, b, "offline", "decrypt", "files", f("m3")); got != "after the commit\n" {
		t.Fatalf("bob decrypted %q", got)
	}
	a1 := authenticator(t, a, "files")
	if b1 := authenticator(t, b, "files"); a1 != b1 {
		t.Fatalf("authenticators differ: %s vs %s", a1, b1)
	}
	// A message is processed once; a damaged file fails with a clear error.
	fails(t, b, "processing", "offline", "decrypt", "files", f("m3"))
	os.WriteFile(f("junk"), []byte{0, 1, 0, 2, 9}, 0o644)
	fails(t, b, "processing", "offline", "decrypt", "files", f("junk"))
	fails(t, b, "not for any KeyPackage", "offline", "join", f("w1"))
	fails(t, a, "-o COMMIT", "offline", "commit", "files")
}

// TestHelpEverywhere: every command answers --help with its usage and exit
// status 0.
func TestHelpEverywhere(t *testing.T) {
	for cmd := range chatCommands {
		r := mlsCmd(t, t.TempDir(), cmd, "--help")
		if r.code != 0 || !strings.Contains(r.out+r.err, "usage: mls "+cmd) {
			t.Errorf("mls %s --help: exit %d, output %q", cmd, r.code, r.out+r.err)
		}
	}
	for _, sub := range []string{"init", "keypackage", "create", "commit", "join", "process", "encrypt", "decrypt"} {
		r := mlsCmd(t, t.TempDir(), "offline", sub, "-h")
		if r.code != 0 || !strings.Contains(r.err, "usage: mls offline "+sub) {
			t.Errorf("mls offline %s -h: exit %d, output %q", sub, r.code, r.out+r.err)
		}
	}
}
