package memory_test

import (
	"testing"

	"github.com/mlskit/mlskit/storage"
	"github.com/mlskit/mlskit/storage/memory"
	"github.com/mlskit/mlskit/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(*testing.T) storage.Store { return memory.New() })
}
