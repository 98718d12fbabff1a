package main

import (
	"strings"
	"testing"
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
