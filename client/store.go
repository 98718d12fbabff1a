package client

import (
	"context"
	"errors"
	"path/filepath"

	"github.com/mlskit/mlskit/mls"
	"github.com/mlskit/mlskit/storage"
	"github.com/mlskit/mlskit/storage/sqlite"
)

// groupStore keeps the state whose encoding package mls owns: this
// client's groups and the private keys of the KeyPackages it published
// (RFC 9420, Section 16.8), over a storage.Store. Everything else the
// client remembers (cursors, the inbox) is its own small JSON file
// (meta.go), not an encoding of mls.Group.
type groupStore interface {
	// LoadGroup returns the group, or an error wrapping errNoGroup.
	LoadGroup(ctx context.Context, groupID []byte) (*mls.Group, error)
	// SaveGroup records the group's changes since it was loaded or last
	// saved, atomically.
	SaveGroup(ctx context.Context, g *mls.Group) error
	// DeleteGroup forgets the group and its secrets.
	DeleteGroup(ctx context.Context, groupID []byte) error
	// PutKeyPackages keeps the private keys of new KeyPackages; publish
	// them only after this returns.
	PutKeyPackages(ctx context.Context, bundles []*mls.KeyPackageBundle) error
	// Join joins from a Welcome with a stored KeyPackage, storing the group
	// and deleting the KeyPackage's private keys (unless last-resort) in
	// one step. check sees the group id before anything is stored; its
	// error stops the join. A Welcome for none of them fails with
	// errNoKeyPackage.
	Join(ctx context.Context, welcome []byte, check func(groupID []byte) error) (*mls.Group, error)
	// ListGroups lists the groups whose state is stored.
	ListGroups(ctx context.Context) ([][]byte, error)
	// Durable reports whether the state survives the process.
	Durable() bool
	Close() error
}

var (
	errNoGroup      = errors.New("client: group not in the store")
	errNoKeyPackage = errors.New("client: no stored KeyPackage matches the Welcome")
)

// readOnlyStore refuses every change, for OpenReadOnly.
type readOnlyStore struct{ groupStore }

func (readOnlyStore) SaveGroup(context.Context, *mls.Group) error { return ErrReadOnly }
func (readOnlyStore) DeleteGroup(context.Context, []byte) error   { return ErrReadOnly }
func (readOnlyStore) PutKeyPackages(context.Context, []*mls.KeyPackageBundle) error {
	return ErrReadOnly
}
func (readOnlyStore) Join(context.Context, []byte, func([]byte) error) (*mls.Group, error) {
	return nil, ErrReadOnly
}

// stateDB is the SQLite store's file in the state directory.
const stateDB = "state.db"

// openStore opens the SQLite store of a state directory (package mls's
// Save/LoadGroup over storage/sqlite).
func openStore(dir string, cfg *mls.Config) (groupStore, error) {
	path := filepath.Join(dir, stateDB)
	if err := precreate(path); err != nil {
		return nil, err
	}
	st, err := sqlite.Open(path, nil)
	if err != nil {
		return nil, err
	}
	return &mlsStore{st: st, cfg: cfg, owned: true, durable: true}, nil
}

// mlsStore is package mls's persistence (Group.Save, LoadGroup,
// SaveKeyPackage, JoinFromStore) over a storage.Store: the directory's
// state.db, or the engine an application gave OpenWithStore.
type mlsStore struct {
	st  storage.Store
	cfg *mls.Config
	// owned: Close closes st (state.db); a store the application passed
	// in is the application's to close.
	owned   bool
	durable bool
}

func (s *mlsStore) LoadGroup(ctx context.Context, id []byte) (*mls.Group, error) {
	g, err := mls.LoadGroup(ctx, s.cfg, s.st, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errNoGroup
	}
	return g, err
}

func (s *mlsStore) SaveGroup(ctx context.Context, g *mls.Group) error { return g.Save(ctx, s.st) }

func (s *mlsStore) DeleteGroup(ctx context.Context, id []byte) error {
	if err := s.st.DeleteGroup(ctx, id); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	return nil
}

func (s *mlsStore) PutKeyPackages(ctx context.Context, bs []*mls.KeyPackageBundle) error {
	for _, b := range bs {
		if err := mls.SaveKeyPackage(ctx, s.st, b); err != nil {
			return err
		}
		b.Erase()
	}
	return nil
}

func (s *mlsStore) Join(ctx context.Context, welcome []byte, check func([]byte) error) (*mls.Group, error) {
	// Open the Welcome in memory first: JoinFromStore saves the group under
	// whatever group id the Welcome carries, before the caller could object.
	refs, err := mls.WelcomeKeyPackageRefs(welcome)
	if err != nil {
		return nil, err
	}
	var bundle *mls.KeyPackageBundle
	for _, r := range refs {
		b, err := mls.LoadKeyPackage(ctx, s.st, r)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		bundle = b
		break
	}
	if bundle == nil {
		return nil, errNoKeyPackage
	}
	trial, err := mls.JoinFromWelcome(s.cfg, welcome, bundle, nil)
	bundle.Erase()
	if err != nil {
		return nil, err
	}
	if err := check(trial.GroupID()); err != nil {
		return nil, err
	}
	// The same Welcome again, now stored with the KeyPackage's deletion in
	// one write (mls.JoinFromStore).
	g, err := mls.JoinFromStore(ctx, s.cfg, s.st, welcome, nil)
	if errors.Is(err, mls.ErrNoMatchingKeyPackage) {
		return nil, errNoKeyPackage
	}
	if err != nil {
		return nil, err
	}
	// JoinFromStore erases the bundle it loaded, whose leaf private key the
	// returned Group shares; the stored copy is intact, so reload it.
	id := g.GroupID()
	return s.LoadGroup(ctx, id)
}

func (s *mlsStore) ListGroups(ctx context.Context) ([][]byte, error) { return s.st.ListGroups(ctx) }

func (s *mlsStore) Durable() bool { return s.durable }

func (s *mlsStore) Close() error {
	if !s.owned {
		return nil
	}
	return s.st.Close()
}
