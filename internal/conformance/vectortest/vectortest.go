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
	dir := Dir(t)
	rep := conformance.RunFile(dir, file)
	if rep.Err != nil {
		t.Fatalf("%s: %v", file, rep.Err)
	}
	if len(rep.Cases) == 0 {
		t.Fatalf("%s: no cases found", file)
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
