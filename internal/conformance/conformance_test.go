package conformance_test

import (
	"testing"

	"github.com/mlskit/mlskit/internal/conformance"
	"github.com/mlskit/mlskit/internal/conformance/vectortest"
)

// TestVectors runs every registered vector file.
func TestVectors(t *testing.T) {
	for _, f := range conformance.Files() {
		t.Run(f, func(t *testing.T) { vectortest.Check(t, f) })
	}
}
