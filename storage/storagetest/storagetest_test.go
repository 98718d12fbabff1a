package storagetest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/mlskit/mlskit/storage"
	"github.com/mlskit/mlskit/storage/memory"
	"github.com/mlskit/mlskit/storage/storagetest"
)

// Deliberately broken engines: the suite must fail each of them, in the
// subtest named, or it would pass a broken engine too.
var broken = map[string]struct {
	catchIn string
	wrap    func(*memory.Store) storage.Store
}{
	// Applies a batch as two separate writes.
	"non-atomic": {"Atomicity", func(m *memory.Store) storage.Store { return nonAtomic{m} }},
	// Hands out the same slice on every LoadGroup.
	"aliasing": {"Copies", func(m *memory.Store) storage.Store { return &aliasing{Store: m, cache: map[string][]byte{}} }},
	// Ignores KeyPackage deletions.
	"no deletes": {"Deletes", func(m *memory.Store) storage.Store { return noDeletes{m} }},
	// Reports a missing epoch as empty rather than ErrNotFound.
	"no ErrNotFound": {"NotFound", func(m *memory.Store) storage.Store { return silentMissing{m} }},
	// Ignores the fault hook.
	"no fault hook": {"Atomicity", func(m *memory.Store) storage.Store { return noFault{m} }},
}

const brokenEnv = "MLSKIT_STORAGETEST_BROKEN"

// TestBrokenEngine runs the suite on one broken engine; it only runs as the
// child of TestSuiteCatchesBrokenEngines.
func TestBrokenEngine(t *testing.T) {
	b, ok := broken[os.Getenv(brokenEnv)]
	if !ok {
		t.Skip("child process of TestSuiteCatchesBrokenEngines")
	}
	storagetest.Run(t, func(*testing.T) storage.Store { return b.wrap(memory.New()) })
}

func TestSuiteCatchesBrokenEngines(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	for name, b := range broken {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenEngine$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), brokenEnv+"="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a broken engine:\n%s", out)
			}
			if want := "--- FAIL: TestBrokenEngine/" + b.catchIn; !strings.Contains(string(out), want) {
				t.Fatalf("the suite failed, but not in %s:\n%s", b.catchIn, out)
			}
		})
	}
}

type nonAtomic struct{ *memory.Store }

func (s nonAtomic) Write(ctx context.Context, b *storage.Batch) error {
	if err := b.Validate(); err != nil {
		return err
	}
	group, other := *b, *b
	group.KeyPackages, group.DeleteKeyPackages, group.PSKs, group.DeletePSKs = nil, nil, nil, nil
	other = storage.Batch{KeyPackages: b.KeyPackages, DeleteKeyPackages: b.DeleteKeyPackages, PSKs: b.PSKs, DeletePSKs: b.DeletePSKs}
	steps := 0
	count := storage.WithFault(ctx, func(step int) error {
		steps = step + 1
		return storage.Fault(ctx, step)
	})
	if err := s.Store.Write(count, &group); err != nil {
		return err
	}
	// Continue the step numbering, so a failure injected in the second half
	// lands after the first half was written.
	shifted := storage.WithFault(ctx, func(step int) error { return storage.Fault(ctx, steps+step) })
	return s.Store.Write(shifted, &other)
}

type aliasing struct {
	*memory.Store
	mu    sync.Mutex
	cache map[string][]byte
}

func (s *aliasing) LoadGroup(ctx context.Context, id []byte) ([]byte, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, e, err := s.Store.LoadGroup(ctx, id)
	if err != nil {
		return st, e, err
	}
	if c, ok := s.cache[string(id)]; ok && len(c) == len(st) {
		return c, e, nil
	}
	s.cache[string(id)] = st
	return st, e, nil
}

type noDeletes struct{ *memory.Store }

func (s noDeletes) Write(ctx context.Context, b *storage.Batch) error {
	if b != nil {
		c := *b
		c.DeleteKeyPackages = nil
		b = &c
	}
	return s.Store.Write(ctx, b)
}

type silentMissing struct{ *memory.Store }

func (s silentMissing) LoadEpoch(ctx context.Context, id []byte, e uint64) ([]byte, error) {
	v, err := s.Store.LoadEpoch(ctx, id, e)
	if err != nil && strings.Contains(err.Error(), "not found") {
		return []byte{}, nil
	}
	return v, err
}

type noFault struct{ *memory.Store }

func (s noFault) Write(ctx context.Context, b *storage.Batch) error {
	return s.Store.Write(noValues{ctx}, b)
}

// noValues hides the context's values, and so the fault hook, but keeps its
// cancellation.
type noValues struct{ context.Context }

func (noValues) Value(any) any { return nil }
