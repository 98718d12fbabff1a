// Package memory is an in-process storage.Store, for tests and for clients
// whose state need not outlive the process.
//
// It has the semantics of every other engine: values are copied on the way
// in and out, a Write is all or nothing, and a value that is deleted or
// replaced has its bytes overwritten with zeros (RFC 9420, Section 9.2:
// consumed secrets are deleted), so a stale copy held by the store cannot
// leak a secret later. Copies the caller made are the caller's to erase.
package memory

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/mlskit/mlskit/storage"
)

// Store is an in-memory storage.Store. The zero value is not usable; call New.
type Store struct {
	mu          sync.RWMutex
	closed      bool
	groups      map[string]*group
	keyPackages map[string][]byte
	psks        map[string][]byte
	apps        map[string][]byte
}

type group struct {
	state   []byte
	epoch   uint64
	epochs  map[uint64][]byte
	keys    map[keyName][]byte
	pending []byte
}

type keyName struct {
	epoch uint64
	id    string
}

var _ storage.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{
		groups:      make(map[string]*group),
		keyPackages: make(map[string][]byte),
		psks:        make(map[string][]byte),
		apps:        make(map[string][]byte),
	}
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

func (s *Store) rlock() error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return storage.ErrClosed
	}
	return nil
}

// LoadGroup implements storage.Store.
func (s *Store) LoadGroup(ctx context.Context, groupID []byte) ([]byte, uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	if err := s.rlock(); err != nil {
		return nil, 0, err
	}
	defer s.mu.RUnlock()
	g, ok := s.groups[string(groupID)]
	if !ok {
		return nil, 0, fmt.Errorf("memory: group: %w", storage.ErrNotFound)
	}
	return clone(g.state), g.epoch, nil
}

// LoadEpoch implements storage.Store.
func (s *Store) LoadEpoch(ctx context.Context, groupID []byte, epoch uint64) ([]byte, error) {
	return s.get(ctx, "epoch", func() ([]byte, bool) {
		g, ok := s.groups[string(groupID)]
		if !ok {
			return nil, false
		}
		v, ok := g.epochs[epoch]
		return v, ok
	})
}

// MessageKey implements storage.Store.
func (s *Store) MessageKey(ctx context.Context, groupID []byte, epoch uint64, keyID []byte) ([]byte, error) {
	return s.get(ctx, "message key", func() ([]byte, bool) {
		g, ok := s.groups[string(groupID)]
		if !ok {
			return nil, false
		}
		v, ok := g.keys[keyName{epoch, string(keyID)}]
		return v, ok
	})
}

// KeyPackage implements storage.Store.
func (s *Store) KeyPackage(ctx context.Context, ref []byte) ([]byte, error) {
	return s.get(ctx, "key package", func() ([]byte, bool) {
		v, ok := s.keyPackages[string(ref)]
		return v, ok
	})
}

// PSK implements storage.Store.
func (s *Store) PSK(ctx context.Context, id []byte) ([]byte, error) {
	return s.get(ctx, "psk", func() ([]byte, bool) {
		v, ok := s.psks[string(id)]
		return v, ok
	})
}

// AppRecord implements storage.Store.
func (s *Store) AppRecord(ctx context.Context, key []byte) ([]byte, error) {
	return s.get(ctx, "application record", func() ([]byte, bool) {
		v, ok := s.apps[string(key)]
		return v, ok
	})
}

// PendingCommit implements storage.Store.
func (s *Store) PendingCommit(ctx context.Context, groupID []byte) ([]byte, error) {
	return s.get(ctx, "pending commit", func() ([]byte, bool) {
		g, ok := s.groups[string(groupID)]
		if !ok || g.pending == nil {
			return nil, false
		}
		return g.pending, true
	})
}

func (s *Store) get(ctx context.Context, what string, f func() ([]byte, bool)) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.rlock(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	v, ok := f()
	if !ok {
		return nil, fmt.Errorf("memory: %s: %w", what, storage.ErrNotFound)
	}
	return clone(v), nil
}

// ListGroups implements storage.Store.
func (s *Store) ListGroups(ctx context.Context) ([][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.rlock(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	ids := make([][]byte, 0, len(s.groups))
	for id := range s.groups {
		ids = append(ids, []byte(id))
	}
	slices.SortFunc(ids, bytes.Compare)
	return ids, nil
}

// Write implements storage.Store. The batch is first staged as a list of
// changes, with the fault hook consulted before each (storage.Fault); only
// when every step has been staged is the list applied, and applying cannot
// fail, so a failure anywhere leaves the store untouched.
func (s *Store) Write(ctx context.Context, b *storage.Batch) error {
	if err := b.Validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return storage.ErrClosed
	}

	var plan []func()
	step := func(f func()) error {
		if err := storage.Fault(ctx, len(plan)); err != nil {
			return err
		}
		plan = append(plan, f)
		return nil
	}

	gid := string(b.GroupID)
	g := s.groups[gid]
	if b.GroupScoped() {
		if g == nil && b.State == nil {
			return fmt.Errorf("memory: group: %w", storage.ErrNotFound)
		}
		if g == nil {
			// Created only when the plan is applied.
			g = &group{epochs: make(map[uint64][]byte), keys: make(map[keyName][]byte)}
			created := g
			if err := step(func() { s.groups[gid] = created }); err != nil {
				return err
			}
		}
	}
	if b.State != nil {
		state, epoch := clone(b.State), b.Epoch
		if err := step(func() { clear(g.state); g.state, g.epoch = state, epoch }); err != nil {
			return err
		}
	}
	for _, e := range b.DeleteEpochs {
		if err := step(func() { deleteEpoch(g, e) }); err != nil {
			return err
		}
	}
	for _, e := range b.Epochs {
		v := clone(e.Data)
		if err := step(func() { put(g.epochs, e.Epoch, v) }); err != nil {
			return err
		}
	}
	for _, k := range b.DeleteMessageKeys {
		n := keyName{k.Epoch, string(k.ID)}
		if err := step(func() { del(g.keys, n) }); err != nil {
			return err
		}
	}
	for _, k := range b.MessageKeys {
		n, v := keyName{k.Epoch, string(k.ID)}, clone(k.Data)
		if err := step(func() { put(g.keys, n, v) }); err != nil {
			return err
		}
	}
	if b.PendingCommit != nil || b.ClearPendingCommit {
		var v []byte
		if b.PendingCommit != nil {
			v = clone(b.PendingCommit)
		}
		if err := step(func() { clear(g.pending); g.pending = v }); err != nil {
			return err
		}
	}
	for _, k := range b.DeleteKeyPackages {
		if err := step(func() { del(s.keyPackages, string(k)) }); err != nil {
			return err
		}
	}
	for _, r := range b.KeyPackages {
		k, v := string(r.Key), clone(r.Value)
		if err := step(func() { put(s.keyPackages, k, v) }); err != nil {
			return err
		}
	}
	for _, k := range b.DeletePSKs {
		if err := step(func() { del(s.psks, string(k)) }); err != nil {
			return err
		}
	}
	for _, r := range b.PSKs {
		k, v := string(r.Key), clone(r.Value)
		if err := step(func() { put(s.psks, k, v) }); err != nil {
			return err
		}
	}
	for _, k := range b.DeleteAppRecords {
		if err := step(func() { del(s.apps, string(k)) }); err != nil {
			return err
		}
	}
	for _, r := range b.AppRecords {
		k, v := string(r.Key), clone(r.Value)
		if err := step(func() { put(s.apps, k, v) }); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, f := range plan {
		f()
	}
	return nil
}

// put stores v under k, zeroing the value it replaces.
func put[K comparable](m map[K][]byte, k K, v []byte) {
	clear(m[k])
	m[k] = v
}

// del removes k, zeroing its value.
func del[K comparable](m map[K][]byte, k K) {
	clear(m[k])
	delete(m, k)
}

// deleteEpoch removes a past epoch and the message keys kept for it.
func deleteEpoch(g *group, e uint64) {
	del(g.epochs, e)
	for n := range g.keys {
		if n.epoch == e {
			del(g.keys, n)
		}
	}
}

// DeleteGroup implements storage.Store.
func (s *Store) DeleteGroup(ctx context.Context, groupID []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return storage.ErrClosed
	}
	g, ok := s.groups[string(groupID)]
	if !ok {
		return fmt.Errorf("memory: group: %w", storage.ErrNotFound)
	}
	if err := storage.Fault(ctx, 0); err != nil {
		return err
	}
	zeroGroup(g)
	delete(s.groups, string(groupID))
	return nil
}

func zeroGroup(g *group) {
	clear(g.state)
	clear(g.pending)
	for e := range g.epochs {
		deleteEpoch(g, e)
	}
	for n := range g.keys {
		del(g.keys, n)
	}
}

// Close zeroes every value held and releases the store.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	for id, g := range s.groups {
		zeroGroup(g)
		delete(s.groups, id)
	}
	for k := range s.keyPackages {
		del(s.keyPackages, k)
	}
	for k := range s.psks {
		del(s.psks, k)
	}
	for k := range s.apps {
		del(s.apps, k)
	}
	return nil
}
