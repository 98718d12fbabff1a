// Package mlsdv1 holds the generated protobuf and connect code for the mlsd
// API defined in mlsd.proto.
package mlsdv1

//go:generate protoc -I . --go_out=. --go_opt=paths=source_relative --connect-go_out=. --connect-go_opt=paths=source_relative mlsd.proto
