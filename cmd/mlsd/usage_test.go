package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestUsageExitCodes: help on every command goes to stdout with exit 0;
// bad usage goes to stderr with exit 2 (docs/mlsd.md).
func TestUsageExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args    string
		code    int
		stdout  string // a part of stdout, "" for empty
		stderr  string // a part of stderr, "" for empty
		badWord string // must appear in neither stream
	}{
		{"--help", 0, "usage: mlsd [serve]", "", "help requested"},
		{"-h", 0, "usage: mlsd [serve]", "", "help requested"},
		{"help", 0, "mlsd ca init", "", ""},
		{"serve --help", 0, "-listen", "", "help requested"},
		{"serve -h", 0, "-max-message-size", "", ""},
		{"ca --help", 0, "usage: mlsd ca <command>", "", ""},
		{"ca init --help", 0, "usage: mlsd ca init", "", ""},
		{"ca issue -help", 0, "usage: mlsd ca issue -dir DIR -client ID", "", ""},
		{"ca revoke --help", 0, "-serial", "", ""},
		{"ca crl --help", 0, "usage: mlsd ca crl", "", ""},
		{"--no-such-flag", 2, "", "flag provided but not defined: -no-such-flag", ""},
		{"serve -listen", 2, "", "flag needs an argument", ""},
		{"serve -log-level loud", 2, "", "-log-level", ""},
		{"serve extra", 2, "", "unexpected argument", ""},
		{"frobnicate", 2, "", "unknown command \"frobnicate\"", ""},
		{"ca", 2, "", "usage: mlsd ca <command>", ""},
		{"ca mint", 2, "", "unknown command \"mint\"", ""},
		{"ca init --bogus", 2, "", "flag provided but not defined: -bogus", ""},
	} {
		t.Run(tc.args, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := exitCode(run(context.Background(), strings.Fields(tc.args), &out, &errb), &errb)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out.String(), errb.String())
			}
			for _, c := range []struct {
				name, got, want string
			}{{"stdout", out.String(), tc.stdout}, {"stderr", errb.String(), tc.stderr}} {
				if c.want == "" && c.got != "" {
					t.Errorf("%s is not empty: %q", c.name, c.got)
				}
				if !strings.Contains(c.got, c.want) {
					t.Errorf("%s lacks %q: %q", c.name, c.want, c.got)
				}
				if tc.badWord != "" && strings.Contains(c.got, tc.badWord) {
					t.Errorf("%s says %q", c.name, tc.badWord)
				}
			}
		})
	}
}
