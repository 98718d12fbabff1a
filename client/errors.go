package client

import (
	"errors"
	"fmt"
	"net"

	"connectrpc.com/connect"
)

// Errors a person can cause. Every error the package returns for them wraps
// one of these (check with errors.Is) and carries a message that says what
// to do, fit to print as is.
var (
	// ErrUnknownUser: the delivery service has no KeyPackage for the user,
	// either because nobody of that name ever ran "mls init" against it or
	// because they never published one.
	ErrUnknownUser = errors.New("unknown user")
	// ErrNoKeyPackages: this client has no KeyPackage left that matches a
	// Welcome, or the server has none left for an invitee.
	ErrNoKeyPackages = errors.New("no KeyPackages left")
	// ErrNotMember: the group is unknown here, or the user is not in it.
	ErrNotMember = errors.New("not a member")
	// ErrUnreachable: the delivery service did not answer.
	ErrUnreachable = errors.New("server unreachable")
	// ErrRemoved: this client was removed from the group (a commit it
	// processed said so).
	ErrRemoved = errors.New("removed from the group")
	// ErrNotDelivered: the server refuses to deliver the group's log to this
	// client. That is not proof of removal; the group is kept as it was.
	ErrNotDelivered = errors.New("group not delivered")
	// ErrBusy: another process is using the state directory.
	ErrBusy = errors.New("state directory in use")
	// ErrUsage: a bad argument or a missing setting.
	ErrUsage = errors.New("usage")
)

// UserError is an error with a message written for the person at the
// terminal.
type UserError struct {
	Msg string
	Err error // a sentinel above, or nil
}

func (e *UserError) Error() string { return e.Msg }
func (e *UserError) Unwrap() error { return e.Err }

func userErr(sentinel error, format string, args ...any) error {
	return &UserError{Msg: fmt.Sprintf(format, args...), Err: sentinel}
}

// serverError turns a failed call to mlsd into an error a person
// understands. what says what was being done ("sending", "logging in").
func (c *Client) serverError(what string, err error) error {
	if err == nil {
		return nil
	}
	var ue *UserError
	if errors.As(err, &ue) {
		return err
	}
	var ne net.Error
	var oe *net.OpError
	code := connect.CodeOf(err)
	switch {
	case errors.As(err, &oe), errors.As(err, &ne) && !ne.Timeout(), code == connect.CodeUnavailable:
		return &UserError{Msg: fmt.Sprintf("cannot reach the server at %s while %s: is mlsd running there?", c.id.Server, what), Err: ErrUnreachable}
	case code == connect.CodeDeadlineExceeded || errors.As(err, &ne) && ne.Timeout():
		return &UserError{Msg: fmt.Sprintf("the server at %s did not answer in time while %s", c.id.Server, what), Err: ErrUnreachable}
	case code == connect.CodePermissionDenied:
		return &UserError{Msg: fmt.Sprintf("the server refused %s: %s", what, connectMessage(err)), Err: ErrNotMember}
	case code == connect.CodeUnauthenticated:
		return fmt.Errorf("the server did not accept this client's login while %s: %s", what, connectMessage(err))
	case code == connect.CodeResourceExhausted:
		return fmt.Errorf("the server is rate limiting this client (%s): try again shortly", what)
	}
	if code != connect.CodeUnknown {
		return fmt.Errorf("server error while %s: %s", what, connectMessage(err))
	}
	return fmt.Errorf("%s: %w", what, err)
}

func connectMessage(err error) string {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Message()
	}
	return err.Error()
}
