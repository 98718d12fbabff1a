package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/mlskit/mlskit/ds/store"
	"github.com/mlskit/mlskit/ds/store/postgres/pgtest"
	"github.com/mlskit/mlskit/ds/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return pgtest.Open(t, pgtest.NewSchema(), true) })
}

// BenchmarkAppend: go test -run '^$' -bench Append ./ds/store/postgres/
// (with MLSD_TEST_POSTGRES set).
func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{0, 256 << 10, 2 << 20} {
		b.Run(fmt.Sprint("groupinfo=", size), func(b *testing.B) {
			storetest.BenchmarkAppend(b, pgtest.Open(b, pgtest.NewSchema(), true), size)
		})
	}
}

// TestSchemaDropped: a test's schema is gone once the test is, even when
// the test closed its store itself (as storetest.Run does).
func TestSchemaDropped(t *testing.T) {
	pgtest.Open(t, pgtest.NewSchema(), true) // skips without a server (fails with CI=true)
	schema := pgtest.NewSchema()
	t.Run("closes its store", func(t *testing.T) {
		s := pgtest.Open(t, schema, true)
		t.Cleanup(func() { s.Close() })
	})
	ctx := context.Background()
	c, err := pgx.Connect(ctx, pgtest.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, schema).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("schema %s left behind", schema)
	}
}
