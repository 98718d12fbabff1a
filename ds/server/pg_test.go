package server_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/mlskit/mlskit/ds/client"
	"github.com/mlskit/mlskit/ds/server"
	"github.com/mlskit/mlskit/ds/store/postgres/pgtest"
)

// twoNodes starts two mlsd nodes, each with its own connection pool, on one
// PostgreSQL schema.
func twoNodes(t *testing.T, cfg server.Config) (*env, *env) {
	schema := pgtest.NewSchema()
	cfg.Store = pgtest.Open(t, schema, true)
	a := newEnv(t, cfg)
	cfg.Store = pgtest.Open(t, schema, false)
	b := newEnv(t, cfg)
	return a, b
}

var unlimited = server.Config{ClientRate: 1e9, ClientBurst: 1e9, GroupRate: 1e9, GroupBurst: 1e9,
	ClaimRate: 1e9, ClaimBurst: 1e9, TargetRate: 1e9, TargetBurst: 1e9, PairRate: 1e9, PairBurst: 1e9,
	AccountByteRate: 1e12, AccountByteBurst: 1e12, GroupByteRate: 1e12, GroupByteBurst: 1e12}

// TestTwoNodesClaim: a KeyPackage claimed through two nodes at once is
// handed out once.
func TestTwoNodesClaim(t *testing.T) {
	a, b := twoNodes(t, unlimited)
	bob := a.login("bob")
	const n = 30
	var kps [][]byte
	for i := 0; i < n; i++ {
		kps = append(kps, bob.keyPackage(t, false))
	}
	_, err := bob.UploadKeyPackages(ctx, kps, bob.keyPackage(t, true))
	must(t, err)
	claimers := []*member{a.login("c1"), b.login("c2"), a.login("c3"), b.login("c4")}
	var mu sync.Mutex
	seen := map[string]int{}
	lastResort := 0
	var wg sync.WaitGroup
	for _, c := range claimers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				resp, err := c.ClaimKeyPackages(ctx, testSuite, "bob")
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, kp := range resp.KeyPackages {
					if kp.LastResort {
						lastResort++
					} else {
						seen[string(kp.Ref)]++
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != n || lastResort != 40-n {
		t.Fatalf("%d distinct KeyPackages and %d last resorts handed out, want %d and %d", len(seen), lastResort, n, 40-n)
	}
	for ref, c := range seen {
		if c != 1 {
			t.Fatalf("KeyPackage %x handed out %d times", ref, c)
		}
	}
}

// TestTwoNodesDelivery: a subscriber on one node receives what is sent
// through the other (LISTEN/NOTIFY), and both nodes agree on one winner.
func TestTwoNodesDelivery(t *testing.T) {
	a, b := twoNodes(t, unlimited)
	alice, bob := a.login("alice"), b.login("bob")
	gid := gidOf("two-nodes")
	must(t, alice.CreateGroup(ctx, gid, nil))
	_, err := invite(t, alice, gid, 0, bob)
	must(t, err)
	stream, err := bob.Subscribe(ctx)
	must(t, err)
	defer stream.Close()
	for i := 0; i < 5; i++ {
		_, err := alice.Send(ctx, appMsg(gid, 1, fmt.Sprint("hi ", i)))
		must(t, err)
	}
	got := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for got < 5 {
			ev, err := stream.Next()
			if err != nil {
				t.Error(err)
				return
			}
			if ev.GetRecord() != nil {
				got++
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("bob received %d of 5 messages through the other node", got)
	}
}

// TestTwoNodesCommitRace runs the commit race with clients spread over two
// nodes on one database.
func TestTwoNodesCommitRace(t *testing.T) {
	a, b := twoNodes(t, unlimited)
	nodes := []*server.Server{a.srv, b.srv}
	envs := []*env{a, b}
	rounds := 100
	if testing.Short() {
		rounds = 20
	}
	raceOn(t, a.srv, a.st, nodes, 50, rounds, func(i int) *member { return envs[i%2].login(fmt.Sprint("racer-", i)) })
}

// TestTwoNodesLeasedByteQuota: an account floods one group through two
// nodes with messages small enough that each node draws on the shared
// account-bytes bucket through leases. Together the nodes let through no
// more than the bucket holds, and all of it but less than a message per
// node; then both refuse with the quota's error, and other accounts go on.
func TestTwoNodesLeasedByteQuota(t *testing.T) {
	const burst, size = 256 << 10, 4 << 10
	cfg := unlimited
	cfg.AccountByteRate, cfg.AccountByteBurst = 1, burst // no refill to speak of
	a, b := twoNodes(t, cfg)
	eveA := a.login("eve")
	eveB := &member{Client: client.New(b.url, nil), signer: eveA.signer, sig: eveA.sig, cred: eveA.cred, name: eveA.name}
	must(t, eveB.Login(ctx, testSuite, eveB.signer, eveB.cred))
	gid := gidOf("leased-flood")
	must(t, eveA.CreateGroup(ctx, gid, nil))
	sent, bytes := 0, 0
	var errA, errB error
	for i := 0; errA == nil || errB == nil; i++ {
		if i > 2*burst/size {
			t.Fatalf("%d messages of %d bytes through two nodes and no quota", sent, size)
		}
		m, errp := eveA, &errA
		if i%2 == 1 {
			m, errp = eveB, &errB
		}
		if *errp != nil {
			continue
		}
		msg := appMsg(gid, 0, string(randBytes(size)))
		if _, err := m.Send(ctx, msg); err != nil {
			*errp = err
			continue
		}
		sent++
		bytes += len(msg)
	}
	for _, err := range []error{errA, errB} {
		wantCode(t, "flooding through two nodes", err, connect.CodeResourceExhausted)
		if !strings.Contains(err.Error(), "quota: this account sent more than") {
			t.Fatalf("refusal says %q", err)
		}
	}
	// A node keeps what is left of a lease for its next request, so at
	// the end each holds less than a message's worth; none may go past
	// the bucket.
	if bytes > burst || bytes < burst-2*2*size {
		t.Fatalf("%d bytes in %d messages let through, bucket of %d", bytes, sent, burst)
	}
	honestFlow(t, a, a.login("alice"), a.login("bob"))
}
