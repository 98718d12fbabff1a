package client_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mlskit/mlskit/client"
	"github.com/mlskit/mlskit/storage/memory"
	"github.com/mlskit/mlskit/storage/sqlite"
)

// pair makes alice and bob on an in-process server, with team = {alice, bob}.
func pair(t *testing.T, bobOpts client.InitOptions) (alice, bob *client.Client, bobDir string) {
	t.Helper()
	ctx := context.Background()
	root := t.TempDir()
	url, stop := startServer(filepath.Join(root, "mlsd"))
	t.Cleanup(stop)
	alice, err := client.Init(ctx, filepath.Join(root, "alice"), client.InitOptions{Name: "alice", Server: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alice.Close() })
	bobOpts.Name, bobOpts.Server = "bob", url
	bobDir = filepath.Join(root, "bob")
	bob, err = client.Init(ctx, bobDir, bobOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bob.Close() })
	if _, err := bob.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	if err := alice.CreateGroup(ctx, "team"); err != nil {
		t.Fatal(err)
	}
	if err := alice.Invite(ctx, "team", "bob"); err != nil {
		t.Fatal(err)
	}
	return alice, bob, bobDir
}

// TestEvents: the iterator yields typed events without polling (an
// invitation joined, messages, the ready status, this client's removal);
// events due after the one a loop stopped at are not lost.
func TestEvents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	alice, bob, _ := pair(t, client.InitOptions{})
	for _, m := range []string{"one", "two", "three"} {
		if err := alice.Send(ctx, "team", m); err != nil {
			t.Fatal(err)
		}
	}
	// Stop after the first message: "two" and "three" stay due.
	var kinds []client.EventKind
	for e, err := range bob.Events(ctx, client.FollowOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, e.Kind)
		if e.Kind == client.EventJoined && (e.From != "alice" || !slices.Equal(e.Members, []string{"alice", "bob"})) {
			t.Fatalf("joined event: %+v", e)
		}
		if e.Kind == client.EventMessage {
			if e.Text != "one" || e.From != "alice" {
				t.Fatalf("first message: %+v", e)
			}
			break
		}
	}
	if !slices.Equal(kinds, []client.EventKind{client.EventJoined, client.EventMessage}) {
		t.Fatalf("events %v", kinds)
	}
	evs, err := bob.Read(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, e := range evs {
		texts = append(texts, e.Text)
	}
	if !slices.Equal(texts, []string{"two", "three"}) {
		t.Fatalf("after the loop stopped, Read returned %q", texts)
	}

	// Live: alice sends while bob follows, then removes him; bob learns of
	// his own removal at once, as a typed event.
	var got []client.EventKind
	for e, err := range bob.Events(ctx, client.FollowOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Kind)
		switch {
		case e.Kind == client.EventStatus && e.Text == client.StatusReady:
			if err := alice.Send(ctx, "team", "live"); err != nil {
				t.Fatal(err)
			}
		case e.Kind == client.EventMessage:
			if err := alice.Remove(ctx, "team", "bob"); err != nil {
				t.Fatal(err)
			}
		}
		if e.Kind == client.EventRemovedSelf {
			if e.From != "alice" {
				t.Fatalf("removed by %q", e.From)
			}
			break
		}
	}
	if want := []client.EventKind{client.EventStatus, client.EventMessage, client.EventRemovedSelf}; !slices.Equal(got, want) {
		t.Fatalf("live events %v, want %v", got, want)
	}
	// Follow (and Events) for the group now end with ErrRemoved.
	in := make(chan string)
	var last error
	for _, err := range bob.Events(ctx, client.FollowOptions{Group: "team", Input: in}) {
		last = err
	}
	if !errors.Is(last, client.ErrRemoved) {
		t.Fatalf("following a group bob was removed from yielded %v, want ErrRemoved", last)
	}
}

// TestOpenWithStore: the MLS state lives in the application's storage.Store
// (here storage/memory), not in state.db; the client works the same, and
// reopening with the same store continues.
func TestOpenWithStore(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	defer st.Close()
	alice, bob, bdir := pair(t, client.InitOptions{Store: st})
	if bob.Durable() {
		t.Fatal("a client over storage/memory says its state is durable")
	}
	if _, err := os.Stat(filepath.Join(bdir, "state.db")); !os.IsNotExist(err) {
		t.Fatalf("state.db exists with an application store: %v", err)
	}
	if _, err := bob.Read(ctx, ""); err != nil {
		t.Fatal(err)
	}
	groups, err := st.ListGroups(ctx)
	if err != nil || len(groups) != 1 || string(groups[0]) != "team" {
		t.Fatalf("the store holds %q, %v", groups, err)
	}
	// Close leaves the application's store open; reopening continues.
	if err := bob.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ListGroups(ctx); err != nil {
		t.Fatalf("Close closed the application's store: %v", err)
	}
	bob2, err := client.OpenWithStore(bdir, st)
	if err != nil {
		t.Fatal(err)
	}
	defer bob2.Close()
	if err := alice.Send(ctx, "team", "still there?"); err != nil {
		t.Fatal(err)
	}
	evs, err := bob2.Read(ctx, "team")
	if err != nil || len(evs) != 1 || evs[0].Text != "still there?" {
		t.Fatalf("after reopening: %+v, %v", evs, err)
	}
	if _, err := client.OpenWithStore(bdir, nil); err == nil {
		t.Fatal("OpenWithStore accepted a nil store")
	}
}

// TestInitStore: a client kept wholly in a storage.Store (here a SQLite
// file the application owns), with no state directory: it registers, is
// invited, reads, and after Close and OpenStore goes on where it was, with
// its identity, cursors and groups all in the store.
func TestInitStore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	root := t.TempDir()
	url, stop := startServer(filepath.Join(root, "mlsd"))
	t.Cleanup(stop)
	alice, err := client.Init(ctx, filepath.Join(root, "alice"), client.InitOptions{Name: "alice", Server: url})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()

	dbPath := filepath.Join(root, "app.db")
	st, err := sqlite.Open(dbPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.OpenStore(st); !errors.Is(err, client.ErrNoIdentity) {
		t.Fatalf("OpenStore of an empty store: %v, want ErrNoIdentity", err)
	}
	bob, err := client.InitStore(ctx, st, client.InitOptions{Name: "bob", Server: url})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.InitStore(ctx, st, client.InitOptions{Name: "bob2", Server: url}); !errors.Is(err, client.ErrUsage) {
		t.Fatalf("a second InitStore on the same store: %v, want ErrUsage", err)
	}
	if !bob.Durable() {
		t.Fatal("a client over a SQLite store says its state is not durable")
	}
	if _, err := bob.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	if err := alice.CreateGroup(ctx, "team"); err != nil {
		t.Fatal(err)
	}
	if err := alice.Invite(ctx, "team", "bob"); err != nil {
		t.Fatal(err)
	}
	if err := alice.Send(ctx, "team", "one"); err != nil {
		t.Fatal(err)
	}
	evs, err := bob.Read(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if texts := messageTexts(evs); !slices.Equal(texts, []string{"one"}) {
		t.Fatalf("bob read %q, want [one]", texts)
	}
	if err := bob.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	// Nothing but the application's database was written.
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		if n := e.Name(); n != "mlsd" && n != "alice" && !strings.HasPrefix(n, "app.db") {
			t.Errorf("the store client wrote %s outside its store", n)
		}
	}

	// A later process: the same file, everything continues.
	st, err = sqlite.Open(dbPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	bob, err = client.OpenStore(st)
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	if bob.Identity().Name != "bob" {
		t.Fatalf("reopened identity %q", bob.Identity().Name)
	}
	if err := alice.Send(ctx, "team", "two"); err != nil {
		t.Fatal(err)
	}
	evs, err = bob.Read(ctx, "team")
	if err != nil {
		t.Fatal(err)
	}
	if texts := messageTexts(evs); !slices.Equal(texts, []string{"two"}) {
		t.Fatalf("after OpenStore bob read %q, want [two] (the cursor was kept)", texts)
	}
	if err := bob.Send(ctx, "team", "back"); err != nil {
		t.Fatal(err)
	}
	evs, err = alice.Read(ctx, "team")
	if err != nil || !slices.Contains(messageTexts(evs), "back") {
		t.Fatalf("alice read %+v, %v", evs, err)
	}
	for _, k := range []string{"mlskit/client/identity.json", "mlskit/client/chat.json"} {
		if _, err := st.AppRecord(ctx, []byte(k)); err != nil {
			t.Errorf("record %s: %v", k, err)
		}
	}
}

func messageTexts(evs []client.Event) []string {
	var out []string
	for _, e := range evs {
		if e.Kind == client.EventMessage {
			out = append(out, e.Text)
		}
	}
	return out
}
