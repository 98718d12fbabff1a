package conformance_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/mlskit/mlskit/internal/conformance"
	"github.com/mlskit/mlskit/internal/conformance/vectortest"
)

// TestVectors runs every registered vector file, every case.
//
// Under the race detector the checks are the same but each file keeps only
// its cipher suite 1 cases (and every case that names no suite): the vectors
// are single-goroutine computation apart from the parallel path and tree
// work that suite 1 exercises as well, and the detector makes the P-384 and
// P-521 cases, whose field arithmetic is pure Go, ten times slower. The
// README's test command therefore runs this package a second time without
// the detector, where no case is left out.
func TestVectors(t *testing.T) {
	for _, f := range conformance.Files() {
		t.Run(f, func(t *testing.T) {
			if !raceEnabled {
				vectortest.Check(t, f)
				return
			}
			checkSuiteOne(t, f)
		})
	}
}

func checkSuiteOne(t *testing.T, file string) {
	data, err := os.ReadFile(filepath.Join(vectortest.Dir(t), file))
	if err != nil {
		t.Fatal(err)
	}
	var cases []json.RawMessage
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var kept []json.RawMessage
	for _, c := range cases {
		var s struct {
			Suite *int `json:"cipher_suite"`
		}
		if err := json.Unmarshal(c, &s); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if s.Suite == nil || *s.Suite == 1 {
			kept = append(kept, c)
		}
	}
	if len(kept) == 0 {
		t.Fatalf("%s: no suite 1 case", file)
	}
	sub, err := json.Marshal(kept)
	if err != nil {
		t.Fatal(err)
	}
	vectortest.CheckReport(t, conformance.Run(file, sub))
}
