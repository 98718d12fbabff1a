// Package interop connects mlskit to the MLS working group's interoperability
// test harness (the interop folder of github.com/mlswg/mls-implementations).
//
// The harness drives each MLS implementation through a gRPC service,
// mls_client.MLSClient (see interop/mlsclient), and checks that
// implementations agree byte for byte: the same epoch authenticator after
// every Commit, and messages one protects that the others unprotect.
//
// # Layout
//
//   - Backend, State, Transaction, ReInit and Signer are the Go face of the
//     service: each RPC is one method, with Go types only. The MLS logic
//     plugs in there.
//   - Server implements the gRPC service over a Backend: ids, Free, argument
//     checks, error codes, concurrency, panic recovery.
//   - NewMLSBackend (mlsbackend*.go) is the Backend of mlskit itself, built
//     on package mls: the seven cipher suites of RFC 9420, handshakes public
//     or private as each group asks, every credential accepted.
//   - interop/runner executes the harness's config scripts against any set of
//     MLSClient servers; its TestInteropScripts runs every script against
//     in-process servers backed by NewMLSBackend.
//   - cmd/mls-interop is the server binary, for the working group's own test
//     runner and for other implementations' runners.
//
// docs/INTEROP.md says how to run it all.
package interop
