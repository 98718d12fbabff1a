package main

import (
	"bytes"
	"testing"
)

// TestDemoSmallGroups: "mls demo -n 2" used to make member-1 commit its
// own removal.
func TestDemoSmallGroups(t *testing.T) {
	for _, n := range []string{"2", "3"} {
		var out, errb bytes.Buffer
		if code := run([]string{"demo", "-n", n}, &out, &errb); code != 0 {
			t.Fatalf("demo -n %s: exit %d: %s", n, code, errb.String())
		}
	}
}
