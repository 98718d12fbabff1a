package main

import (
	"bufio"
	"bytes"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFollowLive: alice runs "mls follow team" with her terminal's input
// and output replaced by pipes; lines appear on her output while bob sends,
// before follow returns, and a line typed on her input reaches bob.
//
// A pipe stands in for the terminal because follow writes one complete
// line per event and behaves the same whatever its output is (no terminal
// detection, no cursor control), so reading its output line by line sees
// exactly what a person would, at the moment it is written; a pty would add
// a dependency and show nothing more.
func TestFollowLive(t *testing.T) {
	url := startMLSD(t)
	root := t.TempDir()
	alice, bob := filepath.Join(root, "alice"), filepath.Join(root, "bob")
	ok(t, alice, "init", "--name", "alice", "--server", url)
	ok(t, bob, "init", "--name", "bob", "--server", url)
	ok(t, alice, "create", "team")
	ok(t, alice, "invite", "team", "bob")
	ok(t, bob, "join")

	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- runChat("follow", []string{"team", "--dir", alice}, inR, outW, &stderr)
		outW.Close()
	}()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	expect := func(want string) {
		t.Helper()
		deadline := time.After(15 * time.Second)
		for {
			select {
			case l, open := <-lines:
				if !open {
					t.Fatalf("follow ended before %q arrived; stderr: %s", want, stderr.String())
				}
				if strings.Contains(l, want) {
					return
				}
			case <-deadline:
				t.Fatalf("no line with %q within 15s", want)
			}
		}
	}
	for i, msg := range []string{"first live message", "second live message"} {
		ok(t, bob, "send", "team", msg)
		expect("bob: " + msg)
		select {
		case code := <-done:
			t.Fatalf("follow returned %d after message %d", code, i)
		default:
		}
	}
	// Bob's key update shows up live too.
	ok(t, bob, "update", "team")
	expect("bob updated their keys")

	// What alice types is sent.
	if _, err := io.WriteString(inW, "typed by alice\n"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if out := ok(t, bob, "read", "team"); strings.Contains(out, "alice: typed by alice") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("bob never received what alice typed")
		}
		time.Sleep(100 * time.Millisecond)
	}
	inW.Close()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("follow exit %d: %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not end when its input closed")
	}
}

// terminal is one "mls follow" run with pipes for its keyboard and screen.
type terminal struct {
	t      *testing.T
	name   string
	in     *io.PipeWriter
	lines  chan string
	done   chan int
	stderr *bytes.Buffer
}

func startFollow(t *testing.T, name, dir, group string) *terminal {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	term := &terminal{t: t, name: name, in: inW, lines: make(chan string, 64), done: make(chan int, 1), stderr: new(bytes.Buffer)}
	go func() {
		term.done <- runChat("follow", []string{group, "--dir", dir}, inR, outW, term.stderr)
		outW.Close()
	}()
	go func() {
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			term.lines <- sc.Text()
		}
		close(term.lines)
	}()
	t.Cleanup(func() { inW.Close() })
	return term
}

// expect waits for a line containing want and returns it.
func (term *terminal) expect(want string) string {
	term.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case l, open := <-term.lines:
			if !open {
				term.t.Fatalf("%s: follow ended before %q arrived; stderr: %s", term.name, want, term.stderr.String())
			}
			if strings.Contains(l, want) {
				return l
			}
		case <-deadline:
			term.t.Fatalf("%s: no line with %q within 20s", term.name, want)
		}
	}
}

func (term *terminal) typeLine(s string) {
	term.t.Helper()
	if _, err := io.WriteString(term.in, s+"\n"); err != nil {
		term.t.Fatal(err)
	}
}

func (term *terminal) exit() int {
	term.t.Helper()
	select {
	case code := <-term.done:
		return code
	case <-time.After(20 * time.Second):
		term.t.Fatalf("%s: follow did not end", term.name)
		return -1
	}
}

// TestFollowThreeTerminals is the README's three-terminal chat: alice, bob
// and carol follow one group, bob and carol joining from their Welcome;
// each sees the others' lines and its own; authenticators are compared
// with "mls authenticator" while every follow runs; the in-band commands
// work; mlsd is killed and restarted and every follow reconnects and keeps
// printing.
func TestFollowThreeTerminals(t *testing.T) {
	mlsd := newMLSD(t)
	url := mlsd.start(t, "127.0.0.1:0")
	root := t.TempDir()
	dirs := map[string]string{}
	for _, u := range []string{"alice", "bob", "carol"} {
		dirs[u] = filepath.Join(root, u)
		ok(t, dirs[u], "init", "--name", u, "--server", url)
	}
	ok(t, dirs["alice"], "create", "team")
	ok(t, dirs["alice"], "invite", "team", "bob", "carol")

	terms := map[string]*terminal{}
	for _, u := range []string{"alice", "bob", "carol"} {
		terms[u] = startFollow(t, u, dirs[u], "team")
		terms[u].expect("ready: following \"team\" as " + u)
	}
	// Authenticators compared from other commands while following.
	a, b, c := authenticator(t, dirs["alice"], "team"), authenticator(t, dirs["bob"], "team"), authenticator(t, dirs["carol"], "team")
	if a != b || b != c || len(a) < 64 {
		t.Fatalf("epoch authenticators differ: %q %q %q", a, b, c)
	}
	contains(t, ok(t, dirs["bob"], "members", "team"), "3 members")

	terms["alice"].typeLine("hello from alice")
	terms["alice"].expect("alice: hello from alice") // own line echoed
	terms["bob"].expect("alice: hello from alice")
	terms["carol"].expect("alice: hello from alice")
	terms["carol"].typeLine("//slash is text")
	terms["bob"].expect("carol: /slash is text")

	// In-band commands.
	terms["bob"].typeLine("/members")
	terms["bob"].expect("3 members")
	terms["bob"].typeLine("/auth")
	terms["bob"].expect("authenticator")
	terms["bob"].expect(strings.TrimSpace(strings.SplitN(a, "\n", 2)[0]))
	terms["bob"].typeLine("/nonsense")
	terms["bob"].expect("unknown command /nonsense")

	// mlsd dies and comes back on the same address; every follow says so,
	// reconnects, and goes on printing.
	addr := strings.TrimPrefix(url, "http://")
	mlsd.kill()
	for _, u := range []string{"alice", "bob", "carol"} {
		terms[u].expect("connection lost")
	}
	mlsd.start(t, addr)
	for _, u := range []string{"alice", "bob", "carol"} {
		terms[u].expect("reconnected")
	}
	terms["bob"].typeLine("after the restart")
	terms["alice"].expect("bob: after the restart")
	terms["carol"].expect("bob: after the restart")

	// Bob stops following and removes carol. mlsd delivers the commit that
	// removed her (and nothing after it), so her follow learns of it at once
	// from the MLS commit itself and ends.
	terms["bob"].typeLine("/quit")
	if code := terms["bob"].exit(); code != 0 {
		t.Fatalf("bob's follow exit %d: %s", code, terms["bob"].stderr.String())
	}
	ok(t, dirs["bob"], "remove", "team", "carol")
	terms["carol"].exit()
	if msg := terms["carol"].stderr.String(); !strings.Contains(msg, "you were removed") {
		t.Fatalf("carol's follow did not learn of her removal: stderr %q", msg)
	}
	terms["alice"].expect("bob removed carol")
	terms["alice"].typeLine("/quit")
	if code := terms["alice"].exit(); code != 0 {
		t.Fatalf("alice's follow exit %d: %s", code, terms["alice"].stderr.String())
	}
}
