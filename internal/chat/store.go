package chat

import (
	"context"
	"errors"
	"path/filepath"
	"sync"

	"github.com/mlskit/mlskit/mls"
)

// Store keeps the state whose encoding package mls owns: this client's
// groups and the private keys of the KeyPackages it published (RFC 9420,
// Section 16.8). Everything else the CLI remembers (cursors, the inbox) is
// its own small JSON file (meta.go), not an encoding of mls.Group.
//
// This file is the one to swap when package mls gains persistence (issue
// 6, over storage/sqlite): openStore then opens DIR/state.db and the methods
// map onto the group layer's save and load.
type Store interface {
	// LoadGroup returns the group, or an error wrapping errNoGroup.
	LoadGroup(ctx context.Context, groupID []byte) (*mls.Group, error)
	// SaveGroup records the group's current state atomically.
	SaveGroup(ctx context.Context, g *mls.Group) error
	// DeleteGroup forgets the group and its secrets.
	DeleteGroup(ctx context.Context, groupID []byte) error
	// PutKeyPackages keeps the private keys of new KeyPackages.
	PutKeyPackages(ctx context.Context, bundles []*mls.KeyPackageBundle) error
	// KeyPackage returns a bundle by KeyPackageRef, or an error wrapping
	// errNoKeyPackage.
	KeyPackage(ctx context.Context, ref []byte) (*mls.KeyPackageBundle, error)
	// DeleteKeyPackage deletes a used bundle's private keys.
	DeleteKeyPackage(ctx context.Context, ref []byte) error
	// Durable reports whether the state survives the process.
	Durable() bool
	Close() error
}

var (
	errNoGroup      = errors.New("chat: group not in the store")
	errNoKeyPackage = errors.New("chat: KeyPackage not in the store")
)

// openStore opens the store of a state directory.
//
// Until package mls can serialize a Group, the store is memStore: the
// groups live in this process only, shared by every Client opened on the
// same directory within it (which is how the tests run the CLI), and lost
// when the process exits. Durable reports false, and the CLI says so.
func openStore(dir string, _ *mls.Config) (Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	memMu.Lock()
	defer memMu.Unlock()
	s, ok := memStores[abs]
	if !ok {
		s = &memStore{groups: map[string]*mls.Group{}, kps: map[string]*mls.KeyPackageBundle{}}
		memStores[abs] = s
	}
	return s, nil
}

var (
	memMu     sync.Mutex
	memStores = map[string]*memStore{}
)

// forgetMemStores drops every in-process store: the tests use it to check
// that a non-durable store does not pretend to survive a restart.
func forgetMemStores() {
	memMu.Lock()
	defer memMu.Unlock()
	memStores = map[string]*memStore{}
}

type memStore struct {
	mu     sync.Mutex
	groups map[string]*mls.Group
	kps    map[string]*mls.KeyPackageBundle
}

func (s *memStore) LoadGroup(_ context.Context, id []byte) (*mls.Group, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[string(id)]
	if !ok {
		return nil, errNoGroup
	}
	return g, nil
}

func (s *memStore) SaveGroup(_ context.Context, g *mls.Group) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[string(g.GroupID())] = g
	return nil
}

func (s *memStore) DeleteGroup(_ context.Context, id []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.groups, string(id))
	return nil
}

func (s *memStore) PutKeyPackages(_ context.Context, bs []*mls.KeyPackageBundle) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range bs {
		s.kps[string(b.KeyPackage.Ref())] = b
	}
	return nil
}

func (s *memStore) KeyPackage(_ context.Context, ref []byte) (*mls.KeyPackageBundle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.kps[string(ref)]
	if !ok {
		return nil, errNoKeyPackage
	}
	return b, nil
}

func (s *memStore) DeleteKeyPackage(_ context.Context, ref []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.kps[string(ref)]; ok {
		// Only the init key: a group joined with the bundle holds its
		// LeafKey slice itself (mls.JoinFromWelcome does not copy it), so
		// b.Erase() would zero the group's leaf private key.
		clear(b.InitKey)
		delete(s.kps, string(ref))
	}
	return nil
}

func (s *memStore) Durable() bool { return false }
func (s *memStore) Close() error  { return nil }
