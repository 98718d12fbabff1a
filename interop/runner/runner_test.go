package runner_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/mlskit/mlskit/interop"
	"github.com/mlskit/mlskit/interop/internal/fakemls"
	"github.com/mlskit/mlskit/interop/internal/interoptest"
	pb "github.com/mlskit/mlskit/interop/mlsclient"
	"github.com/mlskit/mlskit/interop/runner"
	"github.com/mlskit/mlskit/mls"
)

// configs loads the working group's config scripts, skipping (or, with
// MLS_REQUIRE_VECTORS=1 as CI sets, failing) when they are absent.
func configs(t *testing.T) map[string]*runner.Config {
	t.Helper()
	dir, err := runner.Dir()
	if err == nil {
		var cs map[string]*runner.Config
		if cs, err = runner.LoadDir(dir); err == nil {
			return cs
		}
	}
	if os.Getenv("MLS_REQUIRE_VECTORS") == "1" {
		t.Fatal(err)
	}
	t.Skip(err)
	return nil
}

func sortedNames(cs map[string]*runner.Config) []string {
	var names []string
	for n := range cs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func connect(t *testing.T, conns ...*grpc.ClientConn) []*runner.Client {
	t.Helper()
	var out []*runner.Client
	for i, conn := range conns {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := runner.Connect(ctx, conn)
		cancel()
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		c.Label = fmt.Sprintf("%s#%d", c.Name, i)
		out = append(out, c)
	}
	return out
}

// runAll executes every script of every config in every planned run (less
// those skip rejects), as parallel subtests of one subtest, and returns how
// many runs it made once they have all finished.
func runAll(t *testing.T, cs map[string]*runner.Config, clients []*runner.Client, skip func(*runner.Run) bool, modes ...runner.Mode) int {
	t.Helper()
	n := 0
	t.Run("scripts", func(t *testing.T) {
		for _, file := range sortedNames(cs) {
			c := cs[file]
			for _, name := range c.Names() {
				script := c.Scripts[name]
				actors := script.Actors()
				for _, r := range runner.Plan(script, clients, modes...) {
					if skip != nil && skip(r) {
						continue
					}
					n++
					t.Run(strings.TrimSuffix(strings.TrimPrefix(file, "configs-"), ".json")+"/"+name+"/"+r.Name(actors), func(t *testing.T) {
						t.Parallel()
						if err := r.Execute(context.Background(), script); err != nil {
							t.Fatal(err)
						}
					})
				}
			}
		}
	})
	return n
}

// TestInteropScripts is the interop conformance test: every config script,
// for every cipher suite, with handshakes public and private, with all
// actors on one client and alternating between two, against mlskit's own
// backend (interop.NewMLSBackend) served in-process on loopback, or against
// the servers listed in MLS_INTEROP_CLIENTS (host:port,host:port,...).
// MLS_INTEROP_ALL_COMBINATIONS=1 adds every assignment of actors to clients;
// -short drops the assignments that leave the first client out.
//
// MLS_INTEROP_SUITES=1,3 (or "all") limits the suites run. Under the race
// detector the default is suite 1 only (every script, both handshake modes,
// both assignment modes: the paths are the same in every suite, and the
// whole matrix takes many minutes there); without it, every suite.
// MLS_INTEROP_PQ=1 makes the in-process servers also offer mlskit's
// provisional post-quantum suites.
//
// It skips only against servers that offer no cipher suite and answer
// CreateKeyPackage with Unimplemented (a backend not wired to package mls).
func TestInteropScripts(t *testing.T) {
	cs := configs(t)
	var conns []*grpc.ClientConn
	if list := os.Getenv("MLS_INTEROP_CLIENTS"); list != "" {
		for _, addr := range strings.Split(list, ",") {
			conn, err := grpc.NewClient(strings.TrimSpace(addr), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conns = append(conns, conn)
		}
	} else {
		backend := interop.NewMLSBackend
		if os.Getenv("MLS_INTEROP_PQ") == "1" {
			backend = func() interop.Backend {
				var all []uint16
				for _, cs := range mls.SupportedCipherSuites() {
					all = append(all, uint16(cs))
				}
				b, err := interop.NewMLSBackendWith(interop.MLSBackendOptions{Suites: all})
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
		}
		for range 2 {
			_, conn := interoptest.Serve(t, backend())
			conns = append(conns, conn)
		}
	}
	clients := connect(t, conns...)
	suites, err := suiteFilter(os.Getenv("MLS_INTEROP_SUITES"))
	if err != nil {
		t.Fatal(err)
	}

	anySuite := false
	for _, c := range clients {
		anySuite = anySuite || len(c.Suites) > 0
	}
	if !anySuite {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := clients[0].RPC().CreateKeyPackage(ctx, &pb.CreateKeyPackageRequest{CipherSuite: 1, Identity: []byte("probe")})
		if status.Code(err) == codes.Unimplemented {
			t.Skipf("the MLS backend is not implemented yet (%v): the interop scripts run once interop.NewMLSBackend is wired to package mls", status.Convert(err).Message())
		}
		t.Fatalf("no client supports any cipher suite (CreateKeyPackage probe: %v)", err)
	}

	modes := []runner.Mode{runner.AllOnOne, runner.Alternating}
	if os.Getenv("MLS_INTEROP_ALL_COMBINATIONS") == "1" {
		modes = append(modes, runner.AllCombinations)
	}
	// -short keeps one all-on-one and one alternating assignment per suite.
	skip := func(r *runner.Run) bool {
		if suites != nil && !slices.Contains(suites, r.Suite) {
			return true
		}
		if testing.Short() && len(clients) > 1 {
			for _, c := range r.Actors {
				if c == clients[0] {
					return false
				}
			}
			return true
		}
		return false
	}
	n := runAll(t, cs, clients, skip, modes...)
	if n == 0 {
		t.Fatalf("no runs: the clients offer suites %v, MLS_INTEROP_SUITES asks for %v", clients[0].Suites, suites)
	}
	what := "every suite the clients offer"
	if suites != nil {
		what = fmt.Sprintf("suites %v", suites)
	}
	t.Logf("%d script runs (%s; race detector: %v)", n, what, raceEnabled)
}

// suiteFilter parses MLS_INTEROP_SUITES: nil means every suite; the
// default under the race detector is suite 1.
func suiteFilter(v string) ([]uint16, error) {
	switch v {
	case "all":
		return nil, nil
	case "":
		if raceEnabled {
			return []uint16{1}, nil
		}
		return nil, nil
	}
	var out []uint16
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(f), 0, 16)
		if err != nil {
			return nil, fmt.Errorf("MLS_INTEROP_SUITES=%q: %v", v, err)
		}
		out = append(out, uint16(n))
	}
	return out, nil
}

// TestScriptsAgainstFake runs every config script through the whole
// plumbing (runner, gRPC, interop.Server, id tables) against two instances of
// the fakemls test double, which share nothing but the bytes the runner
// carries. It proves the runner issues the RPCs each action needs, with the
// right ids, messages, trees and flags, not that any MLS is right.
func TestScriptsAgainstFake(t *testing.T) {
	cs := configs(t)
	var conns []*grpc.ClientConn
	var servers []*interop.Server
	for range 2 {
		// Two suites: enough for the suite-changing reinit scripts.
		s, conn := interoptest.Serve(t, fakemls.New(fakemls.Options{Suites: []uint16{1, 2}}))
		servers = append(servers, s)
		conns = append(conns, conn)
	}
	clients := connect(t, conns...)
	// The two fakes are alike, so all actors on the second one adds nothing.
	allOnSecond := func(r *runner.Run) bool {
		for _, c := range r.Actors {
			if c != clients[1] {
				return false
			}
		}
		return true
	}
	n := runAll(t, cs, clients, allOnSecond, runner.AllOnOne, runner.Alternating)
	if n == 0 {
		t.Fatal("no runs planned")
	}
	// Every script freed what it created.
	for i, s := range servers {
		if live := s.Live(); live != 0 {
			t.Errorf("server %d holds %d ids after all scripts", i, live)
		}
	}
	t.Logf("%d script runs", n)
}

// recorder logs the RPCs a server receives.
type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) interceptor(server string) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		name := info.FullMethod[strings.LastIndex(info.FullMethod, "/")+1:]
		r.mu.Lock()
		r.calls = append(r.calls, server+":"+name)
		r.mu.Unlock()
		return h(ctx, req)
	}
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

// twoFakes starts two fake servers whose RPCs are recorded as "A:Rpc" and "B:Rpc".
func twoFakes(t *testing.T, opts ...fakemls.Options) ([]*runner.Client, *recorder) {
	rec := &recorder{}
	var conns []*grpc.ClientConn
	for i, name := range []string{"A", "B"} {
		o := fakemls.Options{Name: name}
		if i < len(opts) {
			o = opts[i]
			o.Name = name
		}
		_, conn := interoptest.Serve(t, fakemls.New(o), grpc.UnaryInterceptor(rec.interceptor(name)))
		conns = append(conns, conn)
	}
	clients := connect(t, conns...)
	for _, c := range clients {
		c.Label = c.Name
	}
	rec.take() // Name, SupportedCiphersuites
	return clients, rec
}

func mustScript(t *testing.T, js string) runner.Script {
	t.Helper()
	s, err := runner.ParseScript([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// alternating returns the run with actors alternating A, B, A, ...
func alternating(t *testing.T, s runner.Script, clients []*runner.Client, encrypt bool) *runner.Run {
	t.Helper()
	for _, r := range runner.Plan(s, clients, runner.Alternating) {
		if r.Suite == 1 && r.EncryptHandshake == encrypt && r.Actors[s.Actors()[0]] == clients[0] {
			return r
		}
	}
	t.Fatal("no such run")
	return nil
}

// TestRPCSequence checks the exact RPCs, in order and on which client, that
// the composite actions issue.
func TestRPCSequence(t *testing.T) {
	clients, rec := twoFakes(t)
	s := mustScript(t, `[
		{"action": "createGroup", "actor": "alice", "members": ["bob"]},
		{"action": "createKeyPackage", "actor": "carol"},
		{"action": "addProposal", "actor": "bob", "keyPackage": 1},
		{"action": "fullCommit", "actor": "alice", "byReference": [2], "members": ["bob"], "joiners": ["carol"], "external_tree": true},
		{"action": "protect", "actor": "carol", "authenticatedData": "ad", "plaintext": "hi"},
		{"action": "unprotect", "actor": "bob", "ciphertext": 4},
		{"action": "externalJoin", "actor": "bob", "joiner": "dave", "members": ["alice", "carol"], "externalTree": true}
	]`)
	if got := strings.Join(s.Actors(), ","); got != "alice,bob,carol,dave" {
		t.Fatalf("actors %s", got)
	}
	r := alternating(t, s, clients, true) // alice=A bob=B carol=A dave=B
	if err := r.Execute(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	want := []string{
		// createGroup
		"A:CreateGroup", "B:CreateKeyPackage", "A:Commit", "A:HandlePendingCommit", "B:JoinGroup",
		"A:CreateKeyPackage",
		"B:AddProposal",
		// fullCommit
		"A:Commit", "A:HandlePendingCommit", "B:HandleCommit", "A:JoinGroup",
		"A:Protect", "B:Unprotect",
		// externalJoin: group info from the actor, the joiner commits, the actor then members handle it
		"B:GroupInfo", "B:ExternalJoin", "B:HandleCommit", "A:HandleCommit", "A:HandleCommit",
		// cleanup: current states alice, bob, carol, dave
		"A:Free", "B:Free", "A:Free", "B:Free",
	}
	got := rec.take()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("RPCs:\n got %v\nwant %v", got, want)
	}
}

// TestStandaloneActions runs the actions no shipped config uses (commit,
// handlePendingCommit, handleCommit, joinGroup, groupInfo) and checks that
// their epoch authenticators are compared.
func TestStandaloneActions(t *testing.T) {
	clients, rec := twoFakes(t)
	s := mustScript(t, `[
		{"action": "createGroup", "actor": "alice", "members": ["bob"]},
		{"action": "createKeyPackage", "actor": "carol"},
		{"action": "addProposal", "actor": "bob", "keyPackage": 1},
		{"action": "commit", "actor": "alice", "byReference": [2], "externalTree": true},
		{"action": "handleCommit", "actor": "bob", "commit": 3, "byReference": [2]},
		{"action": "handlePendingCommit", "actor": "alice"},
		{"action": "joinGroup", "actor": "carol", "welcome": 3},
		{"action": "protect", "actor": "carol", "authenticatedData": "", "plaintext": "to all"},
		{"action": "unprotect", "actor": "alice", "ciphertext": 7},
		{"action": "unprotect", "actor": "bob", "ciphertext": 7},
		{"action": "groupInfo", "actor": "bob", "externalTree": true}
	]`)
	for _, enc := range []bool{false, true} {
		r := alternating(t, s, clients, enc)
		if err := r.Execute(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		calls := strings.Join(rec.take(), " ")
		if !strings.Contains(calls, "A:Commit B:HandleCommit A:HandlePendingCommit A:JoinGroup") {
			t.Errorf("unexpected RPCs: %s", calls)
		}
	}

	// A client whose HandleCommit reports the old epoch's authenticator is
	// caught at handleCommit.
	clients, _ = twoFakes(t, fakemls.Options{}, fakemls.Options{Fault: fakemls.FaultStaleAuthenticator})
	err := alternating(t, s, clients, false).Execute(context.Background(), s)
	var se *runner.StepError
	if !errors.As(err, &se) || se.Index != 4 || !errors.Is(err, runner.ErrDisagree) {
		t.Fatalf("got %v, want a disagreement at step 4", err)
	}
}

// TestCatchesFaults checks that a misbehaving client fails the run at the
// step where it misbehaves.
func TestCatchesFaults(t *testing.T) {
	s := mustScript(t, `[
		{"action": "createGroup", "actor": "alice", "members": ["bob"]},
		{"action": "protect", "actor": "alice", "authenticatedData": "ad", "plaintext": "one"},
		{"action": "unprotect", "actor": "bob", "ciphertext": 1},
		{"action": "updateProposal", "actor": "alice"},
		{"action": "fullCommit", "actor": "alice", "byReference": [3], "members": ["bob"]}
	]`)
	for _, tc := range []struct {
		fault fakemls.Fault
		step  int
	}{
		{fakemls.FaultEpochAuthenticator, 0}, // bob (on B) joins with a different authenticator
		{fakemls.FaultPlaintext, 2},          // bob decrypts something else
		{fakemls.FaultStaleAuthenticator, 4}, // bob reports the old epoch's authenticator
	} {
		clients, _ := twoFakes(t, fakemls.Options{}, fakemls.Options{Fault: tc.fault})
		err := alternating(t, s, clients, false).Execute(context.Background(), s)
		var se *runner.StepError
		if !errors.As(err, &se) || se.Index != tc.step || !errors.Is(err, runner.ErrDisagree) {
			t.Errorf("fault %d: got %v, want a disagreement at step %d", tc.fault, err, tc.step)
		}
		// With both actors on the faultless client, the same script passes.
		for _, r := range runner.Plan(s, clients, runner.AllOnOne) {
			if r.Actors["alice"] == clients[0] && r.Suite == 1 && !r.EncryptHandshake {
				if err := r.Execute(context.Background(), s); err != nil {
					t.Errorf("fault %d, all on the good client: %v", tc.fault, err)
				}
			}
		}
	}

	// An RPC error fails the step and names the RPC; the runner still frees.
	clients, rec := twoFakes(t)
	bad := mustScript(t, `[
		{"action": "createGroup", "actor": "alice"},
		{"action": "removeProposal", "actor": "alice", "removed": "nobody"},
		{"action": "fullCommit", "actor": "alice", "byReference": [1]}
	]`)
	err := alternating(t, bad, clients, false).Execute(context.Background(), bad)
	var re *runner.RPCError
	if !errors.As(err, &re) || re.RPC != "Commit" || status.Code(re.Err) != codes.InvalidArgument {
		t.Fatalf("got %v, want Commit failing with InvalidArgument", err)
	}
	if calls := rec.take(); calls[len(calls)-1] != "A:Free" {
		t.Errorf("no cleanup after failure: %v", calls)
	}
}

func TestAssignments(t *testing.T) {
	for _, tc := range []struct {
		mode            runner.Mode
		actors, clients int
		want            int
		firstA, secondA string
	}{
		{runner.AllOnOne, 3, 2, 2, "[0 0 0]", "[1 1 1]"},
		{runner.Alternating, 3, 2, 2, "[0 1 0]", "[1 0 1]"},
		{runner.Alternating, 1, 2, 2, "[0]", "[1]"},
		{runner.AllOnOne, 2, 1, 1, "[0 0]", ""},
		{runner.Alternating, 4, 1, 1, "[0 0 0 0]", ""},
		{runner.AllCombinations, 4, 2, 16, "[0 0 0 0]", "[1 0 0 0]"},
		{runner.AllCombinations, 5, 3, 243, "[0 0 0 0 0]", "[1 0 0 0 0]"},
	} {
		got := runner.Assignments(tc.mode, tc.actors, tc.clients)
		if len(got) != tc.want {
			t.Errorf("%v %d actors %d clients: %d assignments, want %d", tc.mode, tc.actors, tc.clients, len(got), tc.want)
			continue
		}
		seen := map[string]bool{}
		for _, a := range got {
			k := fmt.Sprint(a)
			if seen[k] {
				t.Errorf("%v: %s twice", tc.mode, k)
			}
			seen[k] = true
		}
		if fmt.Sprint(got[0]) != tc.firstA || (tc.secondA != "" && fmt.Sprint(got[1]) != tc.secondA) {
			t.Errorf("%v: starts %v", tc.mode, got[:min(2, len(got))])
		}
	}
}

// TestPlanSuites checks that each suite is run with the clients that
// support it, both encryption flags.
func TestPlanSuites(t *testing.T) {
	clients, _ := twoFakes(t, fakemls.Options{Suites: []uint16{1, 2}}, fakemls.Options{Suites: []uint16{2, 3}})
	s := mustScript(t, `[{"action": "createGroup", "actor": "alice", "members": ["bob"]}]`)
	count := map[string]int{}
	for _, r := range runner.Plan(s, clients, runner.AllOnOne, runner.Alternating) {
		count[fmt.Sprintf("cs%d/%v", r.Suite, r.EncryptHandshake)]++
		for _, c := range r.Actors {
			supported := false
			for _, cs := range c.Suites {
				supported = supported || cs == r.Suite
			}
			if !supported {
				t.Errorf("suite %d planned on %s", r.Suite, c.Name)
			}
		}
	}
	// Suites 1 and 3 have one client (one assignment); suite 2 has two
	// (AB all-on-one twice, alternating twice).
	want := map[string]int{"cs1/false": 1, "cs1/true": 1, "cs2/false": 4, "cs2/true": 4, "cs3/false": 1, "cs3/true": 1}
	if fmt.Sprint(count) != fmt.Sprint(want) {
		t.Errorf("plan %v, want %v", count, want)
	}
}

// TestReInitNeedsSecondSuite: a suite-changing reinit with a single common
// suite fails, rather than silently keeping the suite.
func TestReInitNeedsSecondSuite(t *testing.T) {
	clients, _ := twoFakes(t, fakemls.Options{Suites: []uint16{1}}, fakemls.Options{Suites: []uint16{1}})
	s := mustScript(t, `[
		{"action": "createGroup", "actor": "alice", "members": ["bob"]},
		{"action": "reinit", "proposer": "alice", "committer": "alice", "welcomer": "bob", "members": [], "changeCiphersuite": true}
	]`)
	err := alternating(t, s, clients, false).Execute(context.Background(), s)
	if err == nil || !strings.Contains(err.Error(), "second suite") {
		t.Fatalf("got %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, js := range []string{
		`[{"action": "fly", "actor": "alice"}]`,
		`[{"action": "createGroup"}]`,
		`[{"action": "createGroup", "actor": "alice", "color": "red"}]`,
		`[{"action": "createGroup", "actor": "alice"}, {"action": "addProposal", "actor": "alice", "keyPackage": 1}]`,
		`[{"action": "createGroup", "actor": "alice"}, {"action": "unprotect", "actor": "alice", "ciphertext": -1}]`,
		`[{"action": "createGroup", "actor": "alice"}, {"action": "fullCommit", "actor": "alice", "byValue": [{"proposalType": "reinit"}]}]`,
		`[{"action": "createGroup", "actor": "alice"}, {"action": "fullCommit", "actor": "alice", "byValue": [{"proposalType": "frob"}]}]`,
		`[{"action": "installExternalPSK", "clients": []}]`,
		`[{"action": "reinit", "committer": "a", "welcomer": "b", "externalReinitProposal": 0}]`,
		`{"action": "createGroup", "actor": "alice"}`,
	} {
		if _, err := runner.ParseScript([]byte(js)); err == nil {
			t.Errorf("parsed %s", js)
		}
	}
	if _, err := runner.ParseConfig([]byte(`{"scripts": {}}`)); err == nil {
		t.Error("parsed a config without scripts")
	}
	if _, err := runner.ParseConfig([]byte(`{"scripts": {"a": [{"action": "createGroup", "actor": "x"}]}, "extra": 1}`)); err == nil {
		t.Error("parsed a config with an unknown field")
	}
}

// TestConfigsUseKnownActions checks the shipped configs parse strictly and
// that every action they use is one this runner executes.
func TestConfigsUseKnownActions(t *testing.T) {
	cs := configs(t)
	used := map[string]bool{}
	for _, c := range cs {
		for _, s := range c.Scripts {
			for _, st := range s {
				used[st.Action] = true
			}
		}
	}
	if len(cs) < 7 || len(used) < 15 {
		t.Errorf("only %d configs using %d actions", len(cs), len(used))
	}
}
