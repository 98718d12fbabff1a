// Package vectortest runs conformance checkers under `go test`.
package vectortest

import (
	"os"
	"testing"

	"github.com/mlskit/mlskit/internal/conformance"
)

// Dir returns the vector directory, or skips the test with instructions when
// it is absent. With MLS_REQUIRE_VECTORS=1 (which .ci/run sets) a missing
// directory fails the test instead.
func Dir(t testing.TB) string {
	t.Helper()
	d, err := conformance.Dir()
	if err != nil {
		if os.Getenv("MLS_REQUIRE_VECTORS") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	return d
}

// Check runs the checker for file and reports each case as a subtest. A
// skipped case fails: conformance has no optional cases.
func Check(t *testing.T, file string) {
	t.Helper()
	CheckReport(t, conformance.RunFile(Dir(t), file))
}

// CheckReport reports each case of rep as a subtest, failing on a file that
// could not be read, on one with no cases, and on any skipped case.
func CheckReport(t *testing.T, rep conformance.Report) {
	t.Helper()
	if rep.Err != nil {
		t.Fatalf("%s: %v", rep.File, rep.Err)
	}
	if len(rep.Cases) == 0 {
		t.Fatalf("%s: no cases found", rep.File)
	}
	for _, c := range rep.Cases {
		t.Run(c.Name, func(t *testing.T) {
			switch {
			case c.Skipped:
				t.Errorf("case was not run: %v", c.Err)
			case c.Err != nil:
				t.Error(c.Err)
			}
		})
	}
}
