package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/mlskit/mlskit/interop/mlsclient"
)

// syncBuffer is a bytes.Buffer safe to write from the server goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServe starts the binary's server on a free loopback port and checks
// what a test runner sees first: the name,
// the cipher suites of RFC 9420, and a group created.
func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-port", "0"}, &stderr, ready) }()

	var addr net.Addr
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server did not start")
	}
	if h, _, _ := net.SplitHostPort(addr.String()); h != "127.0.0.1" {
		t.Errorf("listening on %s, want loopback by default", addr)
	}

	conn, err := grpc.NewClient(addr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := pb.NewMLSClientClient(conn)
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()

	name, err := c.Name(rctx, &pb.NameRequest{})
	if err != nil || name.GetName() != "mlskit" {
		t.Fatalf("Name = %q, %v; want mlskit", name.GetName(), err)
	}
	cs, err := c.SupportedCiphersuites(rctx, &pb.SupportedCiphersuitesRequest{})
	if err != nil || len(cs.GetCiphersuites()) != 7 {
		t.Fatalf("SupportedCiphersuites = %v, %v; want the 7 of RFC 9420", cs.GetCiphersuites(), err)
	}
	g, err := c.CreateGroup(rctx, &pb.CreateGroupRequest{CipherSuite: 1, GroupId: []byte("g"), Identity: []byte("alice")})
	if err != nil || g.GetStateId() == 0 {
		t.Fatalf("CreateGroup = %v, %v", g, err)
	}
	if _, err := c.Free(rctx, &pb.FreeRequest{StateId: g.GetStateId()}); err != nil {
		t.Fatalf("Free: %v", err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop")
	}
	if !strings.Contains(stderr.String(), "serving mlskit on "+addr.String()) {
		t.Errorf("stderr does not announce the address:\n%s", stderr.String())
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-port", "70000"},
		{"-port", "-1"},
		{"-nosuchflag"},
		{"extra"},
		{"-host", "not a host name", "-port", "0"},
	} {
		var stderr syncBuffer
		if err := run(context.Background(), args, &stderr, nil); err == nil {
			t.Errorf("run(%q) succeeded, want an error", args)
		}
	}
}
