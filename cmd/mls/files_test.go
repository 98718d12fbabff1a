package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestStateFiles: the state directory is 0700 and its files 0600 whatever
// the umask; temporary files a crash left behind are removed on start; a
// damaged state.db or a missing chat.json is reported, not taken for "no
// groups".
func TestStateFiles(t *testing.T) {
	url := startMLSD(t)
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	root := t.TempDir()
	alice := filepath.Join(root, "alice")
	ok(t, alice, "init", "--name", "alice", "--server", url)
	ok(t, alice, "create", "team")
	ok(t, alice, "send", "team", "hello")

	checkModes := func() {
		t.Helper()
		fi, err := os.Stat(alice)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o700 {
			t.Fatalf("state directory mode %o, want 700", m)
		}
		ents, _ := os.ReadDir(alice)
		var names []string
		for _, e := range ents {
			fi, _ := e.Info()
			names = append(names, e.Name())
			if m := fi.Mode().Perm(); m != 0o600 {
				t.Fatalf("%s mode %o, want 600", e.Name(), m)
			}
		}
		for _, want := range []string{"identity.json", "state.db", "chat.json"} {
			if !strings.Contains(strings.Join(names, " "), want) {
				t.Fatalf("no %s in %v", want, names)
			}
		}
	}
	checkModes()

	// The server URL is checked before anything is saved, at init and later.
	dead := filepath.Join(root, "dead")
	fails(t, dead, "cannot reach the server at http://127.0.0.1:1", "init", "--name", "dan", "--server", "http://127.0.0.1:1")
	if _, err := os.Stat(filepath.Join(dead, "identity.json")); !os.IsNotExist(err) {
		t.Fatalf("a failed init left an identity: %v", err)
	}
	fails(t, dead, "is not of the form", "init", "--name", "dan", "--server", "127.0.0.1:7420")
	fails(t, alice, "is not of the form", "set-server", "ftp://example.com")
	fails(t, alice, "cannot reach the server at http://127.0.0.1:1", "set-server", "http://127.0.0.1:1")
	contains(t, ok(t, alice, "set-server", url), "now uses the server at "+url)
	ok(t, alice, "send", "team", "still here")

	// An older build's loose modes and a crash's leftovers are fixed on start.
	os.Chmod(filepath.Join(alice, "state.db"), 0o644)
	os.Chmod(alice, 0o755)
	tmp := filepath.Join(alice, ".tmp-123456")
	if err := os.WriteFile(tmp, []byte("plaintext inbox"), 0o644); err != nil {
		t.Fatal(err)
	}
	ok(t, alice, "read") // a command that takes the lock ("groups" only looks)
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatalf("leftover temporary file still there: %v", err)
	}
	checkModes()

	// chat.json deleted: the groups in state.db are not silently forgotten.
	meta, err := os.ReadFile(filepath.Join(alice, "chat.json"))
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(alice, "chat.json"))
	fails(t, alice, `does not list the groups "team"`, "groups")
	os.WriteFile(filepath.Join(alice, "chat.json"), meta, 0o600)
	contains(t, ok(t, alice, "groups"), "team")

	// A damaged state.db: a clear error and a non-zero exit.
	os.Remove(filepath.Join(alice, "state.db-wal"))
	os.Remove(filepath.Join(alice, "state.db-shm"))
	if err := os.WriteFile(filepath.Join(alice, "state.db"), []byte(strings.Repeat("not a database ", 512)), 0o600); err != nil {
		t.Fatal(err)
	}
	fails(t, alice, "state.db is damaged", "groups")
	fails(t, alice, "state.db is damaged", "members", "team")
}
