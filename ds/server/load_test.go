package server_test

import (
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/mlskit/mlskit/ds/api/mlsdv1"
	"github.com/mlskit/mlskit/ds/store/postgres/pgtest"
)

// TestLoad is the loopback load benchmark recorded in
// docs/BENCHMARKS-mlsd.md. It runs only with MLSD_LOAD=1 (and never under
// -race, which would measure the race detector):
//
//	MLSD_LOAD=1 go test -run TestLoad -v ./ds/server/
//
// Fan-out: 100 members each hold a gRPC subscription on its own connection;
// 4 members send application messages (1 KiB PrivateMessages) for
// MLSD_LOAD_SECONDS (default 5); a message counts once all 100 subscribers
// have received it. Commits: one member commits epoch after epoch in a
// second group, alone (idle) and while the fan-out load runs, and the
// client-observed SendCommit latency is reported as p50/p99.
func TestLoad(t *testing.T) {
	if os.Getenv("MLSD_LOAD") != "1" {
		t.Skip("set MLSD_LOAD=1 to run the load benchmark")
	}
	secs := 5
	if v, err := fmt.Sscan(os.Getenv("MLSD_LOAD_SECONDS"), &secs); v != 1 || err != nil {
		secs = 5
	}
	cfg := unlimited
	// 100 members log in from one address (loopback).
	cfg.LoginRate, cfg.LoginBurst = 1e9, 1e9
	t.Run("sqlite", func(t *testing.T) { load(t, newEnv(t, cfg), time.Duration(secs)*time.Second) })
	t.Run("postgres", func(t *testing.T) {
		c := cfg
		c.Store = pgtest.Open(t, pgtest.NewSchema(), true)
		load(t, newEnv(t, c), time.Duration(secs)*time.Second)
	})
}

func load(t *testing.T, e *env, d time.Duration) {
	const senders = 4
	members := 100
	if v, err := strconv.Atoi(os.Getenv("MLSD_LOAD_MEMBERS")); err == nil {
		members = v
	}
	ms := make([]*member, members)
	for i := range ms {
		ms[i] = e.login(fmt.Sprint("m", i))
	}
	gid := gidOf(fmt.Sprint("load-", time.Now().UnixNano()))
	must(t, ms[0].CreateGroup(ctx, gid, nil))
	_, err := invite(t, ms[0], gid, 0, ms[1:]...)
	must(t, err)

	// Commit latency, idle.
	cgid := gidOf(fmt.Sprint("commits-", time.Now().UnixNano()))
	committer := ms[0]
	must(t, committer.CreateGroup(ctx, cgid, nil))
	epoch := uint64(0)
	commitLoop := func(stop <-chan struct{}, n int) []time.Duration {
		var lat []time.Duration
		for i := 0; i < n || n == 0; i++ {
			select {
			case <-stop:
				return lat
			default:
			}
			start := time.Now()
			_, err := committer.Commit(ctx, &v1.SendCommitRequest{Commit: commitMsg(cgid, epoch, fmt.Sprint("c", epoch))})
			must(t, err)
			lat = append(lat, time.Since(start))
			epoch++
		}
		return lat
	}
	idle := commitLoop(nil, 300)

	// Subscribers.
	var delivered atomic.Int64
	received := make([]atomic.Int64, members)
	var subs sync.WaitGroup
	for i, m := range ms {
		st, err := m.Subscribe(ctx)
		must(t, err)
		defer st.Close()
		subs.Add(1)
		go func() {
			defer subs.Done()
			for {
				ev, err := st.Next()
				if err != nil {
					return
				}
				if r := ev.GetRecord(); r != nil && r.Kind == 1 {
					received[i].Add(1)
					delivered.Add(1)
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)

	// Fan-out load with commits running beside it.
	stop := make(chan struct{})
	var sent atomic.Int64
	var wg sync.WaitGroup
	body := string(randBytes(1024))
	start := time.Now()
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				_, err := ms[s+1].Send(ctx, appMsg(gid, 1, body+fmt.Sprint(s, "-", n)))
				must(t, err)
				sent.Add(1)
			}
		}()
	}
	loadedCh := make(chan []time.Duration)
	go func() { loadedCh <- commitLoop(stop, 0) }()
	time.Sleep(d)
	close(stop)
	wg.Wait()
	loaded := <-loadedCh
	sendDone := time.Since(start)
	total := sent.Load()
	deadline := time.Now().Add(60 * time.Second)
	for delivered.Load() < total*int64(members) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	allDone := time.Since(start)
	if got := delivered.Load(); got != total*int64(members) {
		t.Fatalf("delivered %d of %d", got, total*int64(members))
	}
	pct := func(l []time.Duration, p float64) time.Duration {
		s := append([]time.Duration(nil), l...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return s[min(len(s)-1, int(float64(len(s))*p))]
	}
	t.Logf("| %s | %d | %.0f | %.0f | %.0f | %v / %v (n=%d) | %v / %v (n=%d) |", t.Name(), total,
		float64(total)/sendDone.Seconds(), float64(total)/allDone.Seconds(), float64(total*int64(members))/allDone.Seconds(),
		pct(idle, .5).Round(10*time.Microsecond), pct(idle, .99).Round(10*time.Microsecond), len(idle),
		pct(loaded, .5).Round(10*time.Microsecond), pct(loaded, .99).Round(10*time.Microsecond), len(loaded))
	if os.Getenv("MLSD_LOAD_METRICS") == "1" {
		var b strings.Builder
		e.srv.Metrics().ServeHTTP(&recorder{&b}, nil)
		t.Log(b.String())
	}
}

type recorder struct{ b *strings.Builder }

func (r *recorder) Header() http.Header         { return http.Header{} }
func (r *recorder) Write(p []byte) (int, error) { return r.b.Write(p) }
func (r *recorder) WriteHeader(int)             {}
