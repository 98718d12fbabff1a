package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/mlskit/mlskit/ds/store/postgres"
	"github.com/mlskit/mlskit/ds/store/postgres/pgtest"
)

// TestUsageTwoNodes: a node's own usage is never missed, whether its
// stored total was read before or after its deltas were written; another
// node's shows within the read cache's lifetime.
func TestUsageTwoNodes(t *testing.T) {
	schema := pgtest.NewSchema()
	a, b := pgtest.Open(t, schema, true), pgtest.Open(t, schema, false)
	ctx := context.Background()
	const k = "account\x00alice"
	usage := func(s interface {
		Usage(context.Context, string) (int64, error)
	}) int64 {
		t.Helper()
		n, err := s.Usage(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// eventually waits until b (which adds nothing, so reads the
	// database or its cache) sees want.
	eventually := func(want int64) {
		t.Helper()
		for end := time.Now().Add(5 * time.Second); usage(b) != want; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("node b sees %d, want %d", usage(b), want)
			}
		}
	}
	if n := usage(a); n != 0 { // a caches the stored 0
		t.Fatalf("fresh total %d", n)
	}
	for i := range 20 {
		if err := a.AddUsage(ctx, k, 100); err != nil {
			t.Fatal(err)
		}
		// Before, during and after the flush of these deltas, a counts
		// every one of them.
		want := int64(100 * (i + 1))
		for range 5 {
			if n := usage(a); n != want {
				t.Fatalf("after %d adds node a sees %d, want %d", i+1, n, want)
			}
			time.Sleep(7 * time.Millisecond)
		}
	}
	eventually(2000)
	if n := usage(a); n != 2000 {
		t.Fatalf("node a sees %d after its flush, want 2000", n)
	}
	if err := b.AddUsage(ctx, k, 50); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(5 * time.Second); usage(a) != 2050; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("node a never saw node b's usage: %d", usage(a))
		}
	}
}

// TestUsageCacheSurvivesFlush: a node's flush of its usage deltas adds
// them to the totals it keeps instead of dropping those, so the quota
// checks of every message do not all go back to the database after each
// flush; and the totals stay exact through it.
func TestUsageCacheSurvivesFlush(t *testing.T) {
	defer postgres.SetUsageTTL(time.Hour)()
	schema := pgtest.NewSchema()
	st := pgtest.Open(t, schema, true)
	ctx := context.Background()
	const k = "group\x00g"
	usage := func(st *postgres.Store) int64 {
		t.Helper()
		n, err := st.Usage(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := usage(st); n != 0 {
		t.Fatalf("fresh total %d", n)
	}
	reads := st.UsageReads()
	var want int64
	for i := range 10 {
		if err := st.AddUsage(ctx, k, int64(10+i)); err != nil {
			t.Fatal(err)
		}
		want += int64(10 + i)
		if n := usage(st); n != want {
			t.Fatalf("before flush %d: %d, want %d", i, n, want)
		}
		st.FlushUsage()
		if n := usage(st); n != want {
			t.Fatalf("after flush %d: %d, want %d", i, n, want)
		}
	}
	if r := st.UsageReads() - reads; r != 0 {
		t.Errorf("%d reads from the database after the first, want 0", r)
	}
	// What the flushes wrote is in the database: another node reads it.
	if n := usage(pgtest.Open(t, schema, false)); n != want {
		t.Errorf("another node reads %d, want %d", n, want)
	}
}

// TestUsageReadDuringFlushNotKept: a total read after a flush wrote its
// deltas but before the flush brought the kept totals up to it already
// holds them; were it kept, the flush would add them twice.
func TestUsageReadDuringFlushNotKept(t *testing.T) {
	defer postgres.SetUsageTTL(time.Hour)()
	st := pgtest.Open(t, pgtest.NewSchema(), true)
	ctx := context.Background()
	const k = "account\x00bob"
	var during int64
	defer postgres.OnFlushWritten(func() {
		n, err := st.Usage(ctx, k)
		if err != nil {
			t.Error(err)
		}
		during = n
	})()
	if err := st.AddUsage(ctx, k, 100); err != nil {
		t.Fatal(err)
	}
	st.FlushUsage()
	if during == 0 {
		t.Fatal("no read during the flush")
	}
	if n, err := st.Usage(ctx, k); err != nil || n != 100 {
		t.Fatalf("after the flush: %d %v, want 100", n, err)
	}
}
