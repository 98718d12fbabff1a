package sqlite

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mlskit/mlskit/storage"
)

// The crash test's writer runs in a child process (this test binary, re-run
// with crashEnv naming the database), so that it can be killed with SIGKILL
// at an arbitrary point of a Write: no deferred function, no Close, no
// flush runs.
const crashEnv = "MLSKIT_STORAGE_CRASH_DB"

// Batch e of the crash writer moves the group to epoch e and touches every
// kind of record, so that a torn batch shows up as a mismatch in one of them.
const crashKeep = 3 // past epochs kept

func crashState(e uint64) []byte {
	// Sizes vary between 1 KB and 21 KB, so batches free and reuse overflow
	// pages.
	n := 1000 + int(e*7919%20000)
	return append(fmt.Appendf(nil, "state %d|", e), filler(strconv.FormatUint(e, 10), n)...)
}

func crashBatch(e uint64) *storage.Batch {
	b := &storage.Batch{
		GroupID: gid,
		State:   crashState(e),
		Epoch:   e,
		Epochs:  []storage.EpochRecord{{Epoch: e, Data: fmt.Appendf(nil, "epoch %d", e)}},
		KeyPackages: []storage.Record{
			{Key: fmt.Appendf(nil, "kp %d", e), Value: fmt.Appendf(nil, "kp value %d", e)},
		},
		DeleteKeyPackages: [][]byte{fmt.Appendf(nil, "kp %d", e-1)},
	}
	for _, k := range []string{"k0", "k1", "k2"} {
		b.MessageKeys = append(b.MessageKeys, storage.MessageKeyRecord{
			MessageKeyID: storage.MessageKeyID{Epoch: e, ID: []byte(k)}, Data: fmt.Appendf(nil, "mk %d/%s", e, k)})
	}
	if e > 1 {
		b.DeleteMessageKeys = []storage.MessageKeyID{{Epoch: e - 1, ID: []byte("k0")}}
	}
	if e > crashKeep {
		b.DeleteEpochs = []uint64{e - crashKeep} // and its message keys
	}
	if e%2 == 0 {
		b.PSKs = []storage.Record{{Key: fmt.Appendf(nil, "psk %d", e), Value: fmt.Appendf(nil, "psk value %d", e)}}
		b.DeletePSKs = [][]byte{fmt.Appendf(nil, "psk %d", e-2)}
		b.ClearPendingCommit = true
	} else {
		b.PendingCommit = fmt.Appendf(nil, "commit %d", e)
	}
	return b
}

// checkCrashStore checks that the store holds exactly the result of batches
// 1..e for the epoch e it reports, and returns e.
func checkCrashStore(s *Store) (uint64, error) {
	ctx := context.Background()
	state, e, err := s.LoadGroup(ctx, gid)
	if errors.Is(err, storage.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if !bytes.Equal(state, crashState(e)) {
		return e, fmt.Errorf("epoch %d: state is not the one written with it", e)
	}
	var problems []string
	expect := func(what string, got []byte, err error, want []byte) {
		switch {
		case want == nil && !errors.Is(err, storage.ErrNotFound):
			problems = append(problems, fmt.Sprintf("%s: present (%q, %v), want absent", what, got, err))
		case want != nil && (err != nil || !bytes.Equal(got, want)):
			problems = append(problems, fmt.Sprintf("%s: %q, %v, want %q", what, got, err, want))
		}
	}
	for j := e - min(e, crashKeep+1); j <= e+1; j++ {
		v, err := s.LoadEpoch(ctx, gid, j)
		var want []byte
		if j >= 1 && j <= e && j > e-min(e, crashKeep) {
			want = fmt.Appendf(nil, "epoch %d", j)
		}
		expect(fmt.Sprintf("epoch %d", j), v, err, want)
		for _, k := range []string{"k0", "k1", "k2"} {
			v, err := s.MessageKey(ctx, gid, j, []byte(k))
			want = nil
			if j >= 1 && j <= e && j > e-min(e, crashKeep) && (k != "k0" || j == e) {
				want = fmt.Appendf(nil, "mk %d/%s", j, k)
			}
			expect(fmt.Sprintf("message key %d/%s", j, k), v, err, want)
		}
		v, err = s.KeyPackage(ctx, fmt.Appendf(nil, "kp %d", j))
		want = nil
		if j == e {
			want = fmt.Appendf(nil, "kp value %d", j)
		}
		expect(fmt.Sprintf("key package %d", j), v, err, want)
		v, err = s.PSK(ctx, fmt.Appendf(nil, "psk %d", j))
		want = nil
		if j%2 == 0 && j >= 2 && j <= e && j+2 > e {
			want = fmt.Appendf(nil, "psk value %d", j)
		}
		expect(fmt.Sprintf("psk %d", j), v, err, want)
	}
	v, err := s.PendingCommit(ctx, gid)
	var want []byte
	if e%2 == 1 {
		want = fmt.Appendf(nil, "commit %d", e)
	}
	expect("pending commit", v, err, want)
	if len(problems) > 0 {
		return e, fmt.Errorf("store at epoch %d is not the result of whole batches:\n%s", e, strings.Join(problems, "\n"))
	}
	var integrity string
	if err := s.db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&integrity); err != nil || integrity != "ok" {
		return e, fmt.Errorf("integrity_check: %q, %v", integrity, err)
	}
	return e, nil
}

// crashModeEnv selects the child's Options: "" for the real ones,
// "nonatomic" for the negative control.
const crashModeEnv = "MLSKIT_STORAGE_CRASH_MODE"

// TestCrashWriter is the child process of TestCrashRecovery; it does nothing
// when run directly.
func TestCrashWriter(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("child process of TestCrashRecovery")
	}
	opts := &Options{nonAtomic: os.Getenv(crashModeEnv) == "nonatomic"}
	s, err := Open(path, opts)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	ctx := context.Background()
	_, e, err := s.LoadGroup(ctx, gid)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		fmt.Println("error", err)
		os.Exit(2)
	}
	fmt.Println("ready", e)
	for e++; ; e++ {
		if err := s.Write(ctx, crashBatch(e)); err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		// Acknowledged: from here on batch e must survive the kill.
		fmt.Println("ack", e)
	}
}

// crashRound runs the writer in a child process on the database at path,
// SIGKILLs it after delay, reopens the database and checks it. It returns
// the epochs the child started from and last acknowledged, and the epoch
// the store holds; err describes an inconsistent store.
func crashRound(t *testing.T, path, mode string, delay time.Duration) (start, last, e uint64, err error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashWriter$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path, crashModeEnv+"="+mode)
	cmd.Stderr = os.Stderr
	out, perr := cmd.StdoutPipe()
	if perr != nil {
		t.Fatal(perr)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), "ready ") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child did not start: %q", lines.Text())
	}
	start, _ = strconv.ParseUint(strings.TrimPrefix(lines.Text(), "ready "), 10, 64)

	killed := make(chan struct{})
	go func() {
		time.Sleep(delay)
		cmd.Process.Kill() // SIGKILL on Unix: the child gets no chance to clean up
		close(killed)
	}()
	last = start
	for lines.Scan() {
		f := strings.Fields(lines.Text())
		if len(f) != 2 || f[0] != "ack" {
			<-killed
			cmd.Wait()
			t.Fatalf("child: %q", lines.Text())
		}
		last, _ = strconv.ParseUint(f[1], 10, 64)
	}
	<-killed
	cmd.Wait()

	s, oerr := Open(path, nil)
	if oerr != nil {
		return start, last, 0, fmt.Errorf("reopen after kill: %w", oerr)
	}
	defer s.Close()
	e, err = checkCrashStore(s)
	if err == nil && (e < last || e > last+1) {
		// The last acknowledged batch must be there; at most the one in
		// flight when the kill came may be there too.
		err = fmt.Errorf("last acknowledged epoch %d, store at epoch %d", last, e)
	}
	return start, last, e, err
}

// TestCrashRecovery kills a writer at random points of its stream of
// batches, reopens the database, and checks that every batch is either
// wholly present or wholly absent and that the last acknowledged one is
// present. SIGKILL tests process crashes; a power cut, which also loses the
// OS's unwritten pages, is what synchronous=FULL is for and cannot be
// simulated here.
//
// The negative control runs the same child with each statement of a batch
// in its own transaction, and requires the check to catch a torn batch.
func TestCrashRecovery(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("in the child")
	}
	if testing.Short() {
		t.Skip("starts child processes")
	}
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("seed %d", seed)
	delay := func() time.Duration { return time.Duration(rng.IntN(150_000)) * time.Microsecond }

	t.Run("atomic", func(t *testing.T) {
		path := t.TempDir() + "/crash.db"
		const rounds = 10
		var acked, inFlight uint64
		for round := range rounds {
			d := delay()
			start, last, e, err := crashRound(t, path, "", d)
			if err != nil {
				t.Fatalf("round %d (killed after %v): %v", round, d, err)
			}
			acked += last - start
			if e == last+1 {
				inFlight++
			}
			t.Logf("round %d: killed after %v, epochs %d..%d acknowledged, store at %d", round, d, start, last, e)
		}
		if acked == 0 {
			t.Fatal("no batch was acknowledged in any round: the test checked nothing")
		}
		t.Logf("%d batches acknowledged over %d kills; %d kills fell after a commit but before its acknowledgement",
			acked, rounds, inFlight)
	})

	t.Run("negative control", func(t *testing.T) {
		path := t.TempDir() + "/crash.db"
		for round := range 10 {
			d := delay()
			_, _, _, err := crashRound(t, path, "nonatomic", d)
			if err != nil {
				t.Logf("round %d: torn batch detected, as it must be: %v", round, firstLine(err))
				return
			}
		}
		t.Fatal("a writer without transactions was killed 10 times and no torn batch was detected: the check cannot fail")
	})
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
