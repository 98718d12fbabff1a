package server_test

import (
	"fmt"
	"testing"

	v1 "github.com/mlskit/mlskit/ds/api/mlsdv1"
	"github.com/mlskit/mlskit/ds/store/postgres/pgtest"
)

// The PublicGroups mlsd follows for groups with public handshakes are an
// LRU bounded in bytes: with room for about two groups, six groups that
// commit in turn keep it under its bound, every group is evicted and
// followed again from the store, and every commit is still validated
// against the right state (the members stay in step).
func TestFollowerCacheEviction(t *testing.T) {
	const bound = 12 << 10
	run := func(t *testing.T, e *env) {
		alice, bob := e.peer(t, "alice", true), e.peer(t, "bob", true)
		const groups = 6
		bob.publish(groups)
		var gids []string
		for i := 0; i < groups; i++ {
			gid := fmt.Sprint("followed-", i)
			alice.create(gid, &v1.GroupPolicy{PublicHandshakes: true})
			alice.invite(gid, bob)
			bob.sync(gid)
			gids = append(gids, gid)
		}
		loads0 := metric(t, e.url, "mlsd_follower_loads_total")
		for round := 0; round < 2; round++ {
			for i, gid := range gids {
				p := alice
				if (i+round)%2 == 1 {
					p = bob
				}
				p.sync(gid)
				_, err := p.commit(gid, nil)
				must(t, err)
				if b := metric(t, e.url, "mlsd_follower_cache_bytes"); b > bound {
					t.Fatalf("follower cache holds %v bytes, bound %d", b, bound)
				}
			}
		}
		loads := metric(t, e.url, "mlsd_follower_loads_total") - loads0
		cached := metric(t, e.url, "mlsd_follower_cache_groups")
		t.Logf("%d groups, 2 rounds of commits: %v groups cached (%v bytes, bound %d), %v loads from the store",
			groups, cached, metric(t, e.url, "mlsd_follower_cache_bytes"), bound, loads)
		if cached >= groups || loads < 2*groups {
			t.Fatalf("%v groups cached and %v reloads: no eviction", cached, loads)
		}
		for _, gid := range gids {
			honest(t, gid, map[uint64]string{}, alice, bob)
		}
	}
	cfg := unlimited
	cfg.FollowerCacheBytes = bound
	t.Run("sqlite", func(t *testing.T) { run(t, newEnv(t, cfg)) })
	t.Run("postgres", func(t *testing.T) {
		c := cfg
		c.Store = pgtest.Open(t, pgtest.NewSchema(), true)
		run(t, newEnv(t, c))
	})
}
