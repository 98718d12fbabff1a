// Command mls-interop serves mlskit to the MLS working group's interop test
// runner: it implements the gRPC service mls_client.MLSClient (see
// interop/mlsclient) over interop.NewMLSBackend.
//
// Usage:
//
//	mls-interop [-host 127.0.0.1] [-port 50051]
//
// It listens on the loopback address unless -host says otherwise, prints the
// address it serves on to standard error, and stops cleanly on SIGINT or
// SIGTERM. -port 0 picks a free port. See docs/INTEROP.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"google.golang.org/grpc"

	"github.com/mlskit/mlskit/interop"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "mls-interop:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends. If ready is not nil, the listening address is
// sent on it once the server accepts connections.
func run(ctx context.Context, args []string, stderr io.Writer, ready chan<- net.Addr) error {
	fs := flag.NewFlagSet("mls-interop", flag.ContinueOnError)
	fs.SetOutput(stderr)
	host := fs.String("host", "127.0.0.1", "address to listen on")
	port := fs.Int("port", 50051, "TCP port to listen on (0 picks a free one)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *port < 0 || *port > 65535 {
		return fmt.Errorf("-port %d is not a TCP port", *port)
	}

	lis, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		return err
	}
	logger := log.New(stderr, "", log.LstdFlags)
	backend := interop.NewMLSBackend()
	g := grpc.NewServer()
	interop.NewServer(backend, interop.WithLogf(logger.Printf)).Register(g)

	logger.Printf("mls-interop: serving %s on %s", backend.Name(), lis.Addr())
	if ready != nil {
		ready <- lis.Addr()
	}

	done := make(chan error, 1)
	go func() { done <- g.Serve(lis) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	// Let running calls finish, but not forever: a test runner may hold a
	// connection open.
	stopped := make(chan struct{})
	go func() { g.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		g.Stop()
	}
	logger.Printf("mls-interop: stopped")
	return nil
}
