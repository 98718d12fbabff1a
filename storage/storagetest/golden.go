package storagetest

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// The -update flag is registered here unless the test binary already has one
// (another package may define it too; defining a flag twice panics).
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite testdata/*.golden files with the current output")
	}
}

func updating() bool {
	f := flag.Lookup("update")
	if f == nil {
		return false
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return false
	}
	v, _ := g.Get().(bool)
	return v
}

// Golden compares got with the file testdata/<name>.golden (relative to the
// test's package directory) and fails the test if they differ or the file is
// missing. Run the tests with -update to write the file instead; review the
// diff before committing it.
//
// The group layer uses this to pin its stored formats: a golden file holds
// the encoding a released build wrote, so a change that would make old state
// unreadable shows up as a failing test rather than as users' lost groups.
// When a format changes on purpose, bump its Envelope version, keep the old
// golden file and a test that the new code still reads it, and add a new one.
func Golden(t testing.TB, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if updating() {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatalf("golden: %v", err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("golden: %v", err)
		}
		t.Logf("golden: wrote %s (%d bytes)", path, len(got))
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden: %v (run the test with -update to create it)", err)
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("golden: %s differs from the output: %s\n"+
			"(if the format change is intended, bump its version, keep the old file, and run with -update)",
			path, describeDiff(got, want))
	}
}

// describeDiff says where two byte strings first differ, with a few bytes of
// context, without dumping possibly large blobs.
func describeDiff(got, want []byte) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	lo := max(0, i-8)
	window := func(b []byte) []byte { return b[min(lo, len(b)):min(i+8, len(b))] }
	return fmt.Sprintf("got %d bytes, want %d; first difference at offset %d: got %x…, want %x… (from offset %d)",
		len(got), len(want), i, window(got), window(want), lo)
}
