package main

import (
	"path/filepath"
	"strings"
	"testing"
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
