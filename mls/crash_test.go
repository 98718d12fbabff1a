package mls_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mlskit/mlskit/mls"
	"github.com/mlskit/mlskit/storage/sqlite"
)

// The kill tests run a client in a child process (this test binary, re-run
// with killEnv set) that works on a group saved in a SQLite file, SIGKILL
// it at a random moment, reload the group in the parent and check it. A
// SIGKILL leaves no chance to clean up: no deferred function, no Close.
const (
	killEnv      = "MLSKIT_MLS_KILL_DIR"
	killModeEnv  = "MLSKIT_MLS_KILL_MODE"
	killStartEnv = "MLSKIT_MLS_KILL_START"
)

var killGroup = []byte("kill test group")

func killConfig() *mls.Config {
	// A fixed clock: the key-update tracking records merge times, and the
	// receiver's states must be reproducible byte for byte.
	return &mls.Config{Now: func() time.Time { return time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC) }}
}

// TestKillChild is the child process of the kill tests; it does nothing
// when run directly.
func TestKillChild(t *testing.T) {
	dir := os.Getenv(killEnv)
	if dir == "" {
		t.Skip("child process of TestKillWhileSending and TestKillWhileReceiving")
	}
	fail := func(err error) {
		fmt.Println("error", err)
		os.Exit(2)
	}
	st, err := sqlite.Open(filepath.Join(dir, "client.db"), nil)
	if err != nil {
		fail(err)
	}
	ctx := context.Background()
	g, err := mls.LoadGroup(ctx, killConfig(), st, killGroup)
	if err != nil {
		fail(err)
	}
	switch mode := os.Getenv(killModeEnv); mode {
	case "send", "send-unsafe":
		fmt.Println("ready")
		for i := 1; ; i++ {
			if i%25 == 0 {
				if _, err := g.Commit(nil); err != nil {
					fail(err)
				}
				if err := g.MergePendingCommit(); err != nil {
					fail(err)
				}
				if err := g.Save(ctx, st); err != nil {
					fail(err)
				}
				continue
			}
			e, gen := g.Epoch(), mls.SentGeneration(g)
			if _, err := g.Encrypt([]byte("x"), nil); err != nil {
				fail(err)
			}
			if mode == "send-unsafe" {
				fmt.Println("sent", e, gen) // on the wire before it is saved
			}
			if err := g.Save(ctx, st); err != nil {
				fail(err)
			}
			if mode == "send" {
				fmt.Println("sent", e, gen) // on the wire once saved
			}
		}
	case "receive":
		data, err := os.ReadFile(filepath.Join(dir, "messages"))
		if err != nil {
			fail(err)
		}
		msgs := strings.Fields(string(data))
		start, _ := strconv.Atoi(os.Getenv(killStartEnv))
		fmt.Println("ready")
		for i := start; i < len(msgs); i++ {
			msg, _ := hex.DecodeString(msgs[i])
			r, err := g.Process(msg)
			if err != nil {
				fail(fmt.Errorf("message %d: %w", i, err))
			}
			if r.Commit != nil {
				if err := g.MergeStagedCommit(r.Commit); err != nil {
					fail(err)
				}
			}
			if err := g.Save(ctx, st); err != nil {
				fail(err)
			}
			fmt.Println("ack", i+1) // messages 0..i processed and saved
		}
		fmt.Println("done")
		select {}
	default:
		fail(fmt.Errorf("unknown mode %q", mode))
	}
}

// killRound runs the child in mode on dir, kills it after delay, and
// returns the lines it printed after "ready".
func killRound(t *testing.T, dir, mode string, start int, delay time.Duration) [][]string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), killEnv+"="+dir, killModeEnv+"="+mode, killStartEnv+"="+strconv.Itoa(start))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "ready" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child did not start: %q", lines.Text())
	}
	killed := make(chan struct{})
	go func() {
		time.Sleep(delay)
		cmd.Process.Kill()
		close(killed)
	}()
	var got [][]string
	for lines.Scan() {
		f := strings.Fields(lines.Text())
		if len(f) == 0 || f[0] == "error" {
			<-killed
			cmd.Wait()
			t.Fatalf("child: %q", lines.Text())
		}
		got = append(got, f)
	}
	<-killed
	cmd.Wait()
	return got
}

// killSetup makes a two-member group and returns the sender (alice, the
// creator) and the receiver (bob).
func killSetup(t *testing.T) (a, b *client) {
	t.Helper()
	a = newClient(t, "a", fastSuite, killConfig())
	var err error
	if a.g, err = mls.NewGroup(a.cfg, killGroup, a.cred, a.sig, nil); err != nil {
		t.Fatal(err)
	}
	b = newClient(t, "b", fastSuite, killConfig())
	commit(t, a, &mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(b.keyPackage(t))}}, nil, b)
	return a, b
}

func saveTo(t *testing.T, dir string, g *mls.Group) {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(dir, "client.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := g.Save(context.Background(), st); err != nil {
		t.Fatal(err)
	}
}

func loadFrom(t *testing.T, dir string) *mls.Group {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(dir, "client.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	g, err := mls.LoadGroup(context.Background(), killConfig(), st, killGroup)
	if err != nil {
		t.Fatalf("reload after kill: %v", err)
	}
	return g
}

func killDelays(t *testing.T) func() time.Duration {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	return func() time.Duration { return time.Duration(50_000+rng.IntN(250_000)) * time.Microsecond }
}

// TestKillWhileSending: a sender that encrypts, saves, and only then puts
// the message on the wire, with a commit every 25 messages, is killed eight
// times at random moments. Across all its lives it never sends two
// messages with the same (epoch, generation), that is never reuses a key
// and nonce (RFC 9420, Section 9.2). The negative control sends before
// saving, and must be caught reusing one.
func TestKillWhileSending(t *testing.T) {
	if os.Getenv(killEnv) != "" {
		t.Skip("in the child")
	}
	if testing.Short() {
		t.Skip("starts child processes")
	}
	delay := killDelays(t)
	run := func(mode string, rounds int) (sent, reused int) {
		dir := t.TempDir()
		a, _ := killSetup(t)
		saveTo(t, dir, a.g)
		seen := map[string]bool{}
		for range rounds {
			if mode == "send-unsafe" && reused > 0 {
				break // the control has shown what it must
			}
			for _, f := range killRound(t, dir, mode, 0, delay()) {
				if f[0] != "sent" {
					continue
				}
				k := f[1] + "/" + f[2]
				if seen[k] {
					reused++
				}
				seen[k] = true
				sent++
			}
			g := loadFrom(t, dir) // must load after every kill
			if g.Epoch() == 0 {
				t.Fatal("reloaded sender lost its group")
			}
		}
		return sent, reused
	}
	sent, reused := run("send", 8)
	if sent == 0 {
		t.Fatal("nothing was sent: the test checked nothing")
	}
	if reused > 0 {
		t.Fatalf("%d of %d messages reused an (epoch, generation) although each was saved before it was sent", reused, sent)
	}
	t.Logf("%d messages over 8 kills, no generation reused", sent)
	_, reused = run("send-unsafe", 20)
	if reused == 0 {
		t.Fatal("negative control: sending before saving reused no generation over 20 kills; the check cannot fail")
	}
	t.Logf("negative control: sending before saving reused %d generations", reused)
}

// TestKillWhileReceiving: a receiver processes 300 messages (application
// messages, some out of order, and a commit every 30), saving and
// acknowledging each, and is killed six times. After every kill the stored
// group is byte for byte the state after exactly the acknowledged messages,
// or after one more (saved, killed before the acknowledgement), never
// anything else; the next life carries on from there and all messages get
// processed exactly once.
func TestKillWhileReceiving(t *testing.T) {
	if os.Getenv(killEnv) != "" {
		t.Skip("in the child")
	}
	if testing.Short() {
		t.Skip("starts child processes")
	}
	seeded(t, 31)
	a, b := killSetup(t)
	dir := t.TempDir()
	saveTo(t, dir, b.g)
	// The messages, and the state after each prefix, computed on a copy.
	var msgs [][]byte
	for i := 0; len(msgs) < 300; i++ {
		if i%30 == 29 {
			res, err := a.g.Commit(nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.g.MergePendingCommit(); err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, res.Commit)
			continue
		}
		m1, err := a.g.Encrypt([]byte(fmt.Sprint("message ", i)), nil)
		if err != nil {
			t.Fatal(err)
		}
		if i%7 == 3 { // swap with the next one: out of order
			m2, err := a.g.Encrypt([]byte(fmt.Sprint("message ", i, "b")), nil)
			if err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, m2, m1)
			continue
		}
		msgs = append(msgs, m1)
	}
	var enc strings.Builder
	for _, m := range msgs {
		enc.WriteString(hex.EncodeToString(m) + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "messages"), []byte(enc.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	ref := make([][]byte, len(msgs)+1)
	ref[0] = marshal(t, b.g)
	for i, m := range msgs {
		process(t, b, m)
		ref[i+1] = marshal(t, b.g)
	}
	which := func(g *mls.Group) int {
		s := marshal(t, g)
		for k := range ref {
			if bytes.Equal(s, ref[k]) {
				return k
			}
		}
		return -1
	}

	delay := killDelays(t)
	done, inFlight := 0, 0
	for round := 0; round < 6 && done < len(msgs); round++ {
		acked := done
		for _, f := range killRound(t, dir, "receive", done, delay()) {
			if f[0] == "ack" {
				acked, _ = strconv.Atoi(f[1])
			}
		}
		k := which(loadFrom(t, dir))
		switch {
		case k < 0:
			t.Fatalf("round %d: the stored group is in no state the message sequence leads to", round)
		case k != acked && k != acked+1:
			t.Fatalf("round %d: %d messages acknowledged, the store holds the state after %d", round, acked, k)
		case k == acked+1:
			inFlight++
		}
		t.Logf("round %d: messages %d..%d acknowledged, store after %d", round, done, acked, k)
		done = k
	}
	if done == 0 {
		t.Fatal("no message was processed: the test checked nothing")
	}
	t.Logf("%d of %d messages processed over the kills; %d kills fell between a Save and its acknowledgement",
		done, len(msgs), inFlight)
}
