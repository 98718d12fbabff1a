package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// startMLSD builds cmd/mlsd and runs it on a free loopback port with a
// fresh data directory, as a separate process.
func startMLSD(t *testing.T) string {
	t.Helper()
	return newMLSD(t).start(t, "127.0.0.1:0")
}

// goBinary finds the go command that builds mlsd for the tests.
func goBinary(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH to build mlsd")
	}
	return p
}

// mlsdProcess is a built mlsd with its data directory, which a test can
// stop and start again on the same address.
type mlsdProcess struct {
	bin, data string
	cmd       *exec.Cmd
}

func newMLSD(t *testing.T) *mlsdProcess {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs mlsd")
	}
	bin := filepath.Join(t.TempDir(), "mlsd")
	gobin := goBinary(t)
	build := exec.Command(gobin, "build", "-o", bin, "github.com/mlskit/mlskit/cmd/mlsd")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building mlsd: %v\n%s", err, out)
	}
	m := &mlsdProcess{bin: bin, data: t.TempDir()}
	t.Cleanup(m.kill)
	return m
}

// start runs mlsd listening on addr and returns its URL.
func (m *mlsdProcess) start(t *testing.T, addr string) string {
	t.Helper()
	cmd := exec.Command(m.bin, "serve", "-listen", addr, "-log-level", "error", "-data", m.data)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m.cmd = cmd
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("mlsd did not start: %v", err)
	}
	f := strings.Fields(line)
	if len(f) < 4 || !strings.HasPrefix(f[3], "http") {
		t.Fatalf("mlsd said %q", line)
	}
	return f[3]
}

// kill stops mlsd with SIGKILL.
func (m *mlsdProcess) kill() {
	if m.cmd != nil {
		m.cmd.Process.Kill()
		m.cmd.Wait()
		m.cmd = nil
	}
}

// The test binary doubles as the mls command run as a separate process
// (a restarted client), as cmd/mlsd's crash test does.
func TestMain(m *testing.M) {
	if args := os.Getenv("MLS_CHILD_ARGS"); args != "" {
		var argv []string
		if err := json.Unmarshal([]byte(args), &argv); err != nil {
			os.Exit(2)
		}
		os.Exit(run(argv, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// childMLS runs an mls command line in a new process.
func childMLS(t *testing.T, args ...string) string {
	t.Helper()
	enc, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "MLS_CHILD_ARGS="+string(enc))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mls %s in a new process: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

type result struct {
	out, err string
	code     int
}

// mlsCmd runs one mls command line in-process, as a user at a terminal.
func mlsCmd(t *testing.T, dir string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append(args, "--dir", dir), &out, &errb)
	return result{out.String(), errb.String(), code}
}

func ok(t *testing.T, dir string, args ...string) string {
	t.Helper()
	r := mlsCmd(t, dir, args...)
	if r.code != 0 {
		t.Fatalf("mls %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.out, r.err)
	}
	return r.out
}

// fails runs a command that must fail with a one-line message containing
// want, and no Go stack trace.
func fails(t *testing.T, dir, want string, args ...string) {
	t.Helper()
	r := mlsCmd(t, dir, args...)
	if r.code == 0 {
		t.Fatalf("mls %s succeeded, want an error containing %q", strings.Join(args, " "), want)
	}
	if !strings.Contains(r.err, want) || strings.Contains(r.err, "goroutine ") || strings.Count(strings.TrimSpace(r.err), "\n") > 2 {
		t.Fatalf("mls %s: stderr %q, want a short message containing %q", strings.Join(args, " "), r.err, want)
	}
}

func contains(t *testing.T, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Fatalf("output lacks %q:\n%s", w, got)
		}
	}
}

func authenticator(t *testing.T, dir, group string) string {
	out := ok(t, dir, "authenticator", group)
	return out[strings.Index(out, "\n")+1:]
}

// TestChatEndToEnd: a real mlsd process and three users with separate
// state directories create a group, invite, chat, remove a member (who
// then cannot read), and a member restarts and continues.
func TestChatEndToEnd(t *testing.T) {
	url := startMLSD(t)
	root := t.TempDir()
	alice, bob, carol := filepath.Join(root, "alice"), filepath.Join(root, "bob"), filepath.Join(root, "carol")
	for _, u := range []struct{ dir, name string }{{alice, "alice"}, {bob, "bob"}, {carol, "carol"}} {
		contains(t, ok(t, u.dir, "init", "--name", u.name, "--server", url), "published 11 KeyPackages")
	}

	ok(t, alice, "create", "team")
	contains(t, ok(t, alice, "invite", "team", "bob", "carol"), "invited bob, carol", "epoch 1")
	contains(t, ok(t, bob, "read"), "alice added you", "alice, bob, carol")
	contains(t, ok(t, carol, "join"), "[team]", "alice added you")
	contains(t, ok(t, alice, "members", "team"), "epoch 1, 3 members", "bob", "carol")

	ok(t, alice, "send", "team", "hello", "everyone")
	ok(t, bob, "send", "team", "hi alice")
	contains(t, ok(t, carol, "read", "team"), "alice: hello everyone", "bob: hi alice")
	contains(t, ok(t, alice, "read"), "bob: hi alice")
	if out := ok(t, alice, "read"); strings.Contains(out, "hi alice") {
		t.Fatalf("read showed a message twice:\n%s", out)
	}
	// A commit from a member other than the creator.
	contains(t, ok(t, bob, "update", "team"), "epoch 2")
	contains(t, ok(t, alice, "read"), "bob updated their keys (epoch 2)")
	contains(t, ok(t, carol, "read"), "bob updated their keys (epoch 2)")
	a, b, c := authenticator(t, alice, "team"), authenticator(t, bob, "team"), authenticator(t, carol, "team")
	if a != b || b != c || len(a) < 64 {
		t.Fatalf("epoch authenticators differ: %q %q %q", a, b, c)
	}

	// The KeyPackages the Welcome used were replenished.
	contains(t, ok(t, bob, "publish"), "uploaded")

	// Remove carol; she cannot read what follows.
	contains(t, ok(t, alice, "remove", "team", "carol"), "removed carol")
	ok(t, alice, "send", "team", "carol cannot read this")
	// mlsd stops delivering the log to a removed member, commit included;
	// the server's refusal is reported as such, never as an MLS removal.
	out := ok(t, carol, "read", "team")
	// mlsd delivers the commit that removed her (and nothing after it).
	contains(t, out, "alice removed you from the group")
	if strings.Contains(out, "carol cannot read this") {
		t.Fatalf("a removed member read a new message:\n%s", out)
	}
	fails(t, carol, "you were removed from group", "read", "team")
	fails(t, carol, "you were removed", "send", "team", "still here?")
	out = ok(t, bob, "read")
	contains(t, out, "alice removed carol", "alice: carol cannot read this")
	contains(t, ok(t, bob, "members", "team"), "2 members")

	// Errors a person can cause.
	fails(t, alice, "no KeyPackage for zed", "invite", "team", "zed")
	fails(t, alice, "not a member of group \"nope\"", "send", "nope", "x")
	fails(t, alice, "carol is not a member", "remove", "team", "carol")
	fails(t, alice, "already a member", "invite", "team", "bob")
	ok(t, bob, "create", "bobs")
	fails(t, alice, "already exists on the server", "create", "bobs")
	fails(t, filepath.Join(root, "nobody"), "no identity in", "read")
	dead := filepath.Join(root, "dead")
	fails(t, dead, "cannot reach the server at http://127.0.0.1:1", "init", "--name", "dan", "--server", "http://127.0.0.1:1")

	// A member restarts: bob's next commands run in a new process (this test
	// binary running the mls command), from his state directory alone.
	t.Run("restart", func(t *testing.T) {
		ok(t, alice, "send", "team", "are you back?")
		contains(t, childMLS(t, "read", "--dir", bob), "alice: are you back?")
		childMLS(t, "send", "team", "back after a restart", "--dir", bob)
		contains(t, ok(t, alice, "read", "team"), "bob: back after a restart")
	})

	// Leaving: bob asks to leave; alice commits his removal on her next read.
	contains(t, ok(t, bob, "leave", "team"), "left \"team\"")
	fails(t, bob, "not a member of group \"team\"", "send", "team", "x")
	contains(t, ok(t, alice, "read"), "bob asked to leave")
	contains(t, ok(t, alice, "members", "team"), "1 members", "alice (you)")
}
