package postgres_test

import (
	"fmt"
	"testing"

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
