package postgres

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mlskit/mlskit/ds/store"
	"github.com/mlskit/mlskit/ds/store/storetest"
)

var schemaN atomic.Int64

// OpenTest opens a store in a fresh schema of the test database named by
// MLSD_TEST_POSTGRES, dropped when the test ends. If the server is
// unreachable the test fails when CI=true and is skipped otherwise.
func openTest(t *testing.T) *Store {
	t.Helper()
	dsn := os.Getenv("MLSD_TEST_POSTGRES")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	schema := fmt.Sprintf("mlsd_test_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6, schemaN.Add(1))
	s, err := Open(ctx, dsn, Options{Schema: schema, MaxConns: 16})
	if err == nil {
		err = s.pool.Ping(ctx)
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL at MLSD_TEST_POSTGRES unreachable (required in CI): %v", err)
		}
		t.Skipf("PostgreSQL unreachable, skipping (set MLSD_TEST_POSTGRES): %v", err)
	}
	t.Cleanup(func() {
		s.DropSchema(context.Background())
		s.Close()
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTest(t) })
}
