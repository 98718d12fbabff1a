// Package mlsclient holds the Go stubs of the MLS interop gRPC service
// (service mls_client.MLSClient), generated from mls_client.proto, which keeps
// the working group's names and field numbers so that mlskit's interop server
// talks to the working group's test runner and other implementations.
//
// The stubs are generated code: do not edit them. To regenerate, install
// protoc (Debian: protobuf-compiler) and the plugins
//
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
//
// and run `go generate ./interop/mlsclient`.
package mlsclient

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative mls_client.proto
