package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mlskit/mlskit/storage"
	"github.com/mlskit/mlskit/storage/sqlite"
)

func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "mlskit-example")
	defer os.RemoveAll(dir)

	s, err := sqlite.Open(filepath.Join(dir, "client.db"), nil)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := s.Write(ctx, &storage.Batch{GroupID: []byte("g"), State: []byte("state"), Epoch: 1}); err != nil {
		panic(err)
	}
	s.Close()

	// Reopened, as after a restart.
	s, err = sqlite.Open(filepath.Join(dir, "client.db"), nil)
	if err != nil {
		panic(err)
	}
	defer s.Close()
	ids, _ := s.ListGroups(ctx)
	fmt.Printf("%q\n", ids)
	// Output: ["g"]
}
