package mls_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"

	"github.com/mlskit/mlskit/internal/wire"
	"github.com/mlskit/mlskit/mls"
)

// Stateful fuzzing (issue 12): the fuzz input is a program of honest and
// malicious operations on the catalogue group (alice, bob, carol; an
// external sender; dave, an outsider; a PublicGroup). After each step:
// no panic; a rejected input leaves every receiver's fingerprint as it
// was; a commit accepted by one honest member is accepted by all, who then
// agree on the epoch authenticator and can exchange messages; and the
// whole run allocates in proportion to its input.
//
//	go test ./mls -run '^$' -fuzz '^FuzzStatefulGroup$' -fuzztime 60s

// fuzzStart is the starting group, built once and cloned per run.
type fuzzStart struct {
	cfg     *mls.Config
	members [3]*mls.Group    // alice, bob, carol, decoded from a snapshot; cloned per run
	pg      *mls.PublicGroup // built from alice's GroupInfo; cloned per run
	fp      [3]string        // the members' fingerprints at the start
	env     *advEnv          // its signers, credentials and dave's KeyPackage
}

// fuzzing is set when the test binary runs a fuzz campaign (-test.fuzz),
// or when MLSKIT_FUZZ_PROFILE is set (to profile the corpus as the
// campaign runs it): the memoised fingerprint is then trusted; in every
// other run it is checked against the direct one.
var fuzzing = func() bool {
	f := flag.Lookup("test.fuzz")
	return (f != nil && f.Value.String() != "") || os.Getenv("MLSKIT_FUZZ_PROFILE") != ""
}

// fuzzFingerprint is fingerprint with the memoised key availability.
func fuzzFingerprint(t testing.TB, g *mls.Group) string {
	t.Helper()
	fp := fingerprintWith(t, g, mls.KeyAvailabilityMemo)
	if !fuzzing() {
		if direct := fingerprint(t, g); direct != fp {
			t.Fatalf("memoised fingerprint differs from the direct one:\n%s", diffLines(direct, fp))
		}
	}
	return fp
}

var (
	fuzzOnce  sync.Once
	fuzzState *fuzzStart
)

func fuzzStartState(t testing.TB) *fuzzStart {
	fuzzOnce.Do(func() {
		e := newAdvEnv(t, "fuzz")
		s := &fuzzStart{cfg: e.cfg, env: e}
		for i, c := range e.members {
			b, err := c.g.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if s.members[i], err = mls.UnmarshalGroup(s.cfg, b); err != nil {
				t.Fatal(err)
			}
			s.fp[i] = fuzzFingerprint(t, s.members[i])
		}
		gi, err := e.alice.g.GroupInfo(true, false)
		if err != nil {
			t.Fatal(err)
		}
		if s.pg, err = mls.NewPublicGroup(s.cfg, gi, nil); err != nil {
			t.Fatal(err)
		}
		fuzzState = s
	})
	if fuzzState == nil {
		t.Fatal("fuzz start state failed")
	}
	return fuzzState
}

// fuzzRun is one execution: fresh copies of the groups.
type fuzzRun struct {
	t    *testing.T
	s    *fuzzStart
	e    *advEnv // copy of s.env pointing at the fresh groups
	pg   *mls.PublicGroup
	in   []byte
	done bool
	// fp caches each receiver's fingerprint while only refusals happen.
	fp map[*client]string
}

func (r *fuzzRun) byte() byte {
	if len(r.in) == 0 {
		r.done = true
		return 0
	}
	b := r.in[0]
	r.in = r.in[1:]
	return b
}

func (r *fuzzRun) u32() uint32 {
	var b [4]byte
	for i := range b {
		b[i] = r.byte()
	}
	return binary.BigEndian.Uint32(b[:])
}

func (r *fuzzRun) bytes(max int) []byte {
	n := int(r.byte()) % (max + 1)
	if n > len(r.in) {
		n = len(r.in)
	}
	out := r.in[:n]
	r.in = r.in[n:]
	return bytes.Clone(out)
}

func newFuzzRun(t *testing.T, s *fuzzStart, in []byte) *fuzzRun {
	e := *s.env
	e.alice, e.bob, e.carol = &client{}, &client{}, &client{}
	*e.alice, *e.bob, *e.carol = *s.env.alice, *s.env.bob, *s.env.carol
	// Config.Rand is the library's only randomness: each run gets its
	// own, started afresh, so that a run repeats whatever ran before it.
	cfg := *s.cfg
	cfg.Rand = seededRand("fuzz run")
	e.cfg = &cfg
	for i, c := range []*client{e.alice, e.bob, e.carol} {
		c.g = mls.CloneGroup(s.members[i], e.cfg)
	}
	e.members = []*client{e.alice, e.bob, e.carol}
	pg, err := mls.ClonePublicGroup(s.pg, e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.pg = pg
	// Every run starts from the same states: their fingerprints are
	// computed once.
	fp := map[*client]string{e.alice: s.fp[0], e.bob: s.fp[1], e.carol: s.fp[2]}
	return &fuzzRun{t: t, s: s, e: &e, pg: pg, in: in, fp: fp}
}

// leaf picks a leaf index: mostly small, sometimes aliased or huge.
func (r *fuzzRun) leaf() uint32 {
	switch b := r.byte(); b % 8 {
	case 6:
		return 1<<31 + uint32(b>>3)%4
	case 7:
		return r.u32()
	default:
		return uint32(b % 5)
	}
}

// proposal builds a proposal, valid or not, from the input.
func (r *fuzzRun) proposal() *wire.Proposal {
	e := r.e
	switch r.byte() % 9 {
	case 0:
		return pRemove(r.leaf())
	case 1:
		l, err := mls.UpdateLeaf(e.bob.g, nil, r.leaf(), func(l *wire.LeafNode) {
			switch r.byte() % 5 {
			case 1:
				l.LeafNodeSource = wire.LeafNodeSource(r.byte()%3 + 1)
			case 2:
				l.EncryptionKey = mls.LeafOf(e.alice.g, 0).EncryptionKey
			case 3:
				l.Extensions = append(l.Extensions, ext(uint16(r.byte())<<8|uint16(r.byte()), r.bytes(4)...))
			case 4:
				l.Capabilities.Credentials = nil
			}
		})
		if err != nil {
			return pRemove(3)
		}
		return pUpdate(l)
	case 2:
		kp, err := mls.KeyPackageEdit(e.dave.bundle, func(k *wire.KeyPackage) {
			switch r.byte() % 4 {
			case 1:
				k.InitKey = k.LeafNode.EncryptionKey
			case 2:
				k.Version = wire.ProtocolVersion(r.byte())
			case 3:
				k.LeafNode.Lifetime.NotAfter = uint64(r.byte())
			}
		})
		if err != nil {
			return pRemove(3)
		}
		return pAdd(kp)
	case 3:
		n := nonce()
		if r.byte()%2 == 0 {
			n = r.bytes(40)
		}
		return pPSK(wire.PreSharedKeyID{PSKType: wire.PSKType(r.byte()%2 + 1), Usage: wire.ResumptionPSKUsage(r.byte()%3 + 1),
			PSKID: r.bytes(3), PSKGroupID: mls.GroupState(e.bob.g).GroupID, PSKEpoch: uint64(r.byte() % 4), PSKNonce: n})
	case 4:
		exts := append([]wire.Extension{}, mls.GroupState(e.bob.g).Extensions...)
		if r.byte()%2 == 0 {
			exts = append(exts, ext(uint16(r.byte()%8), r.bytes(6)...))
		}
		return pGCE(exts...)
	case 5:
		return pReInit(wire.ProtocolVersion(r.byte() % 3))
	case 6:
		ei, err := mls.ExternalInitFor(e.alice.g)
		if err != nil || r.byte()%2 == 0 {
			return &wire.Proposal{ProposalType: wire.ProposalTypeExternalInit, ExternalInit: &wire.ExternalInit{KEMOutput: r.bytes(40)}}
		}
		return ei
	case 7:
		return &wire.Proposal{ProposalType: wire.ProposalType(0xf000 | uint16(r.byte())), Unknown: r.bytes(8)}
	default:
		return pAdd(mls.WireKeyPackage(e.daveKP))
	}
}

// receivers are the honest parties a hostile message goes to.
func (r *fuzzRun) receivers() []*client { return []*client{r.e.alice, r.e.carol} }

// deliverHostile sends msg to alice, carol and the PublicGroup, and checks
// the invariants. It reports whether a commit was accepted (the run then
// ends: the forger has no way to follow its own forged commit).
func (r *fuzzRun) deliverHostile(what string, msg []byte, private bool) bool {
	t := r.t
	var staged []*mls.StagedCommit
	var refusals []error
	accepted := 0
	for _, c := range r.receivers() {
		before, ok := r.fp[c]
		if !ok {
			before = fuzzFingerprint(t, c.g)
		}
		delete(r.fp, c)
		var res *mls.Received
		var err error
		noPanic(t, what, func() { res, err = c.g.Process(msg) })
		if err != nil {
			typed(t, what+" at "+c.name, err)
			refusals = append(refusals, err)
			after := fuzzFingerprint(t, c.g)
			if after != before {
				if !private {
					t.Fatalf("%s at %s changed the group:\n%s", what, c.name, diffLines(before, after))
				}
				// Refused after it decrypted: its key is used up
				// (package documentation), nothing else changes. Using
				// it may slide the window past keys already used (u to
				// o: unavailable either way).
				if burned(before, after) > 1 {
					t.Fatalf("%s at %s changed the group beyond one key:\n%s", what, c.name, diffLines(before, after))
				}
			}
			// Refusals are the common case: keep the fingerprint for the
			// next step instead of computing it again.
			r.fp[c] = after
			continue
		}
		accepted++
		if res.Commit != nil {
			staged = append(staged, res.Commit)
		}
	}
	pgBefore := mls.PublicFingerprint(r.pg)
	var pres *mls.Received
	var perr error
	noPanic(t, what+" at the public group", func() { pres, perr = r.pg.Process(msg) })
	if perr != nil {
		if after := mls.PublicFingerprint(r.pg); after != pgBefore {
			t.Fatalf("%s: refused by the public group, which changed", what)
		}
	}
	if len(staged) == 0 {
		if accepted > 0 {
			// A proposal the honest members cached: the forger sees the
			// broadcast too. If it cannot cache it (its own forgery comes
			// back as its own message), later commits referring to it
			// would be unknown to it: the run ends there.
			if _, err := r.e.bob.g.Process(msg); err != nil {
				return true
			}
		}
		return false
	}
	if len(staged) != len(r.receivers()) && removedOnly(staged, refusals) {
		// Only members the commit removes accepted it, and the others
		// refused it for what a removed member cannot check: it derives
		// no new epoch, so neither the confirmation tag nor the PSKs'
		// contribution to the key schedule (RFC 9420, Section 12.4.2;
		// seed 7fd6927a9dc0dc0b: a resumption PSK of an epoch carol was
		// not in, which the forger cannot compute either). The removed
		// member leaves, the rest stay in step; the run ends.
		return true
	}
	if len(staged) != len(r.receivers()) {
		t.Fatalf("%s: a commit accepted by %d of %d honest members: the group forks", what, len(staged), len(r.receivers()))
	}
	for i, c := range r.receivers() {
		if err := c.g.MergeStagedCommit(staged[i]); err != nil {
			t.Fatal(err)
		}
	}
	if r.e.alice.g.Active() && r.e.carol.g.Active() &&
		!bytes.Equal(r.e.alice.g.EpochAuthenticator(), r.e.carol.g.EpochAuthenticator()) {
		t.Fatalf("%s: accepted commit leaves alice and carol with different epoch authenticators", what)
	}
	if pres != nil && pres.Commit != nil {
		if err := r.pg.Merge(pres.Commit); err != nil {
			t.Fatal(err)
		}
		if c := r.e.carol; c.g.Active() && !bytes.Equal(r.pg.TreeHash(), c.g.TreeHash()) {
			t.Fatalf("%s: the public group's tree differs from the members'", what)
		}
	}
	var alive []*client
	for _, c := range r.receivers() {
		if c.g.Active() {
			alive = append(alive, c)
		}
	}
	checkAgree(t, alive)
	return true
}

// honestCommit: member i commits; everyone follows; they agree.
func (r *fuzzRun) honestCommit(i int) {
	t := r.t
	c := r.e.members[i]
	res, err := c.g.Commit(nil)
	if err != nil {
		// The cached proposals may include one the committer cannot use
		// (issue 12, finding 5); that is the committer's error only.
		typed(t, "honest commit", err)
		return
	}
	for _, o := range r.e.members {
		if o == c {
			continue
		}
		rc, err := o.g.Process(res.Commit)
		if errors.Is(err, mls.ErrMissingPSK) {
			// The commit carries a resumption PSK of an epoch before o
			// joined (proposed by bob or the external sender): by design
			// only the members of that epoch get the next key (RFC 9420,
			// Sections 8.4 and 8.6), so o cannot follow. Not a fork; the
			// run ends. (Seed d2d992366fd3d172; see docs/VALIDATION.md.)
			r.done = true
			return
		}
		if err != nil {
			t.Fatalf("%s refused %s's honest commit: %v", o.name, c.name, err)
		}
		if err := o.g.MergeStagedCommit(rc.Commit); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	if rp, err := r.pg.Process(res.Commit); err != nil {
		t.Fatalf("public group refused an honest commit: %v", err)
	} else if err := r.pg.Merge(rp.Commit); err != nil {
		t.Fatal(err)
	}
	var alive []*client
	for _, o := range r.e.members {
		if o.g.Active() {
			alive = append(alive, o)
		}
	}
	checkAgree(t, alive)
	if !bytes.Equal(r.pg.TreeHash(), c.g.TreeHash()) {
		t.Fatal("public group lost track after an honest commit")
	}
}

func (r *fuzzRun) step() bool {
	e := r.e
	for _, c := range e.members {
		if !c.g.Active() {
			return false // someone was removed: the cast is fixed
		}
	}
	op := r.byte()
	if r.done {
		return false
	}
	if k := op % 8; k == 0 || k >= 6 {
		clear(r.fp) // honest steps change every state
	}
	wf := wire.WireFormatPublicMessage
	if op&0x80 != 0 {
		wf = wire.WireFormatPrivateMessage
	}
	switch op % 8 {
	case 0: // an honest commit
		if !e.alice.g.Active() || !e.carol.g.Active() {
			return false
		}
		r.honestCommit(int(r.byte()%3) * 2 % 3) // alice or carol mostly; bob sometimes
		return e.bob.g.Active()
	case 1: // a hostile proposal from bob
		f := &mls.Forge{WireFormat: wf, Proposal: r.proposal()}
		if r.byte()%4 == 0 {
			f.Sender = member(r.leaf())
		}
		msg, err := mls.ForgeMessage(e.bob.g, f)
		if err != nil {
			return true
		}
		return !r.deliverHostile("forged proposal", msg, wf == wire.WireFormatPrivateMessage)
	case 2: // a hostile commit from bob
		n := int(r.byte() % 4)
		var props []wire.ProposalOrRef
		for range n {
			props = append(props, byValue(r.proposal())...)
		}
		cf := &mls.CommitForge{Proposals: props, Path: r.byte()%4 != 0}
		switch r.byte() % 6 {
		case 1:
			cf.EditPath = func(p *wire.UpdatePath) {
				if len(p.Nodes) > 0 {
					p.Nodes[0].EncryptionKey = mls.LeafOf(e.alice.g, 0).EncryptionKey
				}
			}
		case 2:
			cf.EditPath = func(p *wire.UpdatePath) { p.LeafNode.ParentHash = r.bytes(32) }
		case 3:
			cf.EditPath = func(p *wire.UpdatePath) {
				if len(p.Nodes) > 0 {
					p.Nodes = p.Nodes[1:]
				}
			}
		}
		msg, err := mls.ForgeMessage(e.bob.g, &mls.Forge{WireFormat: wf, Commit: cf})
		if err != nil {
			return true
		}
		return !r.deliverHostile("forged commit", msg, wf == wire.WireFormatPrivateMessage)
	case 3: // an external sender's proposal
		msg, err := mls.ForgeMessage(e.bob.g, &mls.Forge{Sender: &wire.Sender{SenderType: wire.SenderTypeExternal,
			SenderIndex: uint32(r.byte() % 2)}, Signer: e.ext, Proposal: r.proposal()})
		if err != nil {
			return true
		}
		return !r.deliverHostile("external proposal", msg, false)
	case 4: // an outsider's external commit
		props := byValue(r.proposal())
		if ei, err := mls.ExternalInitFor(e.alice.g); err == nil && r.byte()%2 == 0 {
			props = append(byValue(ei), props...)
		}
		msg, err := mls.ForgeMessage(e.bob.g, &mls.Forge{Sender: newMemberC, Signer: e.dave.sig,
			Commit: &mls.CommitForge{Proposals: props, Path: r.byte()%8 != 0}})
		if err != nil {
			return true
		}
		return !r.deliverHostile("external commit", msg, false)
	case 5: // raw bytes from an outsider
		return !r.deliverHostile("raw bytes", r.bytes(255), false)
	case 6: // an honest proposal by carol
		if !e.carol.g.Active() {
			return false
		}
		var msg []byte
		var err error
		if r.byte()%2 == 0 {
			msg, err = e.carol.g.ProposeUpdate(nil, nil)
		} else {
			msg, err = e.carol.g.ProposeRemove(mls.LeafIndex(r.byte() % 4))
		}
		if err != nil {
			typed(r.t, "honest proposal", err)
			return true
		}
		for _, c := range []*client{e.alice, e.bob} {
			// The same proposal twice in one epoch (a deterministic
			// signature makes it the same bytes) is refused as a replay.
			if _, err := c.g.Process(msg); err != nil && !errors.Is(err, mls.ErrInvalidProposal) {
				r.t.Fatalf("%s refused carol's honest proposal: %v", c.name, err)
			}
		}
		if _, err := r.pg.Process(msg); err != nil && !errors.Is(err, mls.ErrUnsupported) && !errors.Is(err, mls.ErrInvalidProposal) {
			r.t.Fatalf("public group refused carol's honest proposal: %v", err)
		}
		return true
	default: // application messages between the honest members
		msg, err := e.alice.g.Encrypt(r.bytes(32), nil)
		if err != nil {
			return true // pending proposals: commit first
		}
		for _, c := range []*client{e.bob, e.carol} {
			if _, err := c.g.Process(msg); err != nil {
				r.t.Fatalf("%s cannot read alice: %v", c.name, err)
			}
		}
		return true
	}
}

// burned counts the keys that went from available to unavailable between
// two fingerprints, or returns 99 if anything else changed (other than a
// used key leaving the window).
func burned(before, after string) int {
	bl, al := strings.Split(before, "\n"), strings.Split(after, "\n")
	if len(bl) != len(al) {
		return 99
	}
	n := 0
	for i := range bl {
		if bl[i] == al[i] {
			continue
		}
		if len(bl[i]) != len(al[i]) || !strings.Contains(bl[i], " leaf ") {
			return 99
		}
		for j := range bl[i] {
			b, a := bl[i][j], al[i][j]
			switch {
			case b == a:
			case b == '+' && (a == 'u' || a == 'o'):
				n++
			case b == 'u' && a == 'o':
			default:
				return 99
			}
		}
	}
	return n
}

var allocMetric = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}

func heapAllocated() uint64 {
	metrics.Read(allocMetric)
	return allocMetric[0].Value.Uint64()
}

// checkTemplates fails if a run changed the start state it cloned (outside
// a campaign: it costs a direct fingerprint per member).
func checkTemplates(t *testing.T, s *fuzzStart) {
	if fuzzing() {
		return
	}
	for i, g := range s.members {
		if fp := fingerprint(t, g); fp != s.fp[i] {
			t.Fatalf("a run changed the start state of member %d:\n%s", i, diffLines(s.fp[i], fp))
		}
	}
}

// FuzzStatefulGroup runs programs of at most 16 steps.
func FuzzStatefulGroup(f *testing.F) {
	for _, seed := range [][]byte{
		{0, 0},                   // honest commit
		{1, 0, 2, 0},             // forged Remove of a blank leaf
		{1, 0, 6},                // forged aliased Remove
		{2, 1, 0, 1, 0},          // forged commit removing bob
		{2, 2, 8, 2, 0, 1, 1, 1}, // forged commit with Add and a bad path
		{3, 1, 0, 3},             // external sender removes carol
		{4, 0, 0, 0},             // external commit
		{5, 3, 0, 1, 2},          // raw bytes
		{6, 0, 0, 0, 7},          // honest update, commit, message
		{0x81, 0, 2, 0},          // private forged proposal
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 512 {
			return
		}
		start := heapAllocated()
		runStatefulGroup(t, in)
		// Cloning the start state and the crypto of each step cost a fixed
		// amount; beyond that the work is bounded by the input.
		if got, limit := heapAllocated()-start, uint64(32<<20)+uint64(len(in))<<14; got > limit {
			t.Fatalf("a %d-byte program allocated %d bytes (limit %d)", len(in), got, limit)
		}
	})
}

// runStatefulGroup runs one program and returns the run.
func runStatefulGroup(t *testing.T, in []byte) *fuzzRun {
	// Every run draws the same randomness, so a crash replays: the start
	// state (built by the first run in the process) from one stream, the
	// run from another, started afresh after it.
	seeded(t, 12)
	s := fuzzStartState(t)
	seeded(t, 12)
	mls.ResetForged()
	r := newFuzzRun(t, s, in)
	for i := 0; i < 16 && r.step(); i++ {
	}
	checkTemplates(t, s)
	return r
}

// TestFuzzRunsRepeat: a program ends in the same states whatever ran
// before it in the process, so a crash found in a campaign replays alone.
func TestFuzzRunsRepeat(t *testing.T) {
	// Honest commits and messages, which draw on Config.Rand.
	prog := []byte{0, 0, 6, 0, 0, 1, 7, 3, 1, 2, 0, 2, 0, 0, 1}
	end := func(r *fuzzRun) string {
		var b strings.Builder
		for _, c := range r.e.members {
			b.WriteString(fingerprint(t, c.g))
		}
		return b.String() + mls.PublicFingerprint(r.pg)
	}
	var first string
	t.Run("first", func(t *testing.T) { first = end(runStatefulGroup(t, prog)) })
	t.Run("other", func(t *testing.T) { runStatefulGroup(t, []byte{0, 2, 0, 1, 6, 1, 0, 0}) })
	t.Run("again", func(t *testing.T) {
		if again := end(runStatefulGroup(t, prog)); again != first {
			t.Fatalf("the same program ended differently:\n%s", diffLines(first, again))
		}
	})
}

var _ = fmt.Sprint

// removedOnly reports whether every accepted commit removes its receiver
// and every refusal is for a missing PSK or a confirmation tag: the checks a
// removed member cannot make.
func removedOnly(staged []*mls.StagedCommit, refusals []error) bool {
	for _, sc := range staged {
		if !sc.SelfRemoved {
			return false
		}
	}
	for _, err := range refusals {
		if !errors.Is(err, mls.ErrMissingPSK) && !errors.Is(err, mls.ErrInvalidConfirmationTag) {
			return false
		}
	}
	return len(refusals) > 0
}
