package model

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// tools finds spin and gcc. In CI (CI=true) a missing tool fails the
// test: .ci/run installs spin, so the model check never silently stops.
func tools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"spin", "gcc"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found: .ci/run installs it (apt-get install spin gcc)", tool)
			}
			t.Skipf("%s not installed; the model check needs it", tool)
		}
	}
}

type result struct {
	out    string
	errors int
	states int64
}

var (
	errorsRe = regexp.MustCompile(`errors: (\d+)`)
	statesRe = regexp.MustCompile(`(\d+) states, stored`)
)

// check generates and runs the verifier for ordering.pml with the given
// macros: a safety run (assertions, invalid end states) or a liveness run
// (the LTL claim, acceptance cycles, weak fairness).
func check(t *testing.T, live bool, defines ...string) result {
	t.Helper()
	src, err := os.ReadFile("ordering.pml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ordering.pml"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) string {
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil && name != "./pan" {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("spin", append(append([]string{}, defines...), "-a", "ordering.pml")...)
	// COLLAPSE compresses the state vector; the search stays exhaustive.
	cc := []string{"-O2", "-w", "-DCOLLAPSE", "-o", "pan", "pan.c"}
	pan := []string{"-m100000"}
	if live {
		cc = append([]string{"-DNFAIR=3"}, cc...)
		pan = append(pan, "-a", "-f")
	} else {
		cc = append([]string{"-DSAFETY", "-DNOCLAIM"}, cc...)
	}
	run("gcc", cc...)
	out := run("./pan", pan...)
	m := errorsRe.FindStringSubmatch(out)
	s := statesRe.FindStringSubmatch(out)
	if m == nil || s == nil {
		t.Fatalf("unexpected verifier output:\n%s", out)
	}
	if strings.Contains(out, "max search depth too small") {
		t.Fatalf("search truncated by depth; raise -m:\n%s", out)
	}
	r := result{out: out}
	r.errors, _ = strconv.Atoi(m[1])
	r.states, _ = strconv.ParseInt(s[1], 10, 64)
	return r
}

// TestOrderingModel explores every interleaving of the small configuration
// (two clients, one commit each, one crash of each client at any step, one
// server crash between write and answer) and requires no violation.
func TestOrderingModel(t *testing.T) {
	tools(t)
	configs := [][]string{{"-DNC=2"}}
	if os.Getenv("MLSD_MODEL_LARGE") != "" {
		configs = append(configs, []string{"-DNC=3", "-DCCRASH=0"})
	}
	for _, defs := range configs {
		for _, live := range []bool{false, true} {
			r := check(t, live, defs...)
			kind := "safety"
			if live {
				kind = "liveness"
			}
			if r.errors != 0 {
				t.Fatalf("%v %s: %d errors\n%s", defs, kind, r.errors, r.out)
			}
			t.Logf("ordering.pml %v %s: %d states, errors: 0", defs, kind, r.states)
		}
	}
}

// TestOrderingModelRejectsBroken shows the model can fail: each broken
// variant must yield a counterexample naming the property it breaks.
func TestOrderingModelRejectsBroken(t *testing.T) {
	tools(t)
	for _, tc := range []struct {
		name string
		live bool
		defs []string
		want string
	}{
		// The accept rule without the epoch check: two commits win one epoch.
		{"accept without epoch check", false, []string{"-DBROKEN_ACCEPT"}, "assertion violated (won[e]==0)"},
		// Answering before the write is durable: an acknowledged record is lost.
		{"ack before write", false, []string{"-DACK_BEFORE_WRITE"}, "assertion violated (((ackedSeq[0]"},
		// internal/chat as it is: a broken connection after the server wrote
		// the commit makes the client discard it; the log then holds a
		// commit the client cannot apply, and it never catches up.
		{"chat discards pending commit on a broken connection", true, []string{"-DCHAT_AS_IS", "-DCCRASH=0"}, "acceptance cycle"},
		// internal/chat as it is: a crash after saving the pending commit
		// and before the server answered leaves it pending; every later
		// commit fails with ErrPendingCommit until another member commits.
		{"chat keeps a crashed pending commit forever", true, []string{"-DCHAT_AS_IS", "-DSCRASH=0"}, "acceptance cycle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := check(t, tc.live, tc.defs...)
			if r.errors == 0 || !strings.Contains(r.out, tc.want) {
				t.Fatalf("%v: want a counterexample with %q, got %d errors:\n%s", tc.defs, tc.want, r.errors, r.out)
			}
			t.Logf("%v: counterexample found (%s) after %d states", tc.defs, tc.want, r.states)
		})
	}
}
