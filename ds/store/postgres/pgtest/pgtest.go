// Package pgtest opens PostgreSQL stores for tests: the server is named by
// MLSD_TEST_POSTGRES (default postgres://postgres@127.0.0.1:5432/test), each
// test gets a schema of its own that is dropped afterwards, and an
// unreachable server fails the test when CI=true and skips it otherwise.
package pgtest

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mlskit/mlskit/ds/store/postgres"
)

// DefaultDSN is used when MLSD_TEST_POSTGRES is unset.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// DSN returns the test database's DSN.
func DSN() string {
	if dsn := os.Getenv("MLSD_TEST_POSTGRES"); dsn != "" {
		return dsn
	}
	return DefaultDSN
}

var n atomic.Int64

// NewSchema returns a schema name unique to this process and call.
func NewSchema() string {
	return fmt.Sprintf("mlsd_test_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9, n.Add(1))
}

// Open opens a store on schema (several calls with one schema act as several
// nodes on one database). The first store opened for a schema drops it at
// cleanup.
func Open(t testing.TB, schema string, drop bool) *postgres.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := postgres.Open(ctx, DSN(), postgres.Options{Schema: schema, MaxConns: 16})
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL at %s unreachable (required when CI=true): %v", "MLSD_TEST_POSTGRES", err)
		}
		t.Skipf("PostgreSQL unreachable, skipping (set MLSD_TEST_POSTGRES): %v", err)
	}
	t.Cleanup(func() {
		if drop {
			// On a connection of its own: the store may be closed by
			// now (storetest.Run closes each store it is given, in a
			// cleanup that runs before this one), and a drop through
			// its pool would fail unseen and leave the schema behind.
			if err := dropSchema(schema); err != nil {
				t.Errorf("pgtest: dropping schema %s: %v", schema, err)
			}
		}
		s.Close()
	})
	return s
}

func dropSchema(schema string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, DSN())
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`)
	return err
}
