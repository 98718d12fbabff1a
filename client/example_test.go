package client_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/mlskit/mlskit/client"
	"github.com/mlskit/mlskit/ds/server"
	"github.com/mlskit/mlskit/ds/store/sqlite"
	"github.com/mlskit/mlskit/storage/memory"
	mlsstore "github.com/mlskit/mlskit/storage/sqlite"
)

// startServer runs an in-process mlsd for the examples; an application
// points its clients at a real one ("mlsd serve").
func startServer(dir string) (url string, stop func()) {
	st, err := sqlite.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		log.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv.Handler())
	hs.Config.Protocols = new(http.Protocols)
	hs.Config.Protocols.SetHTTP1(true)
	hs.Config.Protocols.SetUnencryptedHTTP2(true)
	hs.Start()
	return hs.URL, func() { hs.Close(); st.Close() }
}

// Two people chat: alice creates a group and invites bob; bob's Read joins
// it from his Welcome and returns alice's message as an event. Names and
// text in events are data chosen by other people: render them safely
// before showing them (cmd/mls escapes control and bidi characters).
func Example() {
	root, _ := os.MkdirTemp("", "client-example")
	defer os.RemoveAll(root)
	url, stop := startServer(filepath.Join(root, "mlsd"))
	defer stop()
	ctx := context.Background()

	alice, err := client.Init(ctx, filepath.Join(root, "alice"), client.InitOptions{Name: "alice", Server: url})
	if err != nil {
		log.Fatal(err)
	}
	defer alice.Close()
	bob, err := client.Init(ctx, filepath.Join(root, "bob"), client.InitOptions{Name: "bob", Server: url})
	if err != nil {
		log.Fatal(err)
	}
	defer bob.Close()
	// KeyPackages let others add you while you are offline.
	if _, err := alice.Publish(ctx); err != nil {
		log.Fatal(err)
	}
	if _, err := bob.Publish(ctx); err != nil {
		log.Fatal(err)
	}

	if err := alice.CreateGroup(ctx, "team"); err != nil {
		log.Fatal(err)
	}
	if err := alice.Invite(ctx, "team", "bob"); err != nil {
		log.Fatal(err)
	}
	if err := alice.Send(ctx, "team", "hello bob"); err != nil {
		log.Fatal(err)
	}

	events, err := bob.Read(ctx, "")
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range events {
		fmt.Printf("%s %s: %q\n", e.Kind, e.From, e.Text)
	}
	a, _ := alice.Status(ctx, "team")
	b, _ := bob.Status(ctx, "team")
	fmt.Println("same epoch authenticator:", string(a.Authenticator) == string(b.Authenticator))
	// Output:
	// joined alice: "alice added you; members: alice, bob (epoch 1)"
	// message alice: "hello bob"
	// same epoch authenticator: true
}

// CheckName refuses names that could pass for another person's.
func ExampleCheckName() {
	fmt.Println(client.CheckName("alice"))
	fmt.Println(client.CheckName("\u0430lice")) // Cyrillic а
	fmt.Println(client.CheckName("bob\u202e"))  // right-to-left override
	// Output:
	// <nil>
	// the name "\u0430lice" mixes scripts (Cyrillic, Latin), so it could pass for another name: use letters of one script
	// the name "bob\u202e" contains the invisible or control character U+202E
}

// An application receives events as they happen by ranging over Events:
// here bob follows, and alice sends once bob is listening. Breaking out of
// the loop stops following.
func ExampleClient_Events() {
	root, _ := os.MkdirTemp("", "client-example")
	defer os.RemoveAll(root)
	url, stop := startServer(filepath.Join(root, "mlsd"))
	defer stop()
	ctx := context.Background()

	alice, _ := client.Init(ctx, filepath.Join(root, "alice"), client.InitOptions{Name: "alice", Server: url})
	defer alice.Close()
	bob, _ := client.Init(ctx, filepath.Join(root, "bob"), client.InitOptions{Name: "bob", Server: url})
	defer bob.Close()
	bob.Publish(ctx)
	alice.CreateGroup(ctx, "team")
	alice.Invite(ctx, "team", "bob")

	for e, err := range bob.Events(ctx, client.FollowOptions{}) {
		if err != nil {
			log.Fatal(err)
		}
		switch e.Kind {
		case client.EventJoined:
			fmt.Printf("joined %s, invited by %s; members %v\n", e.Group, e.From, e.Members)
		case client.EventStatus:
			fmt.Println("status:", e.Text)
			if e.Text == client.StatusReady {
				alice.Send(ctx, "team", "hello bob")
			}
		case client.EventMessage:
			fmt.Printf("%s in %s: %s\n", e.From, e.Group, e.Text)
		}
		if e.Kind == client.EventMessage {
			break
		}
	}
	// Output:
	// joined team, invited by alice; members [alice bob]
	// status: ready
	// alice in team: hello bob
}

// A client whose MLS state lives in an application's storage.Store, here
// storage/memory, so its groups and keys end with the process: the
// directory keeps only the identity and the bookkeeping.
func ExampleOpenWithStore() {
	dir, _ := os.MkdirTemp("", "client-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	st := memory.New()
	defer st.Close()

	c, err := client.Init(ctx, dir, client.InitOptions{Name: "alice", Store: st})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.CreateOfflineGroup(ctx, "notes"); err != nil {
		log.Fatal(err)
	}
	c.Close()

	// Later, in the same process: the same store, the same groups.
	c, err = client.OpenWithStore(dir, st)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	gs, _ := c.Groups(ctx)
	fmt.Println(gs[0].Name, gs[0].Members, "durable:", c.Durable())
	_, err = os.Stat(filepath.Join(dir, "state.db"))
	fmt.Println("state.db written:", err == nil)
	// Output:
	// notes [alice] durable: false
	// state.db written: false
}

// A client kept wholly in an application's storage.Store: no directory,
// identity and bookkeeping included. Here storage/sqlite stands for the
// application's engine; any storage.Store that passes storagetest works.
func ExampleInitStore() {
	dir, _ := os.MkdirTemp("", "client-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	st, err := mlsstore.Open(filepath.Join(dir, "app.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	c, err := client.InitStore(ctx, st, client.InitOptions{Name: "alice"})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.CreateOfflineGroup(ctx, "notes"); err != nil {
		log.Fatal(err)
	}
	c.Close()
	st.Close()

	// A later run opens the same database and finds everything.
	st, err = mlsstore.Open(filepath.Join(dir, "app.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	c, err = client.OpenStore(st)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	gs, _ := c.Groups(ctx)
	fmt.Println(c.Identity().Name, gs[0].Name, gs[0].Members, "durable:", c.Durable())
	// Output:
	// alice notes [alice] durable: true
}
