package interop

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Errors a Backend wraps so that the Server reports the right gRPC status
// code, and that the Server itself returns. Callers branch on them with
// errors.Is; on the gRPC side they arrive as the status codes listed.
var (
	// ErrNotImplemented: the backend cannot do this operation at all
	// (codes.Unimplemented).
	ErrNotImplemented = errors.New("interop: not yet implemented")

	// ErrInvalidArgument: a request field, or an MLS message in it, is
	// malformed, out of range, unsupported, or rejected by MLS validation
	// (codes.InvalidArgument).
	ErrInvalidArgument = errors.New("interop: invalid argument")

	// ErrFailedPrecondition: the object is not in a state that allows the
	// operation, e.g. HandlePendingCommit with no pending Commit, or the
	// group has ended after a ReInit (codes.FailedPrecondition).
	ErrFailedPrecondition = errors.New("interop: failed precondition")

	// ErrUnknownID: no state, transaction, reinit or signer has this id, or
	// it was freed or used up (codes.NotFound).
	ErrUnknownID = errors.New("interop: unknown id")
)

// statusCode classifies err for the wire.
func statusCode(err error) codes.Code {
	var se interface{ GRPCStatus() *status.Status }
	switch {
	case errors.As(err, &se):
		return se.GRPCStatus().Code()
	case errors.Is(err, ErrNotImplemented):
		return codes.Unimplemented
	case errors.Is(err, ErrInvalidArgument):
		return codes.InvalidArgument
	case errors.Is(err, ErrFailedPrecondition):
		return codes.FailedPrecondition
	case errors.Is(err, ErrUnknownID):
		return codes.NotFound
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	default:
		return codes.Unknown
	}
}

// toStatus turns a Backend or Server error into the gRPC status error
// returned to the test runner. The message is the error's own text, which
// by the Backend contract holds no secret.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	return status.Error(statusCode(err), err.Error())
}
