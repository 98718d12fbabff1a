package mls

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/secrettree"
	"github.com/mlskit/mlskit/internal/wire"
	"github.com/mlskit/mlskit/storage"
)

// # Persistence
//
// A Group lives in memory; Save writes every change since the previous Save
// to a storage.Store in one atomic Write, and LoadGroup reads it back. The
// rule that makes this crash safe is the order of operations:
//
//   - Sending: Encrypt (or Commit, or a Propose method), then Save, then
//     hand the message to the network. A sender that crashed after sending
//     but before saving would reload an older ratchet and encrypt a second
//     message with the same key and nonce (RFC 9420, Section 9.2). If Save
//     fails, do not send.
//   - Receiving: Process (and MergeStagedCommit for a commit), then Save,
//     then acknowledge the message to the delivery service. A crash before
//     Save returns leaves the store at the previous state, in which the
//     message was never processed, so it can be processed again after a
//     reload; a crash after leaves it processed, its key deleted.
//
// Either way the store never holds a state the group was not in, because
// each Save is one Write and a Write is all or nothing.
//
// Forward secrecy on disk: Save deletes what the group has deleted. A
// consumed message key disappears with the ratchet record it was in (the
// record is rewritten without it), an ended epoch's secrets other than what
// late messages need disappear when its record is rewritten in the past
// form, an epoch that leaves the retention window (Config.PastEpochs) is
// deleted with its ratchet records, and JoinFromStore deletes the
// KeyPackage's private keys in the same Write that stores the new group.
// The SQLite engine overwrites what is deleted and checkpoints its log (see
// docs/STORAGE.md).
//
// One Group object per group: Save assumes the store holds what this
// object last wrote or loaded. Two Group objects saving the same group to
// the same store overwrite each other's state.

// savedRecords is what a Group last wrote to (or loaded from) a store, so
// that Save writes only what changed.
type savedRecords struct {
	store      storage.Store
	current    *epochState // the epoch whose current record is stored
	signer     *SignatureKeyPair
	removed    bool
	epochs     map[uint64]bool // epochs with a stored record
	past       map[uint64]bool // those whose record is in the past form
	buckets    map[bucketKey][]byte
	state      [sha256.Size]byte
	pending    *pendingCommit
	hasPending bool
}

// Save writes every change to the group since the last Save or LoadGroup
// to st in one atomic Write: nothing is written if nothing changed. See
// "Persistence" above for when to call it. On error nothing was written and
// the next Save retries the whole change.
//
// The first Save of a Group to a store (after NewGroup, a join, or
// UnmarshalGroup) writes every record and deletes any records the store
// still holds for the group from an earlier life.
func (g *Group) Save(ctx context.Context, st storage.Store) error {
	b, next, err := g.saveBatch(ctx, st)
	if err != nil || b == nil {
		return err
	}
	defer eraseBatch(b)
	if err := st.Write(ctx, b); err != nil {
		return fmt.Errorf("mls: saving group: %w", err)
	}
	g.saved = next
	return nil
}

// saveBatch computes the Write that brings st from what it holds for the
// group to the group's current state, and what it will hold afterwards. It
// returns a nil batch if nothing changed.
func (g *Group) saveBatch(ctx context.Context, st storage.Store) (*storage.Batch, *savedRecords, error) {
	sv := g.saved
	if sv == nil || sv.store != st {
		var err error
		if sv, err = discover(ctx, st, g.st.ctx.GroupID); err != nil {
			return nil, nil, err
		}
	}
	if !g.removed {
		if tol, _ := g.st.secrets.Limits(); tol > secrettree.MaxRestoredTolerance {
			return nil, nil, fmt.Errorf("mls: Config.OutOfOrderTolerance %d is above %d and cannot be saved", tol,
				secrettree.MaxRestoredTolerance)
		}
	}
	epoch := g.st.ctx.Epoch
	next := &savedRecords{store: st, current: g.st, signer: g.signer, removed: g.removed,
		epochs: map[uint64]bool{epoch: true}, past: map[uint64]bool{}, buckets: map[bucketKey][]byte{},
		pending: g.pending, hasPending: g.pending != nil}
	b := &storage.Batch{GroupID: bytes.Clone(g.st.ctx.GroupID)}
	changed := false

	state, err := g.encodeState()
	if err != nil {
		return nil, nil, err
	}
	next.state = sha256.Sum256(state)
	if next.state != sv.state {
		b.State, b.Epoch, changed = state, epoch, true
	} else {
		clear(state)
	}

	if sv.current != g.st || sv.signer != g.signer || sv.removed != g.removed || !sv.epochs[epoch] || sv.past[epoch] {
		rec, err := g.encodeCurrent()
		if err != nil {
			return nil, nil, err
		}
		b.Epochs = append(b.Epochs, storage.EpochRecord{Epoch: epoch, Data: rec})
	}
	if !g.removed {
		for _, p := range g.past {
			next.epochs[p.epoch], next.past[p.epoch] = true, true
			if !sv.past[p.epoch] {
				rec, err := encodePast(p)
				if err != nil {
					return nil, nil, err
				}
				b.Epochs = append(b.Epochs, storage.EpochRecord{Epoch: p.epoch, Data: rec})
			}
		}
	}
	for e := range sv.epochs {
		if !next.epochs[e] {
			// Deleting the epoch deletes its ratchet records with it.
			b.DeleteEpochs = append(b.DeleteEpochs, e)
		}
	}

	if !g.removed {
		type epochTree struct {
			epoch uint64
			t     *secrettree.Tree
		}
		trees := []epochTree{{epoch, g.st.secrets}}
		for _, p := range g.past {
			trees = append(trees, epochTree{p.epoch, p.fe.Tree})
		}
		for _, et := range trees {
			for bucket, leaves := range bucketsOf(et.t) {
				k := bucketKey{et.epoch, bucket}
				sum := ratchetSummary(et.t, leaves)
				next.buckets[k] = sum
				if old, ok := sv.buckets[k]; ok && bytes.Equal(old, sum) {
					continue
				}
				rec, err := encodeRatchets(et.t, leaves)
				if err != nil {
					return nil, nil, err
				}
				b.MessageKeys = append(b.MessageKeys, storage.MessageKeyRecord{
					MessageKeyID: storage.MessageKeyID{Epoch: et.epoch, ID: ratchetID(bucket)}, Data: rec})
			}
		}
	}
	for k := range sv.buckets {
		if next.epochs[k.epoch] && next.buckets[k] == nil {
			b.DeleteMessageKeys = append(b.DeleteMessageKeys, storage.MessageKeyID{Epoch: k.epoch, ID: ratchetID(k.bucket)})
		}
	}

	switch {
	case g.pending != nil && g.pending != sv.pending:
		if b.PendingCommit, err = g.encodePending(); err != nil {
			return nil, nil, err
		}
	case g.pending == nil && sv.hasPending:
		b.ClearPendingCommit = true
	}

	if !changed && len(b.Epochs) == 0 && len(b.DeleteEpochs) == 0 && len(b.MessageKeys) == 0 &&
		len(b.DeleteMessageKeys) == 0 && b.PendingCommit == nil && !b.ClearPendingCommit {
		return nil, nil, nil
	}
	return b, next, nil
}

// eraseBatch zeroes the records of a batch once the store has its copy:
// they hold epoch secrets, ratchets and private keys.
func eraseBatch(b *storage.Batch) {
	clear(b.State)
	clear(b.PendingCommit)
	for _, e := range b.Epochs {
		clear(e.Data)
	}
	for _, k := range b.MessageKeys {
		clear(k.Data)
	}
}

// discover learns what st holds for a group this Group has not saved to
// before: which epoch and ratchet records to replace or delete. Their
// contents are unknown, so everything is rewritten.
func discover(ctx context.Context, st storage.Store, groupID []byte) (*savedRecords, error) {
	sv := &savedRecords{store: st, epochs: map[uint64]bool{}, past: map[uint64]bool{}, buckets: map[bucketKey][]byte{}}
	blob, _, err := st.LoadGroup(ctx, groupID)
	if errors.Is(err, storage.ErrNotFound) {
		return sv, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mls: reading stored group: %w", err)
	}
	if _, err := st.PendingCommit(ctx, groupID); err == nil {
		sv.hasPending = true
	} else if !errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("mls: reading stored group: %w", err)
	}
	sr, err := decodeState(blob)
	clear(blob)
	if err != nil {
		// Unreadable old state: it is replaced; records it referred to
		// cannot be found and are left to DeleteGroup.
		return sv, nil
	}
	defer sr.erase()
	note := func(e uint64, sk []byte) {
		sv.epochs[e] = true
		leaves, err := secrettree.SkeletonLeaves(sk)
		if err != nil {
			return
		}
		for _, l := range leaves {
			sv.buckets[bucketKey{e, uint32(l) / ratchetBucket}] = nil
		}
	}
	note(sr.epoch, sr.current)
	for _, p := range sr.past {
		note(p.epoch, p.skeleton)
	}
	return sv, nil
}

// storeSource reads a group's records from a store.
type storeSource struct {
	ctx     context.Context
	st      storage.Store
	groupID []byte
	hash    [sha256.Size]byte
}

func (s *storeSource) state() ([]byte, uint64, error) {
	blob, epoch, err := s.st.LoadGroup(s.ctx, s.groupID)
	if err != nil {
		return nil, 0, fmt.Errorf("mls: loading group: %w", err)
	}
	s.hash = sha256.Sum256(blob)
	return blob, epoch, nil
}

// missing turns a store's ErrNotFound for a record the state refers to into
// ErrCorruptState: the group exists, its state is incomplete.
func missing(what string, err error) error {
	if errors.Is(err, storage.ErrNotFound) {
		return corruptf("%s is missing from the store", what)
	}
	return fmt.Errorf("mls: loading %s: %w", what, err)
}

func (s *storeSource) epoch(e uint64) ([]byte, error) {
	b, err := s.st.LoadEpoch(s.ctx, s.groupID, e)
	if err != nil {
		return nil, missing(fmt.Sprintf("epoch %d record", e), err)
	}
	return b, nil
}

func (s *storeSource) ratchets(e uint64, bucket uint32) ([]byte, error) {
	b, err := s.st.MessageKey(s.ctx, s.groupID, e, ratchetID(bucket))
	if err != nil {
		return nil, missing(fmt.Sprintf("ratchet record %d of epoch %d", bucket, e), err)
	}
	return b, nil
}

func (s *storeSource) pending() ([]byte, error) {
	b, err := s.st.PendingCommit(s.ctx, s.groupID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mls: loading pending commit: %w", err)
	}
	return b, nil
}

// LoadGroup reads a group saved with Save. A group the store does not hold
// fails with an error wrapping storage.ErrNotFound; stored state that is
// incomplete, malformed or inconsistent fails with ErrCorruptState, and
// state written in a newer format with ErrStateVersion. Loading checks what
// it reads (see UnmarshalGroup) and never panics. cfg is the Config the
// group uses from now on.
func LoadGroup(ctx context.Context, cfg *Config, st storage.Store, groupID []byte) (*Group, error) {
	src := &storeSource{ctx: ctx, st: st, groupID: groupID}
	g, ld, err := assemble(cfg, groupID, src)
	if err != nil {
		return nil, err
	}
	sv := &savedRecords{store: st, current: g.st, signer: g.signer, removed: g.removed, epochs: ld.epochs,
		past: map[uint64]bool{}, buckets: ld.buckets, state: src.hash, pending: g.pending, hasPending: ld.pending}
	for _, p := range g.past {
		sv.past[p.epoch] = true
	}
	g.saved = sv
	return g, nil
}

// --- KeyPackages ---
//
// The private record of a KeyPackage, stored under its KeyPackageRef:
//
//	struct {
//	    opaque key_package<V>;          // KeyPackage (RFC 9420, Section 10)
//	    opaque init_private_key<V>;
//	    opaque leaf_private_key<V>;
//	    opaque signature_private_key<V>;
//	} KeyPackagePrivate;

// SaveKeyPackage stores bundle's private keys in st under its
// KeyPackageRef, for JoinFromStore to find when a Welcome arrives. Publish
// the KeyPackage only after this returns.
func SaveKeyPackage(ctx context.Context, st storage.Store, bundle *KeyPackageBundle) error {
	payload, err := build(func(b *codec.Builder) error {
		b.AddOpaque(bundle.KeyPackage.raw)
		b.AddOpaque(bundle.InitKey)
		b.AddOpaque(bundle.LeafKey)
		b.AddOpaque(bundle.Signer.priv)
		return nil
	})
	if err != nil {
		return err
	}
	rec, err := seal(kindKeyPackage, payload)
	clear(payload)
	if err != nil {
		return err
	}
	defer clear(rec)
	err = st.Write(ctx, &storage.Batch{KeyPackages: []storage.Record{{Key: bundle.KeyPackage.Ref(), Value: rec}}})
	if err != nil {
		return fmt.Errorf("mls: saving KeyPackage: %w", err)
	}
	return nil
}

// LoadKeyPackage reads the bundle stored under ref, checking that its
// private keys belong to its KeyPackage. A missing record fails with an
// error wrapping storage.ErrNotFound, a damaged one with ErrCorruptState.
func LoadKeyPackage(ctx context.Context, st storage.Store, ref []byte) (*KeyPackageBundle, error) {
	rec, err := st.KeyPackage(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("mls: loading KeyPackage: %w", err)
	}
	defer clear(rec)
	payload, err := unseal(kindKeyPackage, rec)
	if err != nil {
		return nil, err
	}
	defer clear(payload)
	r := codec.NewReader(payload)
	var raw, initKey, leafKey, sigKey []byte
	if !r.ReadOpaque(&raw) || !r.ReadOpaque(&initKey) || !r.ReadOpaque(&leafKey) || !r.ReadOpaque(&sigKey) || !r.Empty() {
		return nil, corruptf("malformed KeyPackage record")
	}
	defer clear(sigKey)
	fail := func(err error) (*KeyPackageBundle, error) {
		clear(initKey)
		clear(leafKey)
		return nil, err
	}
	w, err := wire.UnmarshalKeyPackage(raw)
	if err != nil {
		return fail(corruptCause("KeyPackage", err))
	}
	kp := &KeyPackage{w: w, raw: raw}
	s, err := kp.CipherSuite().suite()
	if err != nil {
		return fail(corruptCause("KeyPackage", err))
	}
	if !bytes.Equal(kp.Ref(), ref) {
		return fail(corruptf("KeyPackage record stored under another reference"))
	}
	if pub, err := s.KEMPublicKey(initKey); err != nil || !bytes.Equal(pub, w.InitKey) {
		return fail(corruptf("init key does not match the KeyPackage"))
	}
	if pub, err := s.KEMPublicKey(leafKey); err != nil || !bytes.Equal(pub, w.LeafNode.EncryptionKey) {
		return fail(corruptf("leaf key does not match the KeyPackage"))
	}
	signer, err := NewSignatureKeyPair(kp.CipherSuite(), sigKey)
	if err != nil || !bytes.Equal(signer.pub, w.LeafNode.SignatureKey) {
		return fail(corruptf("signature key does not match the KeyPackage"))
	}
	return &KeyPackageBundle{KeyPackage: kp, InitKey: initKey, LeafKey: leafKey, Signer: signer}, nil
}

// JoinFromStore joins a group from a Welcome with a KeyPackage whose
// private keys SaveKeyPackage stored in st (RFC 9420, Section 12.4.3.1),
// and saves the new group. Storing the group and deleting the KeyPackage's
// private record (unless it is a last-resort KeyPackage) are one Write
// (RFC 9420, Section 16.8: a KeyPackage's private keys are deleted once
// used): after a crash either the client is in the group and the keys are
// gone, or it is not and can process the Welcome again. A Welcome for none
// of the stored KeyPackages fails with ErrNoMatchingKeyPackage, and one for
// a group_id st already holds with ErrGroupExists, leaving the stored group
// and the KeyPackage as they were.
func JoinFromStore(ctx context.Context, cfg *Config, st storage.Store, welcome []byte, opts *JoinOptions) (*Group, error) {
	refs, err := WelcomeKeyPackageRefs(welcome)
	if err != nil {
		return nil, classify(err)
	}
	var bundle *KeyPackageBundle
	var ref []byte
	for _, r := range refs {
		b, err := LoadKeyPackage(ctx, st, r)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		bundle, ref = b, r
		break
	}
	if bundle == nil {
		return nil, ErrNoMatchingKeyPackage
	}
	// The init key is used up by the join; the leaf key becomes the
	// group's own leaf key, so it is left alone.
	defer clear(bundle.InitKey)
	// RFC 9420, Section 12.4.3.1: a Welcome for a group_id st already
	// holds is refused rather than replacing that group.
	o := JoinOptions{}
	if opts != nil {
		o = *opts
	}
	o.Store = st
	g, err := joinWelcome(ctx, cfg, welcome, bundle, &o)
	if err != nil {
		return nil, err
	}
	b, next, err := g.saveBatch(ctx, st)
	if err != nil {
		g.erase()
		return nil, err
	}
	defer eraseBatch(b)
	if !bundle.KeyPackage.IsLastResort() {
		b.DeleteKeyPackages = [][]byte{ref}
	}
	if err := st.Write(ctx, b); err != nil {
		g.erase()
		return nil, fmt.Errorf("mls: saving joined group: %w", err)
	}
	g.saved = next
	return g, nil
}

// --- PSKs ---

// SavePSK stores an external pre-shared key (RFC 9420, Section 8.4) in st
// under its PSK ID, for PSKsFromStore.
func SavePSK(ctx context.Context, st storage.Store, id, secret []byte) error {
	rec, err := seal(kindPSK, secret)
	if err != nil {
		return err
	}
	defer clear(rec)
	if err := st.Write(ctx, &storage.Batch{PSKs: []storage.Record{{Key: id, Value: rec}}}); err != nil {
		return fmt.Errorf("mls: saving PSK: %w", err)
	}
	return nil
}

// PSKsFromStore returns a PSKStore (for Config.PSKs) that reads the
// external PSKs SavePSK stored in st. A PSK that cannot be read (missing,
// damaged, or the store failing) is reported as not available, and the
// operation that needed it fails with ErrMissingPSK.
func PSKsFromStore(st storage.Store) PSKStore { return storePSKs{st} }

type storePSKs struct{ st storage.Store }

func (s storePSKs) ExternalPSK(id []byte) ([]byte, bool) {
	rec, err := s.st.PSK(context.Background(), id)
	if err != nil {
		return nil, false
	}
	defer clear(rec)
	secret, err := unseal(kindPSK, rec)
	if err != nil || len(secret) == 0 {
		return nil, false
	}
	return secret, true
}
