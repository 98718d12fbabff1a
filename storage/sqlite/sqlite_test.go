package sqlite

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/mlskit/mlskit/storage"
	"github.com/mlskit/mlskit/storage/storagetest"
)

// openTemp opens a fresh store in t's temporary directory.
func openTemp(t testing.TB, opts *Options) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mls.db")
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestConformance(t *testing.T) {
	var n atomic.Int64
	dir := t.TempDir()
	storagetest.Run(t, func(t *testing.T) storage.Store {
		s, err := Open(filepath.Join(dir, fmt.Sprintf("store-%d.db", n.Add(1))), nil)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}
