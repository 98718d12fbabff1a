package mls

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/framing"
	"github.com/mlskit/mlskit/internal/keyschedule"
	"github.com/mlskit/mlskit/internal/ratchettree"
	"github.com/mlskit/mlskit/internal/secrettree"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/treemath"
	"github.com/mlskit/mlskit/internal/wire"
	"github.com/mlskit/mlskit/storage"
)

// Saved group state.
//
// A Group is saved as a handful of records, each a storage.Envelope with its
// own kind and format version, laid out so that the common changes rewrite
// little (persist.go says how Save uses them):
//
//   - the state record (storage: the group's State): the current epoch
//     number, the secret tree skeletons of the current and retained past
//     epochs, the cached proposals. Small; rewritten when a proposal is
//     cached, a new sender's ratchets are derived, or the epoch changes.
//   - the current epoch record (storage: the epoch record of the current
//     epoch): GroupContext, ratchet tree, private path keys, signature
//     key, epoch secrets, transcript hash, confirmation tag, resumption
//     PSKs, key-update tracking. Large (the tree); written once per epoch.
//   - one past epoch record per retained past epoch (RFC 9420, Section 9.2):
//     only what a late application message needs, the GroupContext, the
//     sender_data_secret and the members' signature keys. It replaces the
//     epoch's current record when the epoch ends, so none of the ended
//     epoch's other secrets stays stored.
//   - ratchet records (storage: message keys of the epoch, one per 64
//     leaves): the ratchets of the initialised leaves of that epoch's secret
//     tree with the keys kept for out-of-order messages. One message
//     rewrites one of these.
//   - the pending commit record (storage: PendingCommit): this member's own
//     Commit awaiting the delivery service, with the whole next epoch it
//     would start.
//
// MarshalBinary puts the same records into one blob; UnmarshalGroup and
// LoadGroup read them with the same code.
//
// Every record kind is at format version 1, except the current epoch record
// at version 2 (formatOf). Loading reads every version up to the one this
// build writes, refuses a newer one with ErrStateVersion and anything
// malformed or inconsistent with ErrCorruptState; it never panics.

// Envelope kinds of the records the group layer stores.
const (
	kindState      uint16 = 0x4d01
	kindCurrent    uint16 = 0x4d02
	kindPast       uint16 = 0x4d03
	kindRatchets   uint16 = 0x4d04
	kindPending    uint16 = 0x4d05
	kindKeyPackage uint16 = 0x4d06
	kindSnapshot   uint16 = 0x4d07
	kindPSK        uint16 = 0x4d08
)

// formatOf is the format version this build writes for a record kind.
// Bump it when the kind's encoding changes, keep reading the old version,
// and add a golden file for the new one (mls/testdata).
//
// kindCurrent version 2 appends last_join (Group.lastJoin); a version 1
// record is read with last_join = its epoch, which only makes the default
// commit leave out older application resumption PSKs.
func formatOf(kind uint16) uint16 {
	if kind == kindCurrent {
		return currentFormat
	}
	return 1
}

// currentFormat is kindCurrent's version; tests set it to 1 to write (and
// so pin byte for byte) the old format.
var currentFormat uint16 = 2

// ratchetBucket is how many consecutive leaves share one ratchet record:
// small enough that a message rewrites a few kilobytes, large enough that
// loading a busy 10,000-member group reads a few hundred records, not ten
// thousand.
const ratchetBucket = 64

var (
	// ErrCorruptState: stored group state does not decode or is not a
	// state a group can be in.
	ErrCorruptState = errors.New("mls: corrupt stored state")
	// ErrStateVersion: stored state was written in a format version this
	// build does not read (a newer build wrote it).
	ErrStateVersion = errors.New("mls: unsupported stored state version")
)

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorruptState, fmt.Sprintf(format, args...))
}

func corruptCause(what string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrCorruptState, what, err)
}

// seal wraps a record payload in its envelope.
func seal(kind uint16, payload []byte) ([]byte, error) {
	return storage.Envelope{Kind: kind, Version: formatOf(kind), Payload: payload}.Marshal()
}

// unseal opens a record of the given kind, at a format version from 1 to
// formatOf(kind).
func unseal(kind uint16, blob []byte) ([]byte, error) {
	_, payload, err := unsealVersion(kind, blob)
	return payload, err
}

// unsealVersion is unseal that also returns the record's format version.
func unsealVersion(kind uint16, blob []byte) (uint16, []byte, error) {
	v, payload, err := storage.OpenEnvelope(blob, kind)
	if err != nil {
		return 0, nil, corruptCause("envelope", err)
	}
	if v < 1 || v > formatOf(kind) {
		clear(payload)
		return 0, nil, fmt.Errorf("%w: record kind %#04x version %d", ErrStateVersion, kind, v)
	}
	return v, payload, nil
}

// sealBuilt is seal(kind, build(f)), written into one buffer of about hint
// octets: a record that holds a large group's ratchet tree (megabytes) is
// neither grown by doubling nor copied into its envelope. On an error the
// buffer, which may hold secrets, is cleared.
func sealBuilt(kind uint16, hint int, f func(b *codec.Builder) error) ([]byte, error) {
	buf := make([]byte, 0, hint)
	b := codec.NewBuilder(buf)
	b.AddUint16(kind)
	b.AddUint16(formatOf(kind))
	var ferr error
	b.AddVector(func(b *codec.Builder) { ferr = f(b) })
	out, err := b.Bytes()
	if ferr != nil || err != nil {
		clear(buf[:cap(buf)])
		clear(out)
		return nil, cmp.Or(ferr, err)
	}
	if cap(out) != cap(buf) {
		clear(buf[:cap(buf)]) // outgrown: what it held is in out
	}
	return out, nil
}

// addTree appends the ratchet tree's encoding as opaque<V>, then its
// SHA-256: the tree is written straight into b, not built apart and copied.
func addTree(b *codec.Builder, enc *ratchettree.Encoding) {
	n := enc.Len()
	b.AddVarint(uint64(n))
	var digest [sha256.Size]byte
	b.AddAppended(n, func(out []byte) ([]byte, error) {
		start := len(out)
		out, err := enc.AppendTo(out)
		if err == nil {
			digest = sha256.Sum256(out[start:])
		}
		return out, err
	})
	b.AddBytes(digest[:])
}

// recordSlack is what a current-epoch record holds besides its tree, group
// context and key-update tracking (keys, secrets), for sizing its buffer;
// more only grows it.
const recordSlack = 16 << 10

func build(f func(b *codec.Builder) error) ([]byte, error) {
	b := codec.NewBuilder(nil)
	if err := f(b); err != nil {
		return nil, err
	}
	return b.Bytes()
}

// addMarshaled appends m's encoding as opaque<V>, so that reading it back
// copies it out of the record.
func addMarshaled(b *codec.Builder, m codec.Marshaler) {
	enc, err := codec.Marshal(m)
	if err != nil {
		b.SetError(err)
		return
	}
	b.AddOpaque(enc)
}

// readMarshaled reads an opaque<V> holding exactly one T.
func readMarshaled[T any, P interface {
	*T
	wire.Unmarshaler
}](r *codec.Reader) (*T, bool) {
	var enc []byte
	if !r.ReadOpaque(&enc) {
		return nil, false
	}
	x, err := wire.Decode[T, P](enc)
	return x, err == nil
}

// --- the state record ---
//
//	struct {
//	    uint64 epoch;
//	    bool removed;
//	    opaque current_secret_tree<V>;   // secrettree Skeleton; empty if removed
//	    PastEpochRef past<V>;            // newest first
//	    CachedProposal proposals<V>;
//	} GroupState;
//
//	struct { uint64 epoch; opaque secret_tree<V>; } PastEpochRef;
//
//	struct {
//	    opaque ref<V>;                   // ProposalRef (RFC 9420, Section 5.2)
//	    opaque proposal<V>;              // Proposal (Section 12.1)
//	    opaque sender<V>;                // Sender (Section 6)
//	    bool own;
//	    opaque leaf_private_key<V>;      // own Update: the new leaf's HPKE key
//	    opaque new_signature_key<V>;     // own Update rotating the signer
//	} CachedProposal;

func skeleton(t *secrettree.Tree) ([]byte, error) {
	return build(func(b *codec.Builder) error { t.MarshalSkeleton(b); return nil })
}

func (g *Group) encodeState() ([]byte, error) {
	payload, err := build(func(b *codec.Builder) error {
		b.AddUint64(g.st.ctx.Epoch)
		b.AddBool(g.removed)
		if g.removed {
			b.AddOpaque(nil)
			b.AddVector(func(*codec.Builder) {})
			b.AddVector(func(*codec.Builder) {})
			return nil
		}
		sk, err := skeleton(g.st.secrets)
		if err != nil {
			return err
		}
		b.AddOpaque(sk)
		clear(sk)
		var ferr error
		b.AddVector(func(b *codec.Builder) {
			for _, p := range g.past {
				sk, err := skeleton(p.fe.Tree)
				if err != nil {
					ferr = err
					return
				}
				b.AddUint64(p.epoch)
				b.AddOpaque(sk)
				clear(sk)
			}
		})
		b.AddVector(func(b *codec.Builder) {
			for _, cp := range g.st.proposals {
				b.AddOpaque(cp.ref)
				addMarshaled(b, cp.proposal)
				addMarshaled(b, &cp.sender)
				b.AddBool(cp.own)
				b.AddOpaque(cp.leafPriv)
				if cp.newSigner != nil {
					b.AddOpaque(cp.newSigner.priv)
				} else {
					b.AddOpaque(nil)
				}
			}
		})
		return ferr
	})
	if err != nil {
		return nil, err
	}
	defer clear(payload)
	return seal(kindState, payload)
}

type stateRecord struct {
	epoch     uint64
	removed   bool
	current   []byte
	past      []pastRef
	proposals []*cachedProposal
	signers   map[*cachedProposal][]byte // own Updates' new signature keys, checked later
}

type pastRef struct {
	epoch    uint64
	skeleton []byte
}

func (sr *stateRecord) erase() {
	clear(sr.current)
	for _, p := range sr.past {
		clear(p.skeleton)
	}
	for _, cp := range sr.proposals {
		clear(cp.leafPriv)
	}
	for _, k := range sr.signers {
		clear(k)
	}
}

func decodeState(blob []byte) (*stateRecord, error) {
	payload, err := unseal(kindState, blob)
	if err != nil {
		return nil, err
	}
	defer clear(payload)
	r := codec.NewReader(payload)
	sr := &stateRecord{signers: map[*cachedProposal][]byte{}}
	ok := r.ReadUint64(&sr.epoch) && r.ReadBool(&sr.removed) && r.ReadOpaque(&sr.current) &&
		r.ReadList(func(r *codec.Reader) bool {
			var p pastRef
			if !r.ReadUint64(&p.epoch) || !r.ReadOpaque(&p.skeleton) {
				return false
			}
			sr.past = append(sr.past, p)
			return true
		}) &&
		r.ReadList(func(r *codec.Reader) bool {
			cp := &cachedProposal{}
			var signer []byte
			if !r.ReadOpaque(&cp.ref) {
				return false
			}
			p, ok := readMarshaled[wire.Proposal](r)
			if !ok {
				return false
			}
			s, ok := readMarshaled[wire.Sender](r)
			if !ok || !r.ReadBool(&cp.own) || !r.ReadOpaque(&cp.leafPriv) || !r.ReadOpaque(&signer) {
				clear(cp.leafPriv)
				return false
			}
			cp.proposal, cp.sender = p, *s
			if len(cp.leafPriv) == 0 {
				cp.leafPriv = nil
			}
			sr.proposals = append(sr.proposals, cp)
			if len(signer) > 0 {
				sr.signers[cp] = signer
			}
			return true
		}) && r.Empty()
	if !ok {
		sr.erase()
		return nil, corruptf("malformed state record")
	}
	if sr.removed && (len(sr.current) != 0 || len(sr.past) != 0 || len(sr.proposals) != 0) {
		sr.erase()
		return nil, corruptf("a removed member's state holds secrets")
	}
	prev := sr.epoch
	for _, p := range sr.past {
		if p.epoch >= prev {
			sr.erase()
			return nil, corruptf("past epochs out of order")
		}
		prev = p.epoch
	}
	return sr, nil
}

// --- the current epoch record ---
//
//	struct {
//	    opaque group_context<V>;          // GroupContext (Section 8.1)
//	    opaque ratchet_tree<V>;           // ratchet_tree extension data (Section 12.4.3.3)
//	    opaque ratchet_tree_sha256[32];   // SHA-256 of ratchet_tree
//	    uint32 own_leaf;
//	    opaque signature_private_key<V>;
//	    optional<EpochPrivate> private;   // absent for a removed member
//	    opaque interim_transcript_hash<V>;
//	    opaque confirmation_tag<V>;
//	    optional<ReInit> reinit;          // as opaque<V>
//	    ResumptionPSK resumption<V>;      // newest first
//	    KeyUpdates key_updates;           // see policy.go
//	    uint64 last_join;                 // version 2: Group.lastJoin
//	} CurrentEpoch;
//
//	struct {
//	    PrivateState path_keys;           // see internal/ratchettree
//	    EpochSecrets secrets;             // see internal/keyschedule
//	} EpochPrivate;
//
//	struct { uint64 epoch; opaque resumption_psk<V>; } ResumptionPSK;
//
// The pending commit's next epoch uses the first part (up to reinit) as
// EpochCore.

func marshalCore(b *codec.Builder, st *epochState, withPrivate bool) error {
	enc, err := st.tree.Encoding()
	if err != nil {
		return err
	}
	b.AddOpaque(st.ctxBytes)
	addTree(b, enc)
	b.AddUint32(uint32(st.me))
	return marshalCoreRest(b, st, withPrivate)
}

func marshalCoreRest(b *codec.Builder, st *epochState, withPrivate bool) error {
	b.AddOptional(withPrivate)
	if withPrivate {
		if st.priv == nil || st.keys == nil {
			return errors.New("mls: epoch has no private state to save")
		}
		st.priv.MarshalState(b)
		st.keys.MarshalSecrets(b)
	}
	b.AddOpaque(st.interim)
	b.AddOpaque(st.confTag)
	b.AddOptional(st.reinit != nil)
	if st.reinit != nil {
		addMarshaled(b, st.reinit)
	}
	return nil
}

func (g *Group) encodeCurrent() ([]byte, error) {
	enc, err := g.st.tree.Encoding()
	if err != nil {
		return nil, err
	}
	hint := enc.Len() + len(g.st.ctxBytes) + g.updates().encodedLen() + recordSlack
	return sealBuilt(kindCurrent, hint, func(b *codec.Builder) error {
		b.AddOpaque(g.st.ctxBytes)
		addTree(b, enc)
		b.AddUint32(uint32(g.st.me))
		b.AddOpaque(g.signer.priv)
		if err := marshalCoreRest(b, g.st, !g.removed); err != nil {
			return err
		}
		b.AddVector(func(b *codec.Builder) {
			if g.removed {
				return
			}
			for _, r := range g.resumption {
				b.AddUint64(r.epoch)
				b.AddOpaque(r.secret)
			}
		})
		g.updates().marshal(b)
		if currentFormat >= 2 {
			b.AddUint64(g.lastJoin)
		}
		return nil
	})
}

// core is a decoded EpochCore.
type core struct {
	st      *epochState
	signer  []byte
	private bool
}

// readCore reads an EpochCore (with the signature key between own_leaf and
// private when withSigner is set, as CurrentEpoch has it) and checks it:
// the tree is the one saved (its digest), the own leaf is not blank, the
// private keys match the tree, the epoch secrets confirm the GroupContext,
// the transcript hashes agree.
//
// The tree's RFC 9420 tree hash is not recomputed: at 10,000 members that
// is 20,000 hashes, half the time a load may take, and the tree cannot
// disagree with the GroupContext unless its bytes changed, which the
// digest catches. The tree computes and caches its hash when first needed.
func readCore(r *codec.Reader, withSigner bool) (*core, error) {
	var ctxBytes, treeBytes, digest []byte
	var me uint32
	if !r.ReadOpaque(&ctxBytes) || !r.ReadOpaque(&treeBytes) || !r.ReadBytes(sha256.Size, &digest) || !r.ReadUint32(&me) {
		return nil, corruptf("malformed epoch record")
	}
	if d := sha256.Sum256(treeBytes); !bytes.Equal(d[:], digest) {
		return nil, corruptf("ratchet tree does not match its digest")
	}
	ctx, err := wire.Decode[wire.GroupContext](ctxBytes)
	if err != nil {
		return nil, corruptCause("group context", err)
	}
	s, err := CipherSuite(ctx.CipherSuite).suite()
	if err != nil {
		return nil, corruptCause("cipher suite", err)
	}
	tree, err := ratchettree.Decode(s, treeBytes)
	if err != nil {
		return nil, corruptCause("ratchet tree", err)
	}
	if tree.Leaf(treemath.LeafIndex(me)) == nil {
		return nil, corruptf("own leaf %d is blank", me)
	}
	c := &core{st: &epochState{s: s, ctx: ctx, ctxBytes: ctxBytes, tree: tree, me: treemath.LeafIndex(me)}}
	if withSigner && !r.ReadOpaque(&c.signer) {
		return nil, corruptf("malformed epoch record")
	}
	fail := func(err error) (*core, error) {
		clear(c.signer)
		if c.st.keys != nil {
			c.st.keys.Erase()
		}
		return nil, err
	}
	if !r.ReadOptional(&c.private) {
		return fail(corruptf("malformed epoch record"))
	}
	if c.private {
		if c.st.priv, err = ratchettree.ReadPrivateState(tree, r); err != nil {
			return fail(corruptCause("private path keys", err))
		}
		if c.st.priv.Leaf() != c.st.me {
			return fail(corruptf("private path keys are for another leaf"))
		}
		if c.st.keys, err = keyschedule.ReadSecrets(s, r); err != nil {
			return fail(corruptCause("epoch secrets", err))
		}
	}
	var hasReInit bool
	if !r.ReadOpaque(&c.st.interim) || !r.ReadOpaque(&c.st.confTag) || !r.ReadOptional(&hasReInit) {
		return fail(corruptf("malformed epoch record"))
	}
	if hasReInit {
		ri, ok := readMarshaled[wire.ReInit](r)
		if !ok {
			return fail(corruptf("malformed ReInit"))
		}
		c.st.reinit = ri
	}
	// RFC 9420, Sections 6.1 and 8.2: the confirmation tag is the MAC of the
	// confirmed transcript hash under this epoch's confirmation_key, and the
	// interim transcript hash follows from both. Checking them ties the
	// stored secrets and hashes to the stored GroupContext.
	if c.private && !c.st.keys.VerifyConfirmationTag(ctx.ConfirmedTranscriptHash, c.st.confTag) {
		return fail(corruptf("epoch secrets do not confirm the GroupContext"))
	}
	interim, err := keyschedule.InterimTranscriptHash(s, ctx.ConfirmedTranscriptHash, c.st.confTag)
	if err != nil || !bytes.Equal(interim, c.st.interim) {
		return fail(corruptf("interim transcript hash does not match"))
	}
	return c, nil
}

type currentRecord struct {
	core       *core
	signer     *SignatureKeyPair
	resumption []resumptionSecret
	updates    *keyUpdates
	lastJoin   uint64
}

func (cr *currentRecord) erase() {
	if cr.core.st.keys != nil {
		cr.core.st.keys.Erase()
	}
	for _, r := range cr.resumption {
		clear(r.secret)
	}
}

func decodeCurrent(blob []byte) (*currentRecord, error) {
	version, payload, err := unsealVersion(kindCurrent, blob)
	if err != nil {
		return nil, err
	}
	defer clear(payload)
	r := codec.NewReader(payload)
	c, err := readCore(r, true)
	if err != nil {
		return nil, err
	}
	cr := &currentRecord{core: c}
	fail := func(err error) (*currentRecord, error) {
		cr.erase()
		clear(c.signer)
		return nil, err
	}
	s := c.st.s
	prev := ^uint64(0)
	if !r.ReadList(func(r *codec.Reader) bool {
		var rs resumptionSecret
		if !r.ReadUint64(&rs.epoch) || !r.ReadOpaque(&rs.secret) || rs.epoch >= prev || rs.epoch > c.st.ctx.Epoch ||
			len(rs.secret) != s.HashSize() {
			clear(rs.secret)
			return false
		}
		prev = rs.epoch
		cr.resumption = append(cr.resumption, rs)
		return true
	}) {
		return fail(corruptf("malformed resumption PSKs"))
	}
	var ok bool
	if cr.updates, ok = readKeyUpdates(r); !ok || cr.updates.baseEpoch > c.st.ctx.Epoch {
		return fail(corruptf("malformed key-update record"))
	}
	cr.lastJoin = c.st.ctx.Epoch
	if version >= 2 && (!r.ReadUint64(&cr.lastJoin) || cr.lastJoin > c.st.ctx.Epoch) {
		return fail(corruptf("malformed last_join"))
	}
	if !r.Empty() {
		return fail(corruptf("trailing bytes in the current epoch record"))
	}
	for l, seen := range cr.updates.seen {
		if c.st.tree.Leaf(treemath.LeafIndex(l)) == nil || seen.epoch > c.st.ctx.Epoch {
			return fail(corruptf("key-update record names a blank leaf or a future epoch"))
		}
	}
	signer, err := NewSignatureKeyPair(CipherSuite(c.st.ctx.CipherSuite), c.signer)
	clear(c.signer)
	if err != nil {
		return fail(corruptCause("signature key", err))
	}
	if !bytes.Equal(signer.pub, c.st.tree.Leaf(c.st.me).SignatureKey) {
		return fail(corruptf("signature key does not match the own leaf"))
	}
	cr.signer = signer
	return cr, nil
}

// --- the past epoch record ---
//
//	struct {
//	    opaque group_context<V>;
//	    opaque sender_data_secret<V>;
//	    LeafKey signature_keys<V>;   // by leaf index, up to the last member
//	} PastEpoch;
//
//	struct { optional<opaque signature_key<V>>; } LeafKey;  // absent: blank leaf
//
// The keys are listed densely so that the tree rebuilt from them is never
// larger than the record is long.
// The secret tree's skeleton is in the state record, its ratchets in the
// epoch's ratchet records. A late application message needs nothing else:
// it is a PrivateMessage (handshakes of past epochs are refused), so no
// membership key, and its signature is checked with the sender's signature
// key of that epoch and that epoch's GroupContext.

func encodePast(p *pastEpoch) ([]byte, error) {
	keys := make([][]byte, 0, p.tree.LeafCount())
	hint := 1024 + len(p.fe.SenderDataSecret)
	p.tree.Members(func(l treemath.LeafIndex, n *wire.LeafNode) bool {
		for len(keys) < int(l) {
			keys = append(keys, nil)
		}
		keys = append(keys, n.SignatureKey)
		hint += 1 + codec.VarintLen(uint64(len(n.SignatureKey))) + len(n.SignatureKey)
		return true
	})
	hint += len(keys)
	return sealBuilt(kindPast, hint, func(b *codec.Builder) error {
		addMarshaled(b, p.fe.Context)
		b.AddOpaque(p.fe.SenderDataSecret)
		b.AddVector(func(b *codec.Builder) {
			for _, k := range keys {
				b.AddOptional(k != nil)
				if k != nil {
					b.AddOpaque(k)
				}
			}
		})
		return nil
	})
}

// decodePast rebuilds a past epoch around its restored secret tree. Its
// ratchet tree holds only each member's signature key, all that the
// framing layer reads from it for a late message.
func decodePast(blob []byte, epoch uint64, secrets *secrettree.Tree) (*pastEpoch, error) {
	payload, err := unseal(kindPast, blob)
	if err != nil {
		return nil, err
	}
	defer clear(payload)
	r := codec.NewReader(payload)
	ctx, ok := readMarshaled[wire.GroupContext](r)
	if !ok {
		return nil, corruptf("malformed past epoch record")
	}
	s, err := CipherSuite(ctx.CipherSuite).suite()
	if err != nil {
		return nil, corruptCause("past epoch cipher suite", err)
	}
	var sd []byte
	if !r.ReadOpaque(&sd) || len(sd) != s.HashSize() {
		clear(sd)
		return nil, corruptf("malformed past epoch record")
	}
	var nodes wire.RatchetTree
	ok = r.ReadList(func(r *codec.Reader) bool {
		var present bool
		var key []byte
		if !r.ReadOptional(&present) || (present && !r.ReadOpaque(&key)) || len(nodes)/2 >= int(secrets.Leaves()) {
			return false
		}
		if len(nodes) > 0 {
			nodes = append(nodes, nil) // the parent between two leaves
		}
		if present {
			nodes = append(nodes, &wire.Node{NodeType: wire.NodeTypeLeaf, LeafNode: &wire.LeafNode{SignatureKey: key}})
		} else {
			nodes = append(nodes, nil)
		}
		return true
	}) && r.Empty()
	if !ok || len(nodes) == 0 || nodes[len(nodes)-1] == nil || ctx.Epoch != epoch {
		clear(sd)
		return nil, corruptf("malformed past epoch record")
	}
	tree, err := ratchettree.FromNodes(s, nodes)
	if err != nil {
		clear(sd)
		return nil, corruptCause("past epoch signature keys", err)
	}
	fe := &framing.Epoch{Suite: s, Context: ctx, SenderDataSecret: sd, Tree: secrets}
	return &pastEpoch{epoch: epoch, fe: fe, tree: tree}, nil
}

// --- ratchet records ---
//
// A ratchet record holds the LeafStates (see internal/secrettree) of the
// initialised leaves of one bucket of ratchetBucket leaves, back to back,
// ascending. Its message-key ID is "r" followed by the bucket number as a
// uint32.

func ratchetID(bucket uint32) []byte {
	return []byte{'r', byte(bucket >> 24), byte(bucket >> 16), byte(bucket >> 8), byte(bucket)}
}

// bucketsOf groups the initialised leaves of t by bucket.
func bucketsOf(t *secrettree.Tree) map[uint32][]treemath.LeafIndex {
	out := map[uint32][]treemath.LeafIndex{}
	for _, l := range t.Initialised() {
		out[uint32(l)/ratchetBucket] = append(out[uint32(l)/ratchetBucket], l)
	}
	return out
}

func encodeRatchets(t *secrettree.Tree, leaves []treemath.LeafIndex) ([]byte, error) {
	payload, err := build(func(b *codec.Builder) error {
		for _, l := range leaves {
			if err := t.MarshalLeaf(b, l); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	defer clear(payload)
	return seal(kindRatchets, payload)
}

// ratchetSummary describes a bucket's ratchets without key material (see
// secrettree.Tree.AppendLeafSummary); equal summaries mean equal records.
func ratchetSummary(t *secrettree.Tree, leaves []treemath.LeafIndex) []byte {
	var buf []byte
	for _, l := range leaves {
		buf = append(buf, byte(l>>24), byte(l>>16), byte(l>>8), byte(l))
		buf = t.AppendLeafSummary(buf, l)
	}
	return buf
}

// --- the pending commit record ---
//
//	struct {
//	    uint64 base_epoch;
//	    EpochCore next;                    // with private present
//	    opaque next_secret_tree<V>;        // secrettree Skeleton
//	    opaque new_signature_key<V>;       // empty if the commit keeps the signer
//	    bool path_updated;
//	    AddedMember added<V>;              // { uint32 leaf; opaque key_package<V>; }
//	    uint32 updated<V>;
//	    RemovedMember removed<V>;          // { uint32 leaf; opaque leaf_node<V>; }
//	    opaque psks<V>;                    // PreSharedKeyID, each as opaque<V>
//	} PendingCommit;
//
// Only this member's own commit is ever pending, so the committer is this
// member and the commit is not external. The Commit message itself is not
// kept: after a restart the application either learns from the delivery
// service that the commit was accepted (MergePendingCommit) or discards it.

func (g *Group) encodePending() ([]byte, error) {
	sc := g.pending.staged
	payload, err := build(func(b *codec.Builder) error {
		b.AddUint64(sc.base.ctx.Epoch)
		if err := marshalCore(b, sc.next, true); err != nil {
			return err
		}
		sk, err := skeleton(sc.next.secrets)
		if err != nil {
			return err
		}
		if len(sc.next.secrets.Initialised()) != 0 {
			return errors.New("mls: pending epoch's secret tree was used")
		}
		b.AddOpaque(sk)
		clear(sk)
		if sc.newSigner != nil {
			b.AddOpaque(sc.newSigner.priv)
		} else {
			b.AddOpaque(nil)
		}
		b.AddBool(sc.PathUpdated)
		b.AddVector(func(b *codec.Builder) {
			for _, a := range sc.Added {
				b.AddUint32(uint32(a.Leaf))
				b.AddOpaque(a.KeyPackage.raw)
			}
		})
		b.AddVector(func(b *codec.Builder) {
			for _, l := range sc.Updated {
				b.AddUint32(uint32(l))
			}
		})
		b.AddVector(func(b *codec.Builder) {
			for _, m := range sc.Removed {
				b.AddUint32(uint32(m.Leaf))
				b.AddOpaque(m.LeafNode)
			}
		})
		b.AddVector(func(b *codec.Builder) {
			for _, p := range sc.PSKs {
				addMarshaled(b, p.toWire())
			}
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	defer clear(payload)
	return seal(kindPending, payload)
}

func (p *PSKID) toWire() *wire.PreSharedKeyID {
	w := &wire.PreSharedKeyID{PSKType: wire.PSKTypeResumption, PSKID: p.ID, Usage: wire.ResumptionPSKUsage(p.Usage),
		PSKGroupID: p.GroupID, PSKEpoch: p.Epoch, PSKNonce: p.Nonce}
	if p.External {
		w.PSKType = wire.PSKTypeExternal
		w.Usage, w.PSKGroupID, w.PSKEpoch = 0, nil, 0
	} else {
		w.PSKID = nil
	}
	return w
}

// decodePending rebuilds this member's pending commit on top of base.
func decodePending(blob []byte, base *epochState, signer *SignatureKeyPair) (*pendingCommit, error) {
	payload, err := unseal(kindPending, blob)
	if err != nil {
		return nil, err
	}
	defer clear(payload)
	r := codec.NewReader(payload)
	var baseEpoch uint64
	if !r.ReadUint64(&baseEpoch) {
		return nil, corruptf("malformed pending commit")
	}
	c, err := readCore(r, false)
	if err != nil {
		return nil, err
	}
	next := c.st
	fail := func(err error) (*pendingCommit, error) {
		if next.keys != nil {
			next.keys.Erase()
		}
		if next.secrets != nil {
			next.secrets.Erase()
		}
		return nil, err
	}
	if !c.private || baseEpoch != base.ctx.Epoch || next.ctx.Epoch != baseEpoch+1 ||
		!bytes.Equal(next.ctx.GroupID, base.ctx.GroupID) || next.me != base.me {
		return fail(corruptf("pending commit does not follow the current epoch"))
	}
	var sk, newSigner []byte
	if !r.ReadOpaque(&sk) || !r.ReadOpaque(&newSigner) {
		return fail(corruptf("malformed pending commit"))
	}
	next.secrets, err = secrettree.Restore(next.s, sk)
	clear(sk)
	if err != nil {
		clear(newSigner)
		return fail(corruptCause("pending epoch's secret tree", err))
	}
	if next.secrets.Leaves() != next.tree.LeafCount() {
		clear(newSigner)
		return fail(corruptf("pending epoch's secret tree has the wrong size"))
	}
	sc := &StagedCommit{Committer: Sender{Type: SenderMember, Leaf: LeafIndex(base.me)}, Epoch: next.ctx.Epoch,
		base: base, next: next}
	mySig := signer
	if len(newSigner) > 0 {
		sc.newSigner, err = NewSignatureKeyPair(CipherSuite(next.ctx.CipherSuite), newSigner)
		clear(newSigner)
		if err != nil {
			return fail(corruptCause("pending commit's signature key", err))
		}
		mySig = sc.newSigner
	}
	if !bytes.Equal(mySig.pub, next.tree.Leaf(next.me).SignatureKey) {
		return fail(corruptf("pending commit's signature key does not match the own leaf"))
	}
	ok := r.ReadBool(&sc.PathUpdated) &&
		r.ReadList(func(r *codec.Reader) bool {
			var l uint32
			var raw []byte
			if !r.ReadUint32(&l) || !r.ReadOpaque(&raw) {
				return false
			}
			kp, err := wire.UnmarshalKeyPackage(raw)
			if err != nil {
				return false
			}
			sc.Added = append(sc.Added, AddedMember{Leaf: LeafIndex(l), KeyPackage: keyPackageFromWire(kp)})
			return true
		}) &&
		r.ReadList(func(r *codec.Reader) bool {
			var l uint32
			if !r.ReadUint32(&l) {
				return false
			}
			sc.Updated = append(sc.Updated, LeafIndex(l))
			return true
		}) &&
		r.ReadList(func(r *codec.Reader) bool {
			var l uint32
			var raw []byte
			if !r.ReadUint32(&l) || !r.ReadOpaque(&raw) {
				return false
			}
			ln, err := wire.UnmarshalLeafNode(raw)
			if err != nil {
				return false
			}
			sc.Removed = append(sc.Removed, RemovedMember{Leaf: LeafIndex(l), Credential: credentialFromWire(ln.Credential), LeafNode: raw})
			return true
		}) &&
		r.ReadList(func(r *codec.Reader) bool {
			id, ok := readMarshaled[wire.PreSharedKeyID](r)
			if ok {
				sc.PSKs = append(sc.PSKs, pskIDFromWire(id))
			}
			return ok
		}) && r.Empty()
	if !ok {
		return fail(corruptf("malformed pending commit"))
	}
	if ri := next.reinit; ri != nil {
		sc.ReInit = &ReInitInfo{GroupID: bytes.Clone(ri.GroupID), CipherSuite: CipherSuite(ri.CipherSuite),
			Extensions: extensionsFromWire(ri.Extensions)}
	}
	return &pendingCommit{staged: sc}, nil
}

// --- assembling a group ---

// recordSource yields the records of one group, from a store or a snapshot.
type recordSource interface {
	state() (blob []byte, epoch uint64, err error)
	epoch(e uint64) ([]byte, error)
	ratchets(e uint64, bucket uint32) ([]byte, error)
	pending() ([]byte, error) // nil, nil when there is none
}

// loaded lists the records a group was assembled from, so that the next
// Save knows what the store holds.
type loaded struct {
	epochs  map[uint64]bool
	buckets map[bucketKey][]byte // summaries
	pending bool
}

type bucketKey struct {
	epoch  uint64
	bucket uint32
}

// assemble reads a group's records from src and builds the Group, checking
// every record against the others and, if groupID is not nil, that the
// records are that group's.
func assemble(cfg *Config, groupID []byte, src recordSource) (*Group, *loaded, error) {
	blob, storedEpoch, err := src.state()
	if err != nil {
		return nil, nil, err
	}
	sr, err := decodeState(blob)
	clear(blob) // every record read is a copy holding secrets: zero it once decoded
	if err != nil {
		return nil, nil, err
	}
	defer sr.erase()
	if sr.epoch != storedEpoch {
		return nil, nil, corruptf("state record is for epoch %d, stored as %d", sr.epoch, storedEpoch)
	}
	ld := &loaded{epochs: map[uint64]bool{sr.epoch: true}, buckets: map[bucketKey][]byte{}}
	cblob, err := src.epoch(sr.epoch)
	if err != nil {
		return nil, nil, err
	}
	cr, err := decodeCurrent(cblob)
	clear(cblob)
	if err != nil {
		return nil, nil, err
	}
	st := cr.core.st
	g := &Group{cfg: cfg, signer: cr.signer, st: st, resumption: cr.resumption, keyUpdates: cr.updates, lastJoin: cr.lastJoin,
		removed: sr.removed}
	fail := func(err error) (*Group, *loaded, error) {
		g.erase()
		return nil, nil, err
	}
	switch {
	case groupID != nil && !bytes.Equal(st.ctx.GroupID, groupID):
		return fail(corruptf("stored state is for another group"))
	case st.ctx.Epoch != sr.epoch:
		return fail(corruptf("current epoch record is for epoch %d, state for %d", st.ctx.Epoch, sr.epoch))
	case sr.removed == cr.core.private:
		return fail(corruptf("private state present on a removed member or missing on a member"))
	}
	if sr.removed {
		// What a removed member's Group holds in memory: no secrets, an
		// erased secret tree (Process refuses everything with ErrRemoved).
		st.keys = erasedEpoch(st.s)
		if st.secrets, err = secrettree.New(st.s, make([]byte, st.s.HashSize()), st.tree.LeafCount(), secrettree.Config{}); err != nil {
			return fail(err)
		}
		st.secrets.Erase()
		return g, ld, nil
	}
	if st.secrets, err = restoreTree(src, st.s, sr.epoch, sr.current, ld); err != nil {
		return fail(err)
	}
	if st.secrets.Leaves() != st.tree.LeafCount() {
		return fail(corruptf("secret tree has %d leaves, ratchet tree %d", st.secrets.Leaves(), st.tree.LeafCount()))
	}
	for _, ref := range sr.past {
		t, err := restoreTree(src, st.s, ref.epoch, ref.skeleton, ld)
		if err != nil {
			return fail(err)
		}
		pblob, err := src.epoch(ref.epoch)
		if err != nil {
			t.Erase()
			return fail(err)
		}
		p, err := decodePast(pblob, ref.epoch, t)
		clear(pblob)
		if err != nil {
			t.Erase()
			return fail(err)
		}
		if !bytes.Equal(p.fe.Context.GroupID, st.ctx.GroupID) || p.fe.Suite != st.s {
			t.Erase()
			return fail(corruptf("past epoch %d belongs to another group or suite", ref.epoch))
		}
		g.past = append(g.past, p)
		ld.epochs[ref.epoch] = true
	}
	for _, cp := range sr.proposals {
		if err := checkCachedProposal(st, cp, sr.signers[cp]); err != nil {
			return fail(err)
		}
		// Cached proposals are trusted at commit time (they were
		// validated on receipt), so a stored one is validated again.
		if err := checkProposalSender(cp.proposal.ProposalType, cp.sender.SenderType); err != nil {
			return fail(corruptCause("cached proposal", err))
		}
		if err := g.validateProposal(st, cp.proposal, cp.sender, true); err != nil {
			return fail(corruptCause("cached proposal", err))
		}
		st.proposals = append(st.proposals, cp)
	}
	sr.proposals = nil // now the group's
	pblob, err := src.pending()
	if err != nil {
		return fail(err)
	}
	if pblob != nil {
		g.pending, err = decodePending(pblob, st, g.signer)
		clear(pblob)
		if err != nil {
			return fail(err)
		}
		ld.pending = true
	}
	return g, ld, nil
}

// restoreTree loads a secret tree's ratchet records and restores it.
func restoreTree(src recordSource, s *suite.Suite, epoch uint64, sk []byte, ld *loaded) (*secrettree.Tree, error) {
	leaves, err := secrettree.SkeletonLeaves(sk)
	if err != nil {
		return nil, corruptCause(fmt.Sprintf("secret tree of epoch %d", epoch), err)
	}
	var blobs [][]byte
	defer func() {
		for _, b := range blobs {
			clear(b)
		}
	}()
	stored := map[uint32][]byte{}
	defer func() {
		for _, b := range stored {
			clear(b)
		}
	}()
	seen := map[uint32]bool{}
	for _, l := range leaves {
		b := uint32(l) / ratchetBucket
		if seen[b] {
			continue
		}
		seen[b] = true
		blob, err := src.ratchets(epoch, b)
		if err != nil {
			return nil, err
		}
		stored[b] = blob
		payload, err := unseal(kindRatchets, blob)
		if err != nil {
			return nil, err
		}
		blobs = append(blobs, payload)
	}
	t, err := secrettree.Restore(s, sk, blobs...)
	if err != nil {
		return nil, corruptCause(fmt.Sprintf("secret tree of epoch %d", epoch), err)
	}
	// Each record must hold exactly its bucket's leaves, in order: encoding
	// them again must give the stored bytes.
	for b, leaves := range bucketsOf(t) {
		enc, err := encodeRatchets(t, leaves)
		same := err == nil && bytes.Equal(enc, stored[b])
		clear(enc)
		if !same {
			t.Erase()
			return nil, corruptf("secret tree of epoch %d: ratchet record %d holds other leaves", epoch, b)
		}
		ld.buckets[bucketKey{epoch, b}] = ratchetSummary(t, leaves)
	}
	return t, nil
}

// checkCachedProposal checks what can be checked of a stored cached
// proposal: the sender is plausible, and an own Update's private keys belong
// to the leaf it proposes.
func checkCachedProposal(st *epochState, cp *cachedProposal, signer []byte) error {
	defer clear(signer)
	if len(cp.ref) != st.s.HashSize() {
		return corruptf("proposal reference length")
	}
	for _, other := range st.proposals {
		if bytes.Equal(other.ref, cp.ref) {
			return corruptf("proposal cached twice")
		}
	}
	if cp.sender.SenderType == wire.SenderTypeMember && st.tree.Leaf(treemath.LeafIndex(cp.sender.LeafIndex)) == nil {
		return corruptf("proposal from a blank leaf")
	}
	if cp.own && (cp.sender.SenderType != wire.SenderTypeMember || treemath.LeafIndex(cp.sender.LeafIndex) != st.me) {
		return corruptf("own proposal from another sender")
	}
	isUpdate := cp.proposal.ProposalType == wire.ProposalTypeUpdate
	if (cp.leafPriv != nil) != (cp.own && isUpdate) || (len(signer) > 0 && !(cp.own && isUpdate)) {
		return corruptf("private key on a proposal that is not an own Update")
	}
	if cp.leafPriv != nil {
		pub, err := st.s.KEMPublicKey(cp.leafPriv)
		if err != nil || !bytes.Equal(pub, cp.proposal.Update.LeafNode.EncryptionKey) {
			return corruptf("own Update's private key does not match its leaf")
		}
	}
	if len(signer) > 0 {
		k, err := NewSignatureKeyPair(CipherSuite(st.ctx.CipherSuite), signer)
		if err != nil || !bytes.Equal(k.pub, cp.proposal.Update.LeafNode.SignatureKey) {
			return corruptf("own Update's signature key does not match its leaf")
		}
		cp.newSigner = k
	}
	return nil
}

// erasedEpoch is the key schedule of an epoch whose secrets were erased (a
// removed member's): every secret all zeros, as Erase leaves them.
func erasedEpoch(s *suite.Suite) *keyschedule.Epoch {
	b := codec.NewBuilder(nil)
	for range 9 {
		b.AddOpaque(make([]byte, s.HashSize()))
	}
	enc, _ := b.Bytes()
	e, _ := keyschedule.ReadSecrets(s, codec.NewReader(enc))
	return e
}

// erase zeroes the secrets of a Group that is being thrown away (a load
// that failed halfway).
func (g *Group) erase() {
	if g.st != nil {
		if g.st.keys != nil {
			g.st.keys.Erase()
		}
		if g.st.secrets != nil {
			g.st.secrets.Erase()
		}
	}
	for _, p := range g.past {
		p.fe.Tree.Erase()
		p.fe.SenderDataSecret.Erase()
	}
	for _, r := range g.resumption {
		clear(r.secret)
	}
	if g.pending != nil {
		if n := g.pending.staged.next; n != nil && n.keys != nil {
			n.keys.Erase()
		}
	}
}

// --- the snapshot: every record in one blob ---
//
//	struct {
//	    opaque state<V>;
//	    EpochEntry epochs<V>;        // { uint64 epoch; opaque record<V>; } ascending
//	    RatchetEntry ratchets<V>;    // { uint64 epoch; uint32 bucket; opaque record<V>; } ascending
//	    optional<opaque pending<V>>;
//	} Snapshot;

// allRecords encodes every record of the group.
func (g *Group) allRecords() (*snapshot, error) {
	state, err := g.encodeState()
	if err != nil {
		return nil, err
	}
	sn := &snapshot{st: state, ep: g.st.ctx.Epoch, epochs: map[uint64][]byte{}, rats: map[bucketKey][]byte{}}
	if sn.epochs[g.st.ctx.Epoch], err = g.encodeCurrent(); err != nil {
		return nil, err
	}
	if g.removed {
		return sn, nil
	}
	trees := map[uint64]*secrettree.Tree{g.st.ctx.Epoch: g.st.secrets}
	for _, p := range g.past {
		if sn.epochs[p.epoch], err = encodePast(p); err != nil {
			return nil, err
		}
		trees[p.epoch] = p.fe.Tree
	}
	for e, t := range trees {
		for b, leaves := range bucketsOf(t) {
			if sn.rats[bucketKey{e, b}], err = encodeRatchets(t, leaves); err != nil {
				return nil, err
			}
		}
	}
	if g.pending != nil {
		if sn.pend, err = g.encodePending(); err != nil {
			return nil, err
		}
	}
	return sn, nil
}

// snapshot is a group's records in memory; it is also the recordSource of
// UnmarshalGroup.
type snapshot struct {
	st     []byte
	ep     uint64
	epochs map[uint64][]byte
	rats   map[bucketKey][]byte
	pend   []byte
}

func (s *snapshot) state() ([]byte, uint64, error) { return s.st, s.ep, nil }

func (s *snapshot) epoch(e uint64) ([]byte, error) {
	if b, ok := s.epochs[e]; ok {
		return b, nil
	}
	return nil, corruptf("epoch %d record missing", e)
}

func (s *snapshot) ratchets(e uint64, bucket uint32) ([]byte, error) {
	if b, ok := s.rats[bucketKey{e, bucket}]; ok {
		return b, nil
	}
	return nil, corruptf("ratchet record %d of epoch %d missing", bucket, e)
}

func (s *snapshot) pending() ([]byte, error) { return s.pend, nil }

func (s *snapshot) erase() {
	clear(s.st)
	for _, b := range s.epochs {
		clear(b)
	}
	for _, b := range s.rats {
		clear(b)
	}
	clear(s.pend)
}

// MarshalBinary encodes the whole group state (every record Save would
// write) in one versioned blob: GroupContext, ratchet tree, private path
// keys, signature key, epoch secrets, secret trees with their ratchet
// positions and kept out-of-order keys, transcript hash, confirmation tag,
// cached proposals with their private keys, the pending own commit, the
// retained past epochs, resumption PSKs and key-update tracking. The blob
// holds secrets: store it as carefully as the keys themselves, and prefer
// Save, which rewrites only what changed and deletes what is consumed.
//
// Not saved: the link to the group a ReInit or branch resumes (see
// ReInitGroup; save the new group after its first commit is merged), and the
// Config.
func (g *Group) MarshalBinary() ([]byte, error) {
	sn, err := g.allRecords()
	if err != nil {
		return nil, err
	}
	defer sn.erase()
	payload, err := build(func(b *codec.Builder) error {
		b.AddOpaque(sn.st)
		epochs := make([]uint64, 0, len(sn.epochs))
		for e := range sn.epochs {
			epochs = append(epochs, e)
		}
		slices.Sort(epochs)
		b.AddVector(func(b *codec.Builder) {
			for _, e := range epochs {
				b.AddUint64(e)
				b.AddOpaque(sn.epochs[e])
			}
		})
		keys := make([]bucketKey, 0, len(sn.rats))
		for k := range sn.rats {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b bucketKey) int {
			if a.epoch != b.epoch {
				if a.epoch < b.epoch {
					return -1
				}
				return 1
			}
			return int(int64(a.bucket) - int64(b.bucket))
		})
		b.AddVector(func(b *codec.Builder) {
			for _, k := range keys {
				b.AddUint64(k.epoch)
				b.AddUint32(k.bucket)
				b.AddOpaque(sn.rats[k])
			}
		})
		b.AddOptional(sn.pend != nil)
		if sn.pend != nil {
			b.AddOpaque(sn.pend)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	defer clear(payload)
	return seal(kindSnapshot, payload)
}

// UnmarshalGroup decodes a blob made by MarshalBinary. It checks the state
// thoroughly (the tree against the GroupContext's tree hash, private keys
// against the tree, epoch secrets against the confirmation tag, every secret
// tree's invariants) and fails with ErrCorruptState or ErrStateVersion; it
// never panics. cfg is the Config the group uses from now on.
func UnmarshalGroup(cfg *Config, data []byte) (*Group, error) {
	payload, err := unseal(kindSnapshot, data)
	if err != nil {
		return nil, err
	}
	defer clear(payload)
	sn := &snapshot{epochs: map[uint64][]byte{}, rats: map[bucketKey][]byte{}}
	defer sn.erase()
	r := codec.NewReader(payload)
	var hasPending bool
	prevE := int64(-1)
	var prevK *bucketKey
	ok := r.ReadOpaque(&sn.st) &&
		r.ReadList(func(r *codec.Reader) bool {
			var e uint64
			var rec []byte
			if !r.ReadUint64(&e) || !r.ReadOpaque(&rec) || (prevE >= 0 && e <= uint64(prevE)) {
				return false
			}
			prevE = int64(e)
			sn.epochs[e] = rec
			return true
		}) &&
		r.ReadList(func(r *codec.Reader) bool {
			var k bucketKey
			var rec []byte
			if !r.ReadUint64(&k.epoch) || !r.ReadUint32(&k.bucket) || !r.ReadOpaque(&rec) {
				return false
			}
			if prevK != nil && (k.epoch < prevK.epoch || (k.epoch == prevK.epoch && k.bucket <= prevK.bucket)) {
				return false
			}
			prevK = &k
			sn.rats[k] = rec
			return true
		}) &&
		r.ReadOptional(&hasPending)
	if ok && hasPending {
		ok = r.ReadOpaque(&sn.pend)
	}
	if !ok || !r.Empty() {
		return nil, corruptf("malformed snapshot")
	}
	// The snapshot's own epoch is the state record's.
	sr, err := decodeState(sn.st)
	if err != nil {
		return nil, err
	}
	sn.ep = sr.epoch
	sr.erase()
	g, ld, err := assemble(cfg, nil, sn)
	if err != nil {
		return nil, err
	}
	// Every record in the blob must have been used: no stray epochs or
	// ratchet records.
	if len(ld.epochs) != len(sn.epochs) || len(ld.buckets) != len(sn.rats) {
		g.erase()
		return nil, corruptf("snapshot holds records the state does not refer to")
	}
	return g, nil
}
