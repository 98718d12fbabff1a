package storagetest

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

// recorder stands in for a testing.TB to observe Golden's verdict.
type recorder struct {
	testing.TB
	failed bool
	msg    string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.failed = true
	r.msg = fmt.Sprintf(format, args...)
}
func (r *recorder) Fatalf(format string, args ...any) { r.Errorf(format, args...) }
func (r *recorder) Logf(string, ...any)               {}

func TestGolden(t *testing.T) {
	t.Chdir(t.TempDir())
	check := func(name string, got []byte, wantFail bool, wantMsg string) {
		t.Helper()
		r := &recorder{TB: t}
		Golden(r, name, got)
		if r.failed != wantFail || !strings.Contains(r.msg, wantMsg) {
			t.Errorf("Golden(%s, %q): failed=%v %q; want failed=%v containing %q", name, got, r.failed, r.msg, wantFail, wantMsg)
		}
	}

	check("missing", []byte("x"), true, "-update")

	if err := flag.Set("update", "true"); err != nil {
		t.Fatal(err)
	}
	check("state", []byte("stored format v1"), false, "")
	if err := flag.Set("update", "false"); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile("testdata/state.golden"); err != nil || string(b) != "stored format v1" {
		t.Fatalf("-update wrote %q, %v", b, err)
	}

	check("state", []byte("stored format v1"), false, "")
	check("state", []byte("stored format v2"), true, "first difference at offset 15")
	check("state", []byte("stored format v1 and more"), true, "got 25 bytes, want 16")
	check("state", []byte("stored"), true, "first difference at offset 6")
}
