package server_test

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"connectrpc.com/connect"

	"github.com/mlskit/mlskit/ds/client"
	"github.com/mlskit/mlskit/ds/server"
	"github.com/mlskit/mlskit/ds/store"
	"github.com/mlskit/mlskit/ds/store/postgres/pgtest"
)

// TestBatchedRefusals: members send at once, so their messages share the
// store's transactions, while in the same stream some replay what they
// already sent, an outsider sends to the group and a member sends to a
// group that does not exist. Each refusal gets its own answer (a replay
// its original sequence number), nothing refused reaches the log, every
// acknowledged message is in it once, the chain holds, and the group goes
// on.
func TestBatchedRefusals(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { batchedRefusals(t, unlimited) })
	t.Run("postgres", func(t *testing.T) {
		cfg := unlimited
		cfg.Store = pgtest.Open(t, pgtest.NewSchema(), true)
		batchedRefusals(t, cfg)
	})
}

func batchedRefusals(t *testing.T, cfg server.Config) {
	const senders, rounds = 8, 25
	cfg.LoginRate, cfg.LoginBurst, cfg.MaxCallsPerAddr = 1e9, 1e9, 1024
	e := newEnv(t, cfg)
	ms := make([]*member, senders)
	for i := range ms {
		ms[i] = e.login(fmt.Sprint("m", i))
	}
	outsider := e.login("outsider")
	gid := gidOf("batched-refusals")
	must(t, ms[0].CreateGroup(ctx, gid, nil))
	_, err := invite(t, ms[0], gid, 0, ms[1:]...)
	must(t, err)

	// Each member's first message, sent alone, to replay later.
	firsts := make([][]byte, senders)
	firstSeq := make([]uint64, senders)
	for i, m := range ms {
		firsts[i] = appMsg(gid, 1, fmt.Sprint("first ", i))
		r, err := m.Send(ctx, firsts[i])
		must(t, err)
		firstSeq[i] = r.Seq
	}
	w0, t0 := batchStats(e.st)

	var mu sync.Mutex
	acked := map[string]uint64{} // body -> seq
	refused := map[string]bool{}
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				msg := appMsg(gid, 1, fmt.Sprint(i, "/", r))
				res, err := m.Send(ctx, msg)
				if err != nil {
					t.Errorf("member %d, message %d: %v", i, r, err)
					return
				}
				mu.Lock()
				acked[string(msg)] = res.Seq
				mu.Unlock()
				switch r % 5 {
				case 1: // a replay of its first message
					_, err := m.Send(ctx, firsts[i])
					if d, ok := client.Duplicate(err); !ok || d.Seq != firstSeq[i] {
						t.Errorf("member %d's replay: %v (%v), want its first seq %d", i, err, d, firstSeq[i])
					}
				case 3: // to a group that does not exist
					nowhere := appMsg(gidOf("no such group"), 1, fmt.Sprint(i, "/", r))
					if _, err := m.Send(ctx, nowhere); connect.CodeOf(err) != connect.CodeNotFound {
						t.Errorf("member %d, unknown group: %v", i, err)
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for r := range rounds {
			msg := appMsg(gid, 1, fmt.Sprint("outsider/", r))
			mu.Lock()
			refused[string(msg)] = true
			mu.Unlock()
			if _, err := outsider.Send(ctx, msg); connect.CodeOf(err) != connect.CodePermissionDenied {
				t.Errorf("outsider's message %d: %v", r, err)
			}
		}
	}()
	wg.Wait()
	if t.Failed() {
		return
	}
	if w, tr := batchStats(e.st); tr > t0 && w-w0 <= tr-t0 {
		t.Fatalf("%d writes in %d transactions: no transaction held two, so nothing here was batched", w-w0, tr-t0)
	}

	recs := allRecords(t, e.st, gid)
	must(t, store.VerifyChain(0, store.GenesisHash(gid), recs))
	seen := map[string]int{}
	for _, r := range recs {
		seen[string(r.Body)]++
		if refused[string(r.Body)] {
			t.Fatalf("a refused message is in the log at %d", r.Seq)
		}
		if seq, ok := acked[string(r.Body)]; ok && seq != r.Seq {
			t.Fatalf("a message acknowledged at %d is in the log at %d", seq, r.Seq)
		}
	}
	for body := range acked {
		if seen[body] != 1 {
			t.Fatalf("an acknowledged message is in the log %d times", seen[body])
		}
	}
	for i := range firsts {
		if seen[string(firsts[i])] != 1 {
			t.Fatalf("member %d's first message is in the log %d times", i, seen[string(firsts[i])])
		}
	}

	// The group goes on from its head.
	g, err := e.st.Head(ctx, gid)
	must(t, err)
	last := recs[len(recs)-1]
	if g.HeadSeq != last.Seq || !bytes.Equal(g.HeadHash, last.ChainHash) {
		t.Fatalf("head at %d, log ends at %d", g.HeadSeq, last.Seq)
	}
	r, err := ms[senders-1].Send(ctx, appMsg(gid, 1, "after"))
	must(t, err)
	if r.Seq != last.Seq+1 {
		t.Fatalf("next message at %d, want %d", r.Seq, last.Seq+1)
	}
}

func batchStats(st store.Store) (writes, transactions uint64) {
	if bs, ok := st.(store.BatchStats); ok {
		return bs.BatchStats()
	}
	return 0, 0
}

// allRecords reads the group's whole log, a page at a time.
func allRecords(t *testing.T, st store.Store, gid []byte) []store.Record {
	t.Helper()
	var recs []store.Record
	for after := uint64(0); ; {
		page, err := st.Records(ctx, gid, after, 1000)
		must(t, err)
		if len(page) == 0 {
			return recs
		}
		recs = append(recs, page...)
		after = page[len(page)-1].Seq
	}
}
