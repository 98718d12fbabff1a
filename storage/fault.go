package storage

import "context"

type faultKey struct{}

// WithFault returns a context under which a Store's Write (and DeleteGroup)
// calls fail(step) before each step of applying a batch, steps numbered from
// 0, and abort with fail's error if it is not nil, exactly as if the engine
// had failed at that point. It exists so that tests (storagetest) can prove a
// batch failing midway leaves nothing written; production code has no use
// for it.
func WithFault(ctx context.Context, fail func(step int) error) context.Context {
	return context.WithValue(ctx, faultKey{}, fail)
}

// Fault is called by engines before each step of applying a batch. It
// returns the error injected with WithFault for that step, or nil.
func Fault(ctx context.Context, step int) error {
	if f, ok := ctx.Value(faultKey{}).(func(int) error); ok && f != nil {
		return f(step)
	}
	return nil
}
