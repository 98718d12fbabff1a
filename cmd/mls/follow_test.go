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
