package server_test

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	v1 "github.com/mlskit/mlskit/ds/api/mlsdv1"
	"github.com/mlskit/mlskit/ds/client"
	"github.com/mlskit/mlskit/ds/server"
	"github.com/mlskit/mlskit/ds/store"
)

// raceSize reads MLSD_RACE_CLIENTS/ROUNDS, defaulting to the 50 x
// 1,000.
func raceSize() (clients, rounds int) {
	clients, rounds = 50, 1000
	if v, err := strconv.Atoi(os.Getenv("MLSD_RACE_CLIENTS")); err == nil {
		clients = v
	}
	if v, err := strconv.Atoi(os.Getenv("MLSD_RACE_ROUNDS")); err == nil {
		rounds = v
	}
	return
}

// TestCommitRace: 50 clients commit against the same epoch, 1,000 rounds.
// Every round must have exactly one winner, every loser a stale (or, while a
// starved member holds the epoch, deferred) answer naming that winner, and
// the log must end gapless with a valid hash chain. The commits go through
// the server's handlers in-process (the HTTP layer is covered elsewhere), so
// the test measures sequencing, not loopback HTTP.
func TestCommitRace(t *testing.T) {
	nc, rounds := raceSize()
	e := newEnv(t, server.Config{ClientRate: 1e9, ClientBurst: 1e9, GroupRate: 1e9, GroupBurst: 1e9})
	raceOn(t, e.srv, e.st, []*server.Server{e.srv}, nc, rounds, func(i int) *member { return e.login(fmt.Sprint("racer-", i)) })
}

// raceOn runs the race with clients spread over the given server nodes.
func raceOn(t *testing.T, first *server.Server, st store.Store, nodes []*server.Server, nc, rounds int, login func(int) *member) {
	members := make([]*member, nc)
	for i := range members {
		members[i] = login(i)
	}
	gid := gidOf(fmt.Sprint("race-", time.Now().UnixNano()))
	must(t, members[0].CreateGroup(ctx, gid, nil))
	_, err := invite(t, members[0], gid, 0, members[1:]...)
	must(t, err)

	start := time.Now()
	type result struct {
		seq      uint64
		stale    *v1.StaleEpoch
		deferred bool
	}
	results := make([]result, nc)
	winners := make([]int, rounds+1)
	deferrals := 0
	for r := 1; r <= rounds; r++ {
		epoch := uint64(r)
		var wg sync.WaitGroup
		for i, m := range members {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := connect.NewRequest(&v1.SendCommitRequest{Commit: commitMsg(gid, epoch, fmt.Sprint("r", r, "c", i))})
				req.Header().Set("Authorization", "Bearer "+m.Token())
				resp, err := nodes[i%len(nodes)].SendCommit(ctx, req)
				results[i] = result{}
				switch {
				case err == nil:
					results[i].seq = resp.Msg.Seq
				default:
					if st, ok := client.StaleEpoch(err); ok {
						results[i].stale = st
					} else if _, ok := client.Deferred(err); ok {
						results[i].deferred = true
					} else {
						t.Errorf("round %d client %d: %v", r, i, err)
					}
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		var win uint64
		for i, res := range results {
			if res.seq != 0 {
				if win != 0 {
					t.Fatalf("round %d: two winners", r)
				}
				win = res.seq
				winners[r] = i
			}
		}
		if win == 0 {
			t.Fatalf("round %d: no winner", r)
		}
		for i, res := range results {
			switch {
			case res.stale != nil && (res.stale.WinningSeq != win || res.stale.CurrentEpoch != epoch+1):
				t.Fatalf("round %d client %d: stale answer %v, winner seq %d", r, i, res.stale, win)
			case res.deferred:
				deferrals++
			}
		}
	}
	elapsed := time.Since(start)

	recs, err := st.Records(ctx, gid, 0, rounds+10)
	must(t, err)
	// The first commit added everyone and carries their Welcome.
	if len(recs) != rounds+2 {
		t.Fatalf("%d records, want %d", len(recs), rounds+2)
	}
	must(t, store.VerifyChain(0, store.GenesisHash(gid), recs))
	for r := 1; r <= rounds; r++ {
		rec := recs[r+1]
		if rec.Epoch != uint64(r) || rec.Kind != store.KindCommit || rec.Sender != members[winners[r]].name {
			t.Fatalf("record %d: epoch %d sender %s, want epoch %d sender %s", rec.Seq, rec.Epoch, rec.Sender, r, members[winners[r]].name)
		}
	}
	distinct := map[int]bool{}
	for _, w := range winners[1:] {
		distinct[w] = true
	}
	t.Logf("%d clients x %d rounds: %v (%.0f commit attempts/s), %d distinct winners, %d deferrals",
		nc, rounds, elapsed.Round(time.Millisecond), float64(nc*rounds)/elapsed.Seconds(), len(distinct), deferrals)
}
