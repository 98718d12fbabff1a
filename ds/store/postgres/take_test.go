package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/mlskit/mlskit/ds/store/postgres/pgtest"
)

func TestTakeTokensShared(t *testing.T) {
	schema := pgtest.NewSchema()
	a, b := pgtest.Open(t, schema, true), pgtest.Open(t, schema, false)
	ctx := context.Background()
	now := time.Now()
	got := 0
	for i := 0; i < 10; i++ {
		s := a
		if i%2 == 1 {
			s = b
		}
		ok, err := s.TakeTokens(ctx, "k\x00\xff", 0.001, 6, 1, now.Add(time.Duration(i)*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			got++
		}
	}
	if got != 6 {
		t.Fatalf("%d of 10 taken from a bucket of 6 through two stores", got)
	}
}
