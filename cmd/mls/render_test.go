package main

import (
	"strings"
	"testing"
	"time"

	"github.com/mlskit/mlskit/client"
)

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"hello, world":                      "hello, world",
		"Zoë 山田 Дмитрий":                    "Zoë 山田 Дмитрий",
		"\r\x1b[2Kbob: I agree":             `\r\x1b[2Kbob: I agree`,
		"\x1b]0;pwned\x07":                  `\x1b]0;pwned\x07`,
		"\u009b2K":                          `\u009b2K`,
		"\x9b2K":                            `\x9b2K`,
		"line one\nbob: line two":           `line one\nbob: line two`,
		"invoice\u202egnp.exe":              `invoice\u202egnp.exe`,
		"al\u200bice":                       `al\u200bice`,
		"bad \xff byte":                     `bad \xff byte`,
		"del\x7f":                           `del\x7f`,
		"isolate\u2067x\u2069 sep\u2028end": `isolate\u2067x\u2069 sep\u2028end`,
	} {
		got := clean(in)
		if got != want {
			t.Errorf("clean(%+q) = %q, want %q", in, got, want)
		}
		for _, r := range got {
			if r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || r == 0x202e || r == 0x200b {
				t.Errorf("clean(%+q) kept %U", in, r)
			}
		}
	}
	if got := cleanLines("a\x1b[1m\nb"); got != "a\\x1b[1m\nb" {
		t.Errorf("cleanLines: %q", got)
	}
	if strings.Contains(clean("\x1b"), "\x1b") {
		t.Error("ESC survived")
	}
}

// TestShowNames: a name written entirely in letters of another script that
// look Latin is marked wherever it is shown; a name that reads as another
// member's is marked with that member in the member list.
func TestShowNames(t *testing.T) {
	const fake = "\u0430\u0406\u0456\u0441\u0435" // Cyrillic аІісе, reads "alice"
	for in, want := range map[string]string{
		"alice":                  "alice",
		"Дмитрий":                "Дмитрий",
		fake:                     fake + " [Cyrillic letters that look Latin]",
		"\u039a\u039f\u03a1":     "\u039a\u039f\u03a1 [Greek letters that look Latin]",
		"\u0430\u0440\u0435\x1b": "\u0430\u0440\u0435\\x1b [Cyrillic letters that look Latin]", // marked, and ESC inert
	} {
		if got := showName(in); got != want {
			t.Errorf("showName(%+q) = %q, want %q", in, got, want)
		}
	}
	e := client.Event{Group: "team", Kind: client.EventMessage, From: fake, Text: "hi", Time: time.Unix(0, 0)}
	if got := eventLine(e); !strings.Contains(got, fake+" [Cyrillic letters that look Latin]: hi") {
		t.Errorf("message line %q", got)
	}
	e = client.Event{Group: "team", Kind: client.EventAdded, From: "bob", Members: []string{fake}, Text: "bob added " + fake, Time: time.Unix(0, 0)}
	if got := eventLine(e); !strings.Contains(got, "is written in Cyrillic letters that look Latin") {
		t.Errorf("membership line %q", got)
	}
	var b strings.Builder
	printMembers(&b, &client.Status{Group: "team", Members: []client.Member{{Leaf: 0, Name: "alice", Me: true}, {Leaf: 1, Name: fake}, {Leaf: 2, Name: "bob"}}})
	out := b.String()
	for _, want := range []string{
		"leaf 0    alice (you) [looks like " + fake + " at leaf 1]",
		"leaf 1    " + fake + " [Cyrillic letters that look Latin] [looks like alice at leaf 0]",
		"leaf 2    bob\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("members lack %q:\n%s", want, out)
		}
	}
}

// TestInitNotesLookAlike: choosing a name made of another script's Latin
// look-alikes works, with a note saying how others will see it.
func TestInitNotesLookAlike(t *testing.T) {
	r := mlsCmd(t, t.TempDir(), "offline", "init", "--name", "\u0412\u0435\u0440\u0430") // Вера
	if r.code != 0 || !strings.Contains(r.err, "Cyrillic letters that all look Latin") {
		t.Fatalf("exit %d, stderr %q", r.code, r.err)
	}
	if r := mlsCmd(t, t.TempDir(), "offline", "init", "--name", "Дмитрий"); r.code != 0 || r.err != "" {
		t.Fatalf("a Cyrillic name without look-alikes: exit %d, stderr %q", r.code, r.err)
	}
}
