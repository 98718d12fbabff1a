package mls_test

import (
	"bytes"
	"testing"

	"github.com/mlskit/mlskit/internal/wire"
	"github.com/mlskit/mlskit/mls"
)

// FuzzStatefulPrivate (issue 12): the fuzz input is a program of
// application traffic on the catalogue group: honest messages delivered in
// any order, again (replays), after a skip of many generations or after an
// epoch change; bob's hostile PrivateMessages (a SenderData naming another,
// blank or aliased leaf, non-zero padding, another epoch or group); and
// honest messages with a byte changed or cut short. After each step:
// no panic; an honest message delivered for the first time in its epoch is
// accepted exactly when its key was still available (KeyUsable before),
// with the text sent; every replayed, altered or hostile message that is
// refused leaves the receiver's fingerprint as it was but for at most the
// one key it used up; every altered message is refused. At the end every
// member can still send to every other, and the run allocated in
// proportion to its input.
//
//	go test ./mls -run '^$' -fuzz '^FuzzStatefulPrivate$' -fuzztime 60s

// sentMsg is an honest application message not yet forgotten.
type sentMsg struct {
	from      *client
	msg, text []byte
	epoch     uint64
	delivered map[*client]bool
}

type privRun struct {
	*fuzzRun
	queue []*sentMsg
}

func (r *privRun) member() *client { return r.e.members[int(r.byte())%len(r.e.members)] }

// other picks a member other than c.
func (r *privRun) other(c *client) *client {
	var others []*client
	for _, m := range r.e.members {
		if m != c {
			others = append(others, m)
		}
	}
	return others[int(r.byte())%len(others)]
}

func (r *privRun) send(from *client) *sentMsg {
	text := r.bytes(24)
	msg, err := from.g.Encrypt(text, r.bytes(4))
	if err != nil {
		r.t.Fatalf("%s cannot send: %v", from.name, err)
	}
	m := &sentMsg{from: from, msg: msg, text: text, epoch: from.g.Epoch(), delivered: map[*client]bool{}}
	if len(r.queue) < 32 {
		r.queue = append(r.queue, m)
	}
	return m
}

// refused checks a refusal at c: typed, and c's fingerprint as before but
// for at most one key used up.
func (r *privRun) refused(what string, c *client, before string, err error) {
	t := r.t
	typed(t, what+" at "+c.name, err)
	after := fuzzFingerprint(t, c.g)
	if after != before && burned(before, after) > 1 {
		t.Fatalf("%s at %s changed the group beyond one key:\n%s", what, c.name, diffLines(before, after))
	}
}

// deliver hands an honest message to c and checks the outcome.
func (r *privRun) deliver(m *sentMsg, c *client) {
	t := r.t
	before := fuzzFingerprint(t, c.g)
	current := m.epoch == c.g.Epoch()
	usable := false
	if current {
		leaf, app, gen, ok := mls.SenderDataOf(c.g, m.msg)
		if !ok || !app || leaf != m.from.g.LeafIndex() {
			t.Fatalf("an honest message's sender data: ok=%v application=%v leaf=%d", ok, app, leaf)
		}
		usable = mls.KeyUsable(c.g, leaf, app, gen)
	}
	var res *mls.Received
	var err error
	noPanic(t, "honest message", func() { res, err = c.g.Process(m.msg) })
	switch {
	case err == nil:
		if m.delivered[c] {
			t.Fatalf("%s accepted a replay", c.name)
		}
		if current && !usable {
			t.Fatalf("%s accepted a message whose key was no longer available", c.name)
		}
		if !bytes.Equal(res.Application, m.text) {
			t.Fatalf("%s read %x, %s sent %x", c.name, res.Application, m.from.name, m.text)
		}
		m.delivered[c] = true
	case current && usable && !m.delivered[c]:
		t.Fatalf("%s refused an honest message whose key was available: %v", c.name, err)
	default:
		// A replay, or a key no longer available: nothing is used up.
		typed(t, "honest message at "+c.name, err)
		if after := fuzzFingerprint(t, c.g); after != before {
			t.Fatalf("refusing a replay or an unavailable key changed %s:\n%s", c.name, diffLines(before, after))
		}
	}
}

// hostile has bob forge an application PrivateMessage with one framing
// fault, or none, and sends it to alice and carol.
func (r *privRun) hostile() {
	t, e := r.t, r.e
	f := &mls.Forge{WireFormat: wire.WireFormatPrivateMessage, Application: r.bytes(24), AuthenticatedData: r.bytes(4)}
	fault := r.byte() % 8
	switch fault {
	case 1:
		f.SenderDataLeaf = u32(r.leaf())
	case 2:
		f.Padding = append(r.bytes(8), 1+r.byte()%255)
	case 3:
		f.Padding = make([]byte, int(r.byte()))
	case 4:
		f.Epoch = u64(e.bob.g.Epoch() + 1 + uint64(r.byte()%2))
	case 5:
		f.GroupID = r.bytes(16)
	}
	msg, err := mls.ForgeMessage(e.bob.g, f)
	if err != nil {
		return
	}
	genuine := fault == 0 || fault == 3 || fault >= 6 ||
		(fault == 1 && *f.SenderDataLeaf == uint32(e.bob.g.LeafIndex())) ||
		(fault == 5 && bytes.Equal(f.GroupID, e.bob.g.GroupID()))
	for _, c := range []*client{e.alice, e.carol} {
		before := fuzzFingerprint(t, c.g)
		var res *mls.Received
		var err error
		noPanic(t, "hostile message", func() { res, err = c.g.Process(msg) })
		if err != nil {
			if genuine {
				t.Fatalf("%s refused a well-formed message of bob: %v", c.name, err)
			}
			r.refused("hostile message", c, before, err)
			continue
		}
		if !genuine {
			t.Fatalf("%s accepted a message with framing fault %d", c.name, fault)
		}
		if !bytes.Equal(res.Application, f.Application) {
			t.Fatalf("%s read %x, bob sent %x", c.name, res.Application, f.Application)
		}
	}
}

// altered delivers a queued message with one byte changed or cut short.
func (r *privRun) altered() {
	if len(r.queue) == 0 {
		return
	}
	m := r.queue[int(r.byte())%len(r.queue)]
	c := r.other(m.from)
	msg := bytes.Clone(m.msg)
	pos := int(r.byte())<<8 | int(r.byte())
	if r.byte()%4 == 0 {
		msg = msg[:pos%len(msg)]
	} else {
		msg[pos%len(msg)] ^= 1 << (r.byte() % 8)
	}
	before := fuzzFingerprint(r.t, c.g)
	var err error
	noPanic(r.t, "altered message", func() { _, err = c.g.Process(msg) })
	if err == nil {
		r.t.Fatalf("%s accepted an altered message", c.name)
	}
	r.refused("altered message", c, before, err)
}

func (r *privRun) privStep() bool {
	op := r.byte()
	if r.done {
		return false
	}
	switch op % 8 {
	case 0, 1: // an honest message, kept for later delivery
		r.send(r.member())
	case 2, 3: // deliver a queued message (again, perhaps)
		if len(r.queue) > 0 {
			m := r.queue[int(r.byte())%len(r.queue)]
			r.deliver(m, r.other(m.from))
		}
	case 4: // a sender skips many generations: only the last is kept
		from := r.member()
		for range int(r.byte() % 16) {
			if _, err := from.g.Encrypt(nil, nil); err != nil {
				r.t.Fatal(err)
			}
		}
		r.send(from)
	case 5:
		r.hostile()
	case 6:
		r.altered()
	default: // an epoch change: queued messages become old
		r.honestCommit([]int{0, 2}[r.byte()%2])
		for _, c := range r.e.members {
			if !c.g.Active() {
				return false
			}
		}
	}
	return true
}

// FuzzStatefulPrivate runs programs of at most 24 steps.
func FuzzStatefulPrivate(f *testing.F) {
	for _, seed := range [][]byte{
		{0, 0, 1, 1, 2, 0, 1},             // send, deliver
		{0, 0, 1, 0, 1, 2, 1, 1, 2, 0, 1}, // two messages, delivered out of order
		{0, 0, 1, 2, 0, 1, 2, 0, 1},       // a replay
		{4, 0, 12, 1, 0, 2, 0, 1},         // a skip of 12 generations
		{5, 1, 0, 0, 1, 3},                // SenderData naming carol
		{5, 1, 0, 0, 2, 1, 9},             // non-zero padding
		{0, 0, 1, 6, 0, 1, 0, 0, 1},       // a flipped byte
		{0, 0, 1, 7, 0, 2, 0, 1},          // an epoch change, then the old message
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 512 {
			return
		}
		seeded(t, 12) // the start state's stream (runStatefulGroup)
		s := fuzzStartState(t)
		seeded(t, 13)
		mls.ResetForged()
		start := heapAllocated()
		r := &privRun{fuzzRun: newFuzzRun(t, s, in)}
		for i := 0; i < 24 && r.privStep(); i++ {
		}
		checkTemplates(t, s)
		checkAgree(t, r.e.members)
		if got, limit := heapAllocated()-start, uint64(32<<20)+uint64(len(in))<<14; got > limit {
			t.Fatalf("a %d-byte program allocated %d bytes (limit %d)", len(in), got, limit)
		}
	})
}

// TestFuzzHooks: the memoised key availability agrees with the direct one
// as ratchets move (sent, received out of order, skipped, replayed), and a
// cloned PublicGroup is independent of the one it was cloned from.
func TestFuzzHooks(t *testing.T) {
	seeded(t, 14)
	e := newAdvEnv(t, "fuzz hooks")
	same := func() {
		t.Helper()
		for _, c := range e.members {
			if m, d := mls.KeyAvailabilityMemo(c.g, 12), mls.KeyAvailability(c.g, 12); m != d {
				t.Fatalf("%s: memoised availability differs:\n%s", c.name, diffLines(d, m))
			}
		}
	}
	same()
	var queued [][]byte
	for i := range 9 {
		msg, err := e.alice.g.Encrypt([]byte{byte(i)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		queued = append(queued, msg)
		same()
	}
	for _, i := range []int{8, 2, 7, 7, 0, 3} {
		_, _ = e.carol.g.Process(queued[i])
		same()
	}
	clone, err := mls.ClonePublicGroup(e.pg, e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if mls.PublicFingerprint(clone) != mls.PublicFingerprint(e.pg) {
		t.Fatal("a cloned PublicGroup differs from its original")
	}
	before := mls.PublicFingerprint(e.pg)
	res := commit(t, e.carol, nil, e.members)
	rc, err := clone.Process(res.Commit)
	if err != nil {
		t.Fatal(err)
	}
	if err := clone.Merge(rc.Commit); err != nil {
		t.Fatal(err)
	}
	if mls.PublicFingerprint(e.pg) != before {
		t.Fatal("merging a commit into the clone changed the original PublicGroup")
	}
	if !bytes.Equal(clone.TreeHash(), e.alice.g.TreeHash()) {
		t.Fatal("the clone does not follow the group")
	}
	e.follow(t, res)
	same()

	// A run on a cloned Group leaves the group cloned as it was.
	f := newAdvEnv(t, "fuzz hooks clone")
	template := mls.CloneGroup(f.alice.g, f.cfg)
	want := fingerprint(t, template)
	if got := fingerprint(t, f.alice.g); got != want {
		t.Fatalf("a clone differs from its original:\n%s", diffLines(got, want))
	}
	f.alice.g = mls.CloneGroup(template, f.cfg)
	commit(t, f.carol, nil, f.members)
	commit(t, f.alice, nil, f.members)
	checkAgree(t, f.members)
	if got := fingerprint(t, template); got != want {
		t.Fatalf("a run on a clone changed the template:\n%s", diffLines(want, got))
	}
	f.alice.g = mls.CloneGroup(template, f.cfg)
	if got := fingerprint(t, f.alice.g); got != want {
		t.Fatal("a second clone differs from the template")
	}
}
