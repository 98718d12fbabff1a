// Package interoptest starts interop servers on loopback for tests.
package interoptest

import (
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mlskit/mlskit/interop"
)

// Serve runs an interop.Server for b on a free 127.0.0.1 port until the test
// ends, and returns it with a client connection to it.
func Serve(tb testing.TB, b interop.Backend, opts ...grpc.ServerOption) (*interop.Server, *grpc.ClientConn) {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := interop.NewServer(b, interop.WithLogf(tb.Logf))
	g := grpc.NewServer(opts...)
	s.Register(g)
	go g.Serve(lis)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		g.Stop()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		conn.Close()
		g.Stop()
	})
	return s, conn
}
