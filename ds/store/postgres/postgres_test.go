package postgres_test

import (
	"testing"

	"github.com/mlskit/mlskit/ds/store"
	"github.com/mlskit/mlskit/ds/store/postgres/pgtest"
	"github.com/mlskit/mlskit/ds/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return pgtest.Open(t, pgtest.NewSchema(), true) })
}
