package mls

import (
	"bytes"
	"math/bits"
	"slices"
	"time"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/secrettree"
	"github.com/mlskit/mlskit/internal/treemath"
	"github.com/mlskit/mlskit/internal/wire"
)

// # Key-update policy
//
// Forward secrecy and post-compromise security last only as long as members
// replace their leaf keys: a client that never updates keeps, for the life
// of the group, a leaf key whose compromise exposes every later path secret
// encrypted to it (RFC 9750, Section 8.2.2: "Mandate key updates from
// clients that are not otherwise sending messages and evict clients that are
// idle for too long"). RFC 9750, Section 6 leaves to the application "how
// long to allow a member to stay in a group without updating its leaf keys
// before removing them" and "how often clients should update their leaf
// keys". A Group tracks, for every member, the epoch in which this client
// last saw that member's leaf refreshed and the time (Config.Now) at which
// it saw it; KeyUpdatePolicy turns that into two answers: StaleMembers, for
// the application to remove, and KeyUpdateStatus().Due, for this client to
// update itself (with an empty Commit, which carries a fresh UpdatePath, or
// ProposeUpdate).

// KeyUpdatePolicy says when this client should refresh its own leaf and
// when another member counts as stale. The zero value means the defaults.
type KeyUpdatePolicy struct {
	// UpdateAfterMessages: this client's update is due once it has sent
	// this many application messages since its leaf was last refreshed.
	// 0 means DefaultUpdateAfterMessages; negative disables the count.
	UpdateAfterMessages int
	// UpdateInterval: this client's update is due once this long has
	// passed since it saw its leaf refreshed. 0 means
	// DefaultUpdateInterval; negative disables the clock.
	UpdateInterval time.Duration
	// MaxLeafAge: a member whose leaf this client has not seen refreshed for
	// longer is stale. 0 means DefaultMaxLeafAge; negative disables.
	MaxLeafAge time.Duration
	// MaxLeafEpochs: a member whose leaf has not been refreshed for more
	// than this many epochs is stale. 0 disables (the default): epochs
	// advance at the pace of the group's own activity, which the library
	// cannot guess, whereas time bounds how long a stolen leaf key stays
	// useful.
	MaxLeafEpochs uint64
}

// Defaults of KeyUpdatePolicy.
//
// A week between own updates keeps the post-compromise window of an idle
// client to days while costing a 10,000-member group about 1,400 commits a
// day if every member follows it. A thousand messages bounds the exposure
// of a busy sender the same way at under 0.1% extra traffic. A member is
// stale after 30 days, four missed update periods: a client switched off
// over a holiday is not evicted, one gone for a month is, as RFC 9750,
// Section 8.2.2 recommends for clients idle too long.
const (
	DefaultUpdateAfterMessages = 1000
	DefaultUpdateInterval      = 7 * 24 * time.Hour
	DefaultMaxLeafAge          = 30 * 24 * time.Hour
)

func (c *Config) keyUpdatePolicy() KeyUpdatePolicy {
	var p KeyUpdatePolicy
	if c != nil && c.KeyUpdate != nil {
		p = *c.KeyUpdate
	}
	if p.UpdateAfterMessages == 0 {
		p.UpdateAfterMessages = DefaultUpdateAfterMessages
	}
	if p.UpdateInterval == 0 {
		p.UpdateInterval = DefaultUpdateInterval
	}
	if p.MaxLeafAge == 0 {
		p.MaxLeafAge = DefaultMaxLeafAge
	}
	return p
}

// keyUpdates is what a Group knows about leaf refreshes. It is part of the
// group's saved state.
type keyUpdates struct {
	// base is when this client started following the group (created or
	// joined it): a member it has not seen refresh is counted from then,
	// since the client cannot know when that member last updated.
	baseEpoch uint64
	baseTime  int64 // Unix seconds
	// seen holds the members whose refresh this client saw.
	seen map[LeafIndex]refresh
	// sentBefore counts the application messages this member sent in
	// earlier epochs since its own leaf was last refreshed; those of the
	// current epoch are the generation of its application ratchet.
	sentBefore uint64
}

type refresh struct {
	epoch uint64
	time  int64 // Unix seconds
}

// startKeyUpdates begins tracking when a Group is created or joined: this
// member's own leaf is fresh, the others are counted from now.
func (g *Group) startKeyUpdates() {
	now := g.cfg.now().Unix()
	e := g.st.ctx.Epoch
	g.keyUpdates = &keyUpdates{baseEpoch: e, baseTime: now, seen: map[LeafIndex]refresh{LeafIndex(g.st.me): {e, now}}}
}

func (g *Group) updates() *keyUpdates {
	if g.keyUpdates == nil {
		g.startKeyUpdates()
	}
	return g.keyUpdates
}

// noteCommit records the leaves that the commit sc, about to be merged,
// refreshes: added members, applied Updates, the committer's path, an
// external joiner's new leaf. Removed leaves are forgotten. It must run
// before the group enters the new epoch, while the ending epoch's secret
// tree still says how many messages this member sent in it.
func (g *Group) noteCommit(sc *StagedCommit) {
	ku := g.updates()
	if sc.SelfRemoved || sc.next == nil {
		return
	}
	if g.st.secrets != nil {
		ku.sentBefore += g.st.secrets.NextGeneration(g.st.me, secrettree.Application)
	}
	r := refresh{sc.Epoch, g.cfg.now().Unix()}
	for _, m := range sc.Removed {
		delete(ku.seen, m.Leaf)
	}
	mark := func(l LeafIndex) {
		ku.seen[l] = r
		if l == LeafIndex(sc.next.me) {
			ku.sentBefore = 0
		}
	}
	for _, a := range sc.Added {
		mark(a.Leaf)
	}
	for _, l := range sc.Updated {
		mark(l)
	}
	if sc.PathUpdated && sc.Committer.Type == SenderMember {
		mark(sc.Committer.Leaf)
	}
	if sc.External {
		// The joiner's leaf index is not recorded on the StagedCommit:
		// find the leaves whose key the commit changed.
		old, next := sc.base.tree, sc.next.tree
		for l := range next.LeafCount() {
			n := next.Leaf(treemath.LeafIndex(l))
			if n == nil {
				continue
			}
			if o := old.Leaf(treemath.LeafIndex(l)); o == nil || !bytes.Equal(o.EncryptionKey, n.EncryptionKey) {
				mark(LeafIndex(l))
			}
		}
	}
}

// LeafRefresh says when this client last saw a member's leaf refreshed.
type LeafRefresh struct {
	Leaf LeafIndex
	// Epoch is the epoch whose commit refreshed the leaf, and Seen the
	// time (Config.Now) this client merged it.
	Epoch uint64
	Seen  time.Time
	// Observed is false when this client never saw the leaf refreshed:
	// Epoch and Seen are then when it created or joined the group, the
	// latest the member's refresh can have been as far as it knows.
	Observed bool
}

// LeafRefreshes lists, for every member in leaf order, when this client
// last saw its leaf refreshed (RFC 9750, Section 8.2.2).
func (g *Group) LeafRefreshes() []LeafRefresh {
	ku := g.updates()
	var out []LeafRefresh
	g.st.tree.Members(func(l treemath.LeafIndex, _ *wire.LeafNode) bool {
		lr := LeafRefresh{Leaf: LeafIndex(l), Epoch: ku.baseEpoch, Seen: time.Unix(ku.baseTime, 0)}
		if r, ok := ku.seen[LeafIndex(l)]; ok {
			lr.Epoch, lr.Seen, lr.Observed = r.epoch, time.Unix(r.time, 0), true
		}
		out = append(out, lr)
		return true
	})
	return out
}

// StaleMembers lists the members other than this one whose leaf has not
// been refreshed within the Config's KeyUpdatePolicy (MaxLeafAge and
// MaxLeafEpochs), so that the application can remove them (RFC 9750,
// Section 8.2.2). It changes nothing.
func (g *Group) StaleMembers() []LeafRefresh {
	p := g.cfg.keyUpdatePolicy()
	now := g.cfg.now()
	var out []LeafRefresh
	for _, lr := range g.LeafRefreshes() {
		if lr.Leaf == LeafIndex(g.st.me) {
			continue
		}
		if (p.MaxLeafAge > 0 && now.Sub(lr.Seen) > p.MaxLeafAge) ||
			(p.MaxLeafEpochs > 0 && g.st.ctx.Epoch-min(lr.Epoch, g.st.ctx.Epoch) > p.MaxLeafEpochs) {
			out = append(out, lr)
		}
	}
	return out
}

// KeyUpdateStatus describes this member's own leaf.
type KeyUpdateStatus struct {
	// LastRefresh is when this client last refreshed its leaf (joined,
	// or merged a commit carrying its path or Update), and Epoch the epoch
	// that started.
	Epoch       uint64
	LastRefresh time.Time
	// MessagesSent counts the application messages sent since.
	MessagesSent uint64
	// Due: the KeyUpdatePolicy says to update now (send an empty Commit,
	// which carries a fresh UpdatePath, or ProposeUpdate).
	Due bool
}

// KeyUpdateStatus reports how stale this member's own leaf is and whether
// the Config's KeyUpdatePolicy says to update it.
func (g *Group) KeyUpdateStatus() KeyUpdateStatus {
	ku := g.updates()
	r, ok := ku.seen[LeafIndex(g.st.me)]
	if !ok {
		r = refresh{ku.baseEpoch, ku.baseTime}
	}
	s := KeyUpdateStatus{Epoch: r.epoch, LastRefresh: time.Unix(r.time, 0), MessagesSent: ku.sentBefore}
	if g.st.secrets != nil && !g.removed {
		s.MessagesSent += g.st.secrets.NextGeneration(g.st.me, secrettree.Application)
	}
	p := g.cfg.keyUpdatePolicy()
	s.Due = (p.UpdateAfterMessages > 0 && s.MessagesSent >= uint64(p.UpdateAfterMessages)) ||
		(p.UpdateInterval > 0 && g.cfg.now().Sub(s.LastRefresh) >= p.UpdateInterval)
	return s
}

// encodedLen is how many octets marshal writes, at most.
func (ku *keyUpdates) encodedLen() int { return 3*8 + 4 + 20*len(ku.seen) }

// marshal appends the saved form of the tracking state:
//
//	struct {
//	    uint64 base_epoch;
//	    uint64 base_time;            // Unix seconds, two's complement
//	    uint64 sent_before;
//	    LeafSeen seen<V>;            // ascending leaf
//	} KeyUpdates;
//
//	struct { uint32 leaf; uint64 epoch; uint64 time; } LeafSeen;
func (ku *keyUpdates) marshal(b *codec.Builder) {
	b.AddUint64(ku.baseEpoch)
	b.AddUint64(uint64(ku.baseTime))
	b.AddUint64(ku.sentBefore)
	leaves := make([]LeafIndex, 0, len(ku.seen))
	for l := range ku.seen {
		leaves = append(leaves, l)
	}
	slices.Sort(leaves)
	b.AddVector(func(b *codec.Builder) {
		for _, l := range leaves {
			r := ku.seen[l]
			b.AddUint32(uint32(l))
			b.AddUint64(r.epoch)
			b.AddUint64(uint64(r.time))
		}
	})
}

func readKeyUpdates(r *codec.Reader) (*keyUpdates, bool) {
	ku := &keyUpdates{}
	var bt uint64
	if !r.ReadUint64(&ku.baseEpoch) || !r.ReadUint64(&bt) || !r.ReadUint64(&ku.sentBefore) {
		return nil, false
	}
	ku.baseTime = int64(bt)
	// Size the map from the vector's length (20 bytes an entry): a
	// 10,000-member group would otherwise rehash it a dozen times.
	if rest := r.Rest(); len(rest) > 0 {
		var n uint32
		if codec.NewReader(rest).ReadVarint(&n) {
			ku.seen = make(map[LeafIndex]refresh, min(int(n)/20, len(rest)/20))
		}
	}
	if ku.seen == nil {
		ku.seen = map[LeafIndex]refresh{}
	}
	prev := int64(-1)
	ok := r.ReadList(func(r *codec.Reader) bool {
		var l uint32
		var e, t uint64
		if !r.ReadUint32(&l) || !r.ReadUint64(&e) || !r.ReadUint64(&t) || int64(l) <= prev {
			return false
		}
		prev = int64(l)
		ku.seen[LeafIndex(l)] = refresh{e, int64(t)}
		return true
	})
	return ku, ok
}

// # Padding policy
//
// The length of a PrivateMessage tells an observer roughly how long the
// plaintext is; RFC 9420, Section 15.1 lets the sender append zero octets
// to hide it. Config.PaddingBlock pads to a multiple of a block, which hides
// only the last few bits of the length; a PaddingPolicy can hide more, at
// the cost of bandwidth: PadToPowerOfTwo leaks only the logarithm of the
// length, and PadToBuckets only which of a few sizes the message fits.

// PaddingPolicy decides how long the PrivateMessageContent of an outgoing
// message is after padding (RFC 9420, Section 15.1). PaddedSize gets the
// length n of the encoded content without padding and returns the length
// to pad it to; a result below n means no padding. The ciphertext is then
// that length plus the AEAD tag.
type PaddingPolicy interface {
	PaddedSize(n int) int
}

// PadToMultiple pads to the next multiple of its value (the behaviour of
// Config.PaddingBlock). 0 or less pads nothing.
type PadToMultiple int

// PaddedSize implements PaddingPolicy.
func (m PadToMultiple) PaddedSize(n int) int {
	if m <= 1 {
		return n
	}
	b := int(m)
	return n + (b-n%b)%b
}

// PadToPowerOfTwo pads to the next power of two, at least Min. Above Max
// (if Max > 0) it pads to the next multiple of Max instead, so a large
// message costs at most Max extra bytes rather than doubling.
type PadToPowerOfTwo struct {
	Min, Max int
}

// PaddedSize implements PaddingPolicy.
func (p PadToPowerOfTwo) PaddedSize(n int) int {
	t := max(n, p.Min, 1)
	if p.Max > 0 && t > p.Max {
		return PadToMultiple(p.Max).PaddedSize(t)
	}
	if t > 1<<30 {
		return n
	}
	return 1 << bits.Len(uint(t-1))
}

// PadToBuckets pads to the smallest listed size that fits; the sizes must
// be ascending. A message larger than the last size is padded to a
// multiple of the last size.
type PadToBuckets []int

// PaddedSize implements PaddingPolicy.
func (bs PadToBuckets) PaddedSize(n int) int {
	for _, b := range bs {
		if b >= n {
			return b
		}
	}
	if len(bs) == 0 {
		return n
	}
	return PadToMultiple(bs[len(bs)-1]).PaddedSize(n)
}

// padding returns how many zero octets to append to a
// PrivateMessageContent of n octets (RFC 9420, Section 15.1): Config.Padding
// if set, else Config.PaddingBlock.
func (g *Group) padding(n int) int {
	var policy PaddingPolicy = PadToMultiple(g.cfg.paddingBlock())
	if p := g.cfg.orDefault().Padding; p != nil {
		policy = p
	}
	t := policy.PaddedSize(n)
	// Keep the padded content well inside opaque<V>'s 2^30 limit.
	if t <= n || t > 1<<29 {
		return 0
	}
	return t - n
}
