package framing

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"strings"
	"testing"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/keyschedule"
	"github.com/mlskit/mlskit/internal/secrettree"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/treemath"
	"github.com/mlskit/mlskit/internal/wire"
)

// testGroup is a four-member group in one epoch, with each member's own
// view (its own secret tree) so that senders and receivers do not share
// ratchets.
type testGroup struct {
	t          testing.TB
	s          *suite.Suite
	rand       io.Reader
	ctx        *wire.GroupContext
	signers    []suite.Signer
	pubs       [][]byte
	encSecret  keyschedule.Secret
	sdSecret   keyschedule.Secret
	membership keyschedule.Secret
}

const testLeaves = 4

func newTestGroup(t testing.TB, id suite.ID) *testGroup {
	t.Helper()
	s, err := suite.Lookup(id)
	if err != nil {
		t.Fatal(err)
	}
	rnd := mrand.NewChaCha8([32]byte{byte(id), 'f', 'r', 'a', 'm', 'e'})
	secret := func() keyschedule.Secret {
		b := make([]byte, s.HashSize())
		rnd.Read(b)
		return b
	}
	g := &testGroup{
		t: t, s: s, rand: rnd,
		ctx: &wire.GroupContext{
			Version:                 wire.ProtocolVersionMLS10,
			CipherSuite:             wire.CipherSuite(id),
			GroupID:                 []byte("test group"),
			Epoch:                   7,
			TreeHash:                secret(),
			ConfirmedTranscriptHash: secret(),
		},
		encSecret:  secret(),
		sdSecret:   secret(),
		membership: secret(),
	}
	for range testLeaves {
		priv, _, err := s.GenerateSignatureKey(rnd)
		if err != nil {
			t.Fatal(err)
		}
		sg, err := s.NewSigner(priv)
		if err != nil {
			t.Fatal(err)
		}
		g.signers = append(g.signers, sg)
		g.pubs = append(g.pubs, sg.PublicKey())
	}
	return g
}

// epoch returns a member's fresh view of the epoch.
func (g *testGroup) epoch() *Epoch {
	g.t.Helper()
	tree, err := secrettree.New(g.s, g.encSecret, testLeaves, secrettree.Config{})
	if err != nil {
		g.t.Fatal(err)
	}
	return &Epoch{Suite: g.s, Context: g.ctx, MembershipKey: g.membership, SenderDataSecret: g.sdSecret, Tree: tree}
}

// members is the MemberKeys lookup of the group: leaves 0..3, with leaf 2
// blank.
func (g *testGroup) members(leaf uint32) ([]byte, bool) {
	if leaf >= testLeaves || leaf == 2 {
		return nil, false
	}
	return g.pubs[leaf], true
}

func (g *testGroup) content(leaf uint32, ct wire.ContentType) *wire.FramedContent {
	c := &wire.FramedContent{
		GroupID:           g.ctx.GroupID,
		Epoch:             g.ctx.Epoch,
		Sender:            wire.Sender{SenderType: wire.SenderTypeMember, LeafIndex: leaf},
		AuthenticatedData: []byte("aad"),
		ContentType:       ct,
	}
	switch ct {
	case wire.ContentTypeApplication:
		c.ApplicationData = bytes.Repeat([]byte("hello "), 17)[:100]
	case wire.ContentTypeProposal:
		c.Proposal = &wire.Proposal{ProposalType: wire.ProposalTypeRemove, Remove: &wire.Remove{Removed: 3}}
	case wire.ContentTypeCommit:
		c.Commit = &wire.Commit{Proposals: []wire.ProposalOrRef{
			{Type: wire.ProposalOrRefTypeReference, Reference: bytes.Repeat([]byte{0xab}, g.s.HashSize())},
		}}
	}
	return c
}

// signed signs content for wf, adding a confirmation tag to commits.
func (g *testGroup) signed(c *wire.FramedContent, wf wire.WireFormat) *wire.AuthenticatedContent {
	g.t.Helper()
	var sg suite.Signer
	if c.Sender.SenderType == wire.SenderTypeMember {
		sg = g.signers[c.Sender.LeafIndex]
	} else {
		sg = g.signers[3]
	}
	ac, err := Sign(sg, wf, c, g.ctx)
	if err != nil {
		g.t.Fatal(err)
	}
	if c.ContentType == wire.ContentTypeCommit {
		ac.Auth.ConfirmationTag = g.s.MAC([]byte("confirmation key"), g.ctx.ConfirmedTranscriptHash)
	}
	return ac
}

func (g *testGroup) protectPrivate(e *Epoch, leaf uint32, ct wire.ContentType, padding int) *wire.PrivateMessage {
	g.t.Helper()
	pm, err := e.ProtectPrivate(g.signed(g.content(leaf, ct), wire.WireFormatPrivateMessage), padding, g.rand)
	if err != nil {
		g.t.Fatal(err)
	}
	return pm
}

func encodeMsg(t testing.TB, m *wire.MLSMessage) []byte {
	t.Helper()
	m.Version = wire.ProtocolVersionMLS10
	switch {
	case m.PublicMessage != nil:
		m.WireFormat = wire.WireFormatPublicMessage
	case m.PrivateMessage != nil:
		m.WireFormat = wire.WireFormatPrivateMessage
	}
	b, err := codec.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sameContent(t testing.TB, got *wire.AuthenticatedContent, want *wire.FramedContent) {
	t.Helper()
	g, err := codec.Marshal(&got.Content)
	if err != nil {
		t.Fatal(err)
	}
	w, err := codec.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g, w) {
		t.Fatalf("content differs:\n got %x\nwant %x", g, w)
	}
}

// typed reports whether err is one of the typed errors a receiver may see.
func typed(err error) bool {
	var ve *ValidationError
	var de *wire.DecodeError
	return errors.As(err, &ve) || errors.As(err, &de)
}

var contentTypes = []wire.ContentType{wire.ContentTypeApplication, wire.ContentTypeProposal, wire.ContentTypeCommit}

func TestPrivateRoundTrip(t *testing.T) {
	for _, id := range suite.Supported() {
		t.Run(id.String(), func(t *testing.T) {
			g := newTestGroup(t, id)
			send, recv := g.epoch(), g.epoch()
			for _, ct := range contentTypes {
				for _, padding := range []int{0, 1, 37} {
					want := g.content(1, ct)
					pm := g.protectPrivate(send, 1, ct, padding)
					msg, err := wire.UnmarshalMLSMessage(encodeMsg(t, &wire.MLSMessage{PrivateMessage: pm}))
					if err != nil {
						t.Fatal(err)
					}
					ac, err := recv.UnprotectPrivate(msg.PrivateMessage, g.members)
					if err != nil {
						t.Fatalf("%v padding %d: %v", ct, padding, err)
					}
					if ac.WireFormat != wire.WireFormatPrivateMessage {
						t.Fatalf("wire format %v", ac.WireFormat)
					}
					sameContent(t, ac, want)
					if ct == wire.ContentTypeCommit && len(ac.Auth.ConfirmationTag) != g.s.HashSize() {
						t.Fatalf("confirmation tag not carried")
					}
				}
			}
		})
	}
}

// The reuse guard must actually change the nonce: two messages of the
// same generation from two trees differ, and the guard is what the
// sender data carries.
func TestReuseGuard(t *testing.T) {
	g := newTestGroup(t, suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	e := g.epoch()
	ac := g.signed(g.content(0, wire.ContentTypeApplication), wire.WireFormatPrivateMessage)
	_, key, nonce, err := g.epoch().Tree.Next(0, secrettree.Application)
	if err != nil {
		t.Fatal(err)
	}
	plainNonce := bytes.Clone(nonce)
	guard := [4]byte{1, 2, 3, 4}
	pm := sealPrivateForTest(t, e, ac, key, nonce, guard)
	for i := range plainNonce {
		want := plainNonce[i]
		if i < 4 {
			want ^= guard[i]
		}
		if nonce[i] != want {
			t.Fatalf("nonce byte %d: reuse guard not XORed into the first four bytes", i)
		}
	}
	// Decrypting with the unguarded nonce must fail.
	aad, _ := codec.Marshal(&wire.PrivateContentAAD{GroupID: pm.GroupID, Epoch: pm.Epoch, ContentType: pm.ContentType, AuthenticatedData: pm.AuthenticatedData})
	if _, err := g.s.Open(key, plainNonce, aad, pm.Ciphertext); err == nil {
		t.Fatal("content decrypts without the reuse guard")
	}
}

func TestPublicRoundTrip(t *testing.T) {
	for _, id := range suite.Supported() {
		t.Run(id.String(), func(t *testing.T) {
			g := newTestGroup(t, id)
			e := g.epoch()
			for _, ct := range []wire.ContentType{wire.ContentTypeProposal, wire.ContentTypeCommit} {
				want := g.content(0, ct)
				pub, err := e.ProtectPublic(g.signed(want, wire.WireFormatPublicMessage))
				if err != nil {
					t.Fatal(err)
				}
				if len(pub.MembershipTag) != g.s.HashSize() {
					t.Fatalf("membership tag of %d bytes", len(pub.MembershipTag))
				}
				enc := encodeMsg(t, &wire.MLSMessage{PublicMessage: pub})
				msg, err := wire.UnmarshalMLSMessage(enc)
				if err != nil {
					t.Fatal(err)
				}
				ac, err := e.UnprotectPublic(msg.PublicMessage, g.members)
				if err != nil {
					t.Fatalf("%v: %v", ct, err)
				}
				sameContent(t, ac, want)
				// Raw is the received AuthenticatedContent: wire format then
				// the message minus the membership tag.
				tagLen := codec.VarintLen(uint64(len(pub.MembershipTag))) + len(pub.MembershipTag)
				body := enc[4 : len(enc)-tagLen]
				if !bytes.Equal(ac.Raw(), append([]byte{0, 1}, body...)) {
					t.Fatal("AuthenticatedContent.Raw is not the received bytes")
				}
			}
		})
	}
}

func TestApplicationNotPublic(t *testing.T) {
	g := newTestGroup(t, suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	e := g.epoch()
	ac := g.signed(g.content(0, wire.ContentTypeApplication), wire.WireFormatPublicMessage)
	if _, err := e.ProtectPublic(ac); !errors.Is(err, ErrWrongWireFormat) {
		t.Fatalf("ProtectPublic(application) = %v, want ErrWrongWireFormat", err)
	}
	pm := &wire.PublicMessage{Content: ac.Content, Auth: ac.Auth}
	pm.MembershipTag, _ = e.membershipTag(ac)
	if _, err := e.UnprotectPublic(pm, g.members); !errors.Is(err, ErrWrongWireFormat) {
		t.Fatalf("UnprotectPublic(application) = %v, want ErrWrongWireFormat", err)
	}
}

// Every single-bit change of a protected message must fail, and with a
// typed error.
func TestPrivateBitFlips(t *testing.T) {
	g := newTestGroup(t, suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	for _, ct := range contentTypes {
		enc := encodeMsg(t, &wire.MLSMessage{PrivateMessage: g.protectPrivate(g.epoch(), 1, ct, 3)})
		for i := range len(enc) * 8 {
			b := bytes.Clone(enc)
			b[i/8] ^= 1 << (i % 8)
			msg, err := wire.UnmarshalMLSMessage(b)
			if err == nil {
				if msg.PrivateMessage == nil {
					continue // the flip changed the wire format; not a PrivateMessage any more
				}
				_, err = g.epoch().UnprotectPrivate(msg.PrivateMessage, g.members)
			}
			if err == nil {
				t.Fatalf("%v: flipping bit %d went unnoticed", ct, i)
			}
			if !typed(err) {
				t.Fatalf("%v: flipping bit %d: untyped error %v", ct, i, err)
			}
		}
	}
}

func TestPublicBitFlips(t *testing.T) {
	g := newTestGroup(t, suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	e := g.epoch()
	msgs := []*wire.FramedContent{g.content(0, wire.ContentTypeProposal), g.content(1, wire.ContentTypeCommit)}
	// A non-member sender has no membership tag: the signature alone must
	// catch every flip.
	add := g.newMemberAdd()
	msgs = append(msgs, add)
	for _, c := range msgs {
		pub, err := e.ProtectPublic(g.signed(c, wire.WireFormatPublicMessage))
		if err != nil {
			t.Fatal(err)
		}
		enc := encodeMsg(t, &wire.MLSMessage{PublicMessage: pub})
		for i := range len(enc) * 8 {
			b := bytes.Clone(enc)
			b[i/8] ^= 1 << (i % 8)
			msg, err := wire.UnmarshalMLSMessage(b)
			if err == nil {
				if msg.PublicMessage == nil {
					continue
				}
				_, err = e.UnprotectPublic(msg.PublicMessage, g.members)
			}
			if err == nil {
				t.Fatalf("%v from %v: flipping bit %d went unnoticed", c.ContentType, c.Sender.SenderType, i)
			}
			if !typed(err) {
				t.Fatalf("%v: flipping bit %d: untyped error %v", c.ContentType, i, err)
			}
		}
	}
}

// newMemberAdd is a new_member_proposal Add whose KeyPackage's signature
// key is member 3's (Sign uses signer 3 for non-member senders).
func (g *testGroup) newMemberAdd() *wire.FramedContent {
	kp := wire.KeyPackage{
		Version: wire.ProtocolVersionMLS10, CipherSuite: g.ctx.CipherSuite, InitKey: []byte("init key"),
		LeafNode: wire.LeafNode{
			EncryptionKey: []byte("enc key"), SignatureKey: g.pubs[3],
			Credential:     wire.Credential{CredentialType: wire.CredentialTypeBasic, Identity: []byte("joiner")},
			LeafNodeSource: wire.LeafNodeSourceKeyPackage, Signature: []byte("sig"),
		},
		Signature: []byte("sig"),
	}
	return &wire.FramedContent{
		GroupID: g.ctx.GroupID, Epoch: g.ctx.Epoch,
		Sender:      wire.Sender{SenderType: wire.SenderTypeNewMemberProposal},
		ContentType: wire.ContentTypeProposal,
		Proposal:    &wire.Proposal{ProposalType: wire.ProposalTypeAdd, Add: &wire.Add{KeyPackage: kp}},
	}
}

func TestWrongGroupAndEpoch(t *testing.T) {
	g := newTestGroup(t, suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	pm := g.protectPrivate(g.epoch(), 0, wire.ContentTypeApplication, 0)
	pub, err := g.epoch().ProtectPublic(g.signed(g.content(0, wire.ContentTypeProposal), wire.WireFormatPublicMessage))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change func(*wire.GroupContext)
		want   error
	}{
		{"epoch+1", func(c *wire.GroupContext) { c.Epoch++ }, ErrWrongEpoch},
		{"epoch-1", func(c *wire.GroupContext) { c.Epoch-- }, ErrWrongEpoch},
		{"group", func(c *wire.GroupContext) { c.GroupID = []byte("other group") }, ErrWrongGroup},
	} {
		e := g.epoch()
		ctx := *g.ctx
		tc.change(&ctx)
		e.Context = &ctx
		if _, err := e.UnprotectPrivate(pm, g.members); !errors.Is(err, tc.want) {
			t.Errorf("%s: private: got %v, want %v", tc.name, err, tc.want)
		}
		if _, err := e.UnprotectPublic(pub, g.members); !errors.Is(err, tc.want) {
			t.Errorf("%s: public: got %v, want %v", tc.name, err, tc.want)
		}
	}
	// A receiver in the right epoch but a different GroupContext (say, a
	// forked tree hash) rejects the signature.
	e := g.epoch()
	ctx := *g.ctx
	ctx.TreeHash = []byte("forked")
	e.Context = &ctx
	if _, err := e.UnprotectPrivate(pm, g.members); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("other GroupContext: got %v, want ErrInvalidSignature", err)
	}
	if _, err := e.UnprotectPublic(pub, g.members); !errors.Is(err, ErrInvalidMembershipTag) {
		t.Errorf("other GroupContext, public: got %v, want ErrInvalidMembershipTag", err)
	}
}

func TestTruncated(t *testing.T) {
	g := newTestGroup(t, suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	pm := g.protectPrivate(g.epoch(), 1, wire.ContentTypeCommit, 0)
	pub, err := g.epoch().ProtectPublic(g.signed(g.content(1, wire.ContentTypeCommit), wire.WireFormatPublicMessage))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*wire.MLSMessage{{PrivateMessage: pm}, {PublicMessage: pub}} {
		enc := encodeMsg(t, m)
		for n := range len(enc) {
			if _, err := wire.UnmarshalMLSMessage(enc[:n]); !errors.Is(err, codec.ErrMalformed) {
				t.Fatalf("%v prefix of %d/%d bytes: got %v, want ErrMalformed", m.WireFormat, n, len(enc), err)
			}
		}
	}
	// Truncated fields inside a well-formed PrivateMessage fail to decrypt,
	// down to empty ones (shorter than the ciphertext sample).
	for n := range len(pm.Ciphertext) {
		c := *pm
		c.Ciphertext = pm.Ciphertext[:n]
		if _, err := g.epoch().UnprotectPrivate(&c, g.members); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("ciphertext cut to %d bytes: got %v, want ErrDecrypt", n, err)
		}
	}
	for n := range len(pm.EncryptedSenderData) {
		c := *pm
		c.EncryptedSenderData = pm.EncryptedSenderData[:n]
		if _, err := g.epoch().UnprotectPrivate(&c, g.members); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("sender data cut to %d bytes: got %v, want ErrDecrypt", n, err)
		}
	}
	// A truncated membership tag is wrong, not a crash.
	p := *pub
	p.MembershipTag = pub.MembershipTag[:5]
	if _, err := g.epoch().UnprotectPublic(&p, g.members); !errors.Is(err, ErrInvalidMembershipTag) {
		t.Fatalf("short membership tag: got %v", err)
	}
}

func TestReplay(t *testing.T) {
	g := newTestGroup(t, suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	send, recv := g.epoch(), g.epoch()
	for _, ct := range contentTypes {
		// A replay arrives as the same bytes, decoded again
		// (UnprotectPrivate decrypts a decoded message in place).
		enc := encodeMsg(t, &wire.MLSMessage{PrivateMessage: g.protectPrivate(send, 1, ct, 0)})
		decode := func() *wire.PrivateMessage {
			m, err := wire.UnmarshalMLSMessage(enc)
			if err != nil {
				t.Fatal(err)
			}
			return m.PrivateMessage
		}
		if _, err := recv.UnprotectPrivate(decode(), g.members); err != nil {
			t.Fatal(err)
		}
		_, err := recv.UnprotectPrivate(decode(), g.members)
		if !errors.Is(err, ErrKeyReused) || !errors.Is(err, secrettree.ErrGenerationUsed) {
			t.Fatalf("%v replay: got %v, want ErrKeyReused", ct, err)
		}
	}
}

func TestGenerationWindow(t *testing.T) {
	g := newTestGroup(t, suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	send, recv := g.epoch(), g.epoch()
	var msgs []*wire.PrivateMessage
	for range 10 {
		msgs = append(msgs, g.protectPrivate(send, 0, wire.ContentTypeApplication, 0))
	}
	// Out of order inside the window works.
	for _, i := range []int{9, 7, 8} {
		if _, err := recv.UnprotectPrivate(msgs[i], g.members); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	// Generation 0 is more than the default 5 behind generation 9.
	if _, err := recv.UnprotectPrivate(msgs[0], g.members); !errors.Is(err, ErrGenerationTooOld) {
		t.Fatalf("old generation: got %v, want ErrGenerationTooOld", err)
	}
	// Far ahead: skip past the default forward distance of 1000.
	for range secrettree.DefaultMaxForwardDistance + 10 {
		if _, _, _, err := send.Tree.Next(0, secrettree.Application); err != nil {
			t.Fatal(err)
		}
	}
	far := g.protectPrivate(send, 0, wire.ContentTypeApplication, 0)
	if _, err := recv.UnprotectPrivate(far, g.members); !errors.Is(err, ErrGenerationTooFarAhead) {
		t.Fatalf("far generation: got %v, want ErrGenerationTooFarAhead", err)
	}
	// The handshake ratchet is separate: a proposal at generation 0 still works.
	if _, err := recv.UnprotectPrivate(g.protectPrivate(send, 0, wire.ContentTypeProposal, 0), g.members); err != nil {
		t.Fatal(err)
	}
}

func TestUnknownSender(t *testing.T) {
	g := newTestGroup(t, suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	pm := g.protectPrivate(g.epoch(), 1, wire.ContentTypeApplication, 0)
	none := func(uint32) ([]byte, bool) { return nil, false }
	recv := g.epoch()
	if _, err := recv.UnprotectPrivate(pm, none); !errors.Is(err, ErrUnknownSender) {
		t.Fatalf("blank leaf: got %v, want ErrUnknownSender", err)
	}
	// The key was not consumed by the refused message.
	if _, err := recv.UnprotectPrivate(pm, g.members); err != nil {
		t.Fatalf("after refusing an unknown sender: %v", err)
	}
	// A leaf beyond the secret tree, even if the lookup vouches for it.
	e := g.epoch()
	ac := g.signed(g.content(1, wire.ContentTypeApplication), wire.WireFormatPrivateMessage)
	ac.Content.Sender.LeafIndex = 9
	_, key, nonce, _ := g.epoch().Tree.Next(1, secrettree.Application)
	out := sealPrivateForTest(t, e, ac, key, nonce, [4]byte{})
	all := func(uint32) ([]byte, bool) { return g.pubs[1], true }
	if _, err := g.epoch().UnprotectPrivate(out, all); !errors.Is(err, ErrUnknownSender) {
		t.Fatalf("leaf out of the tree: got %v, want ErrUnknownSender", err)
	}
	// Public: a member sender at a blank leaf.
	pub, err := g.epoch().ProtectPublic(g.signed(g.content(1, wire.ContentTypeProposal), wire.WireFormatPublicMessage))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.epoch().UnprotectPublic(pub, none); !errors.Is(err, ErrUnknownSender) {
		t.Fatalf("public from blank leaf: got %v, want ErrUnknownSender", err)
	}
}

func TestWrongSignatureKey(t *testing.T) {
	g := newTestGroup(t, suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	wrong := func(uint32) ([]byte, bool) { return g.pubs[0], true }
	pm := g.protectPrivate(g.epoch(), 1, wire.ContentTypeApplication, 0)
	_, err := g.epoch().UnprotectPrivate(pm, wrong)
	if !errors.Is(err, ErrInvalidSignature) || !errors.Is(err, suite.ErrInvalidSignature) {
		t.Fatalf("private: got %v, want ErrInvalidSignature", err)
	}
	pub, err := g.epoch().ProtectPublic(g.signed(g.content(1, wire.ContentTypeProposal), wire.WireFormatPublicMessage))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.epoch().UnprotectPublic(pub, wrong); !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("public: got %v, want ErrInvalidSignature", err)
	}
	// A content signed for PublicMessage does not verify as a
	// PrivateMessage: the wire format is signed (Section 6.1).
	e := g.epoch()
	ac := g.signed(g.content(1, wire.ContentTypeApplication), wire.WireFormatPublicMessage)
	ac.WireFormat = wire.WireFormatPrivateMessage
	out, err := e.ProtectPrivate(ac, 0, g.rand)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.epoch().UnprotectPrivate(out, g.members); !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("wire format swapped: got %v, want ErrInvalidSignature", err)
	}
}

// sealWithPlaintext builds a PrivateMessage around an arbitrary plaintext,
// for inputs ProtectPrivate never produces.
func (g *testGroup) sealWithPlaintext(leaf uint32, ct wire.ContentType, plaintext []byte) *wire.PrivateMessage {
	g.t.Helper()
	kind, _ := secrettree.KindOf(ct)
	gen, key, nonce, err := g.epoch().Tree.Next(treemath.LeafIndex(leaf), kind)
	if err != nil {
		g.t.Fatal(err)
	}
	pm := &wire.PrivateMessage{GroupID: g.ctx.GroupID, Epoch: g.ctx.Epoch, ContentType: ct, AuthenticatedData: []byte("aad")}
	aad, _ := codec.Marshal(&wire.PrivateContentAAD{GroupID: pm.GroupID, Epoch: pm.Epoch, ContentType: ct,
		AuthenticatedData: pm.AuthenticatedData})
	if pm.Ciphertext, err = g.s.Seal(key, nonce, aad, plaintext); err != nil {
		g.t.Fatal(err)
	}
	sd, _ := codec.Marshal(&wire.SenderData{LeafIndex: leaf, Generation: gen})
	sdAAD, _ := codec.Marshal(&wire.SenderDataAAD{GroupID: pm.GroupID, Epoch: pm.Epoch, ContentType: ct})
	k, n := keyschedule.SenderDataKeyNonce(g.s, g.sdSecret, pm.Ciphertext)
	if pm.EncryptedSenderData, err = g.s.Seal(k, n, sdAAD, sd); err != nil {
		g.t.Fatal(err)
	}
	return pm
}

func TestPadding(t *testing.T) {
	g := newTestGroup(t, suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	ac := g.signed(g.content(0, wire.ContentTypeApplication), wire.WireFormatPrivateMessage)
	pmc := wire.PrivateMessageContent{ContentType: wire.ContentTypeApplication,
		ApplicationData: ac.Content.ApplicationData, Auth: ac.Auth, Padding: 8}
	good, err := codec.Marshal(&pmc)
	if err != nil {
		t.Fatal(err)
	}
	// The helper itself is sound: zero padding is accepted.
	if _, err := g.epoch().UnprotectPrivate(g.sealWithPlaintext(0, wire.ContentTypeApplication, good), g.members); err != nil {
		t.Fatalf("zero padding: %v", err)
	}
	for i := len(good) - 8; i < len(good); i++ {
		bad := bytes.Clone(good)
		bad[i] = 0x80
		_, err := g.epoch().UnprotectPrivate(g.sealWithPlaintext(0, wire.ContentTypeApplication, bad), g.members)
		if !errors.Is(err, ErrBadPadding) || !errors.Is(err, codec.ErrMalformed) {
			t.Fatalf("non-zero padding octet %d: got %v, want ErrBadPadding", i, err)
		}
	}
	// A plaintext that does not decode is malformed.
	_, err = g.epoch().UnprotectPrivate(g.sealWithPlaintext(0, wire.ContentTypeCommit, good), g.members)
	var de *wire.DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("undecodable content: got %v, want *wire.DecodeError", err)
	}
	_, err = g.epoch().UnprotectPrivate(g.sealWithPlaintext(0, wire.ContentTypeApplication, nil), g.members)
	if !errors.As(err, &de) {
		t.Fatalf("empty content: got %v, want *wire.DecodeError", err)
	}
	// Padding is stripped on receipt whatever its length.
	for _, n := range []int{0, 1, 255, 4096} {
		ac, err := g.epoch().UnprotectPrivate(g.protectPrivate(g.epoch(), 1, wire.ContentTypeApplication, n), g.members)
		if err != nil {
			t.Fatalf("padding %d: %v", n, err)
		}
		sameContent(t, ac, g.content(1, wire.ContentTypeApplication))
	}
}

func TestSenderRules(t *testing.T) {
	g := newTestGroup(t, suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	ext, err := codec.Marshal(&wire.ExternalSenders{{SignatureKey: g.pubs[3],
		Credential: wire.Credential{CredentialType: wire.CredentialTypeBasic, Identity: []byte("server")}}})
	if err != nil {
		t.Fatal(err)
	}
	withExt := *g.ctx
	withExt.Extensions = []wire.Extension{{ExtensionType: wire.ExtensionTypeExternalSenders, ExtensionData: ext}}

	external := func(index uint32, p *wire.Proposal) *wire.FramedContent {
		return &wire.FramedContent{GroupID: g.ctx.GroupID, Epoch: g.ctx.Epoch,
			Sender:      wire.Sender{SenderType: wire.SenderTypeExternal, SenderIndex: index},
			ContentType: wire.ContentTypeProposal, Proposal: p}
	}
	remove := &wire.Proposal{ProposalType: wire.ProposalTypeRemove, Remove: &wire.Remove{Removed: 1}}
	update := &wire.Proposal{ProposalType: wire.ProposalTypeUpdate, Update: &wire.Update{LeafNode: g.newMemberAdd().Proposal.Add.KeyPackage.LeafNode}}
	noPath := &wire.FramedContent{GroupID: g.ctx.GroupID, Epoch: g.ctx.Epoch,
		Sender: wire.Sender{SenderType: wire.SenderTypeNewMemberCommit}, ContentType: wire.ContentTypeCommit,
		Commit: &wire.Commit{}}
	newMemberRemove := g.newMemberAdd()
	newMemberRemove.Proposal = remove

	for _, tc := range []struct {
		name    string
		ctx     *wire.GroupContext
		content *wire.FramedContent
		want    error // nil: accepted
	}{
		{"external remove", &withExt, external(0, remove), nil},
		{"external update", &withExt, external(0, update), ErrInvalidSender},
		{"external bad index", &withExt, external(1, remove), ErrUnknownSender},
		{"external without extension", g.ctx, external(0, remove), ErrUnknownSender},
		{"new member add", g.ctx, g.newMemberAdd(), nil},
		{"new member remove", g.ctx, newMemberRemove, ErrInvalidSender},
		{"new member commit without path", g.ctx, noPath, ErrInvalidSender},
	} {
		e := g.epoch()
		e.Context = tc.ctx
		ac, err := Sign(g.signers[3], wire.WireFormatPublicMessage, tc.content, tc.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if tc.content.ContentType == wire.ContentTypeCommit {
			ac.Auth.ConfirmationTag = []byte("tag")
		}
		pub, err := e.ProtectPublic(ac)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if pub.MembershipTag != nil {
			t.Fatalf("%s: non-member sender got a membership tag", tc.name)
		}
		_, err = e.UnprotectPublic(pub, g.members)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestMisuse(t *testing.T) {
	g := newTestGroup(t, suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	e := g.epoch()
	commit := g.signed(g.content(0, wire.ContentTypeCommit), wire.WireFormatPrivateMessage)
	commit.Auth.ConfirmationTag = nil
	if _, err := e.ProtectPrivate(commit, 0, g.rand); err == nil {
		t.Error("commit without confirmation tag protected")
	}
	pubSigned := g.signed(g.content(0, wire.ContentTypeProposal), wire.WireFormatPublicMessage)
	if _, err := e.ProtectPrivate(pubSigned, 0, g.rand); err == nil {
		t.Error("content signed for PublicMessage protected as PrivateMessage")
	}
	other := g.content(0, wire.ContentTypeProposal)
	other.Epoch++
	if _, err := e.ProtectPublic(g.signed(other, wire.WireFormatPublicMessage)); err == nil {
		t.Error("content of another epoch protected")
	}
	if _, err := e.ProtectPrivate(g.signed(g.content(0, wire.ContentTypeApplication), wire.WireFormatPrivateMessage), -1, g.rand); err == nil {
		t.Error("negative padding accepted")
	}
	if _, err := e.ProtectPrivate(g.signed(g.newMemberAdd(), wire.WireFormatPrivateMessage), 0, g.rand); err == nil {
		t.Error("non-member sender protected as PrivateMessage")
	}
	if _, err := Sign(g.signers[0], wire.WireFormatWelcome, g.content(0, wire.ContentTypeProposal), g.ctx); err == nil {
		t.Error("signed for the welcome wire format")
	}
	if _, err := Sign(g.signers[0], wire.WireFormatPublicMessage, g.content(0, wire.ContentTypeProposal), nil); err == nil {
		t.Error("member content signed without a GroupContext")
	}
	// A failing random source burns no generation.
	if _, err := e.ProtectPrivate(g.signed(g.content(0, wire.ContentTypeApplication), wire.WireFormatPrivateMessage), 0, failingReader{}); err == nil {
		t.Error("failing rand accepted")
	}
	pm := g.protectPrivate(e, 0, wire.ContentTypeApplication, 0)
	recv := g.epoch()
	recv.Tree, _ = secrettree.New(g.s, g.encSecret, testLeaves, secrettree.Config{MaxForwardDistance: -1})
	if _, err := recv.UnprotectPrivate(pm, g.members); err != nil {
		t.Errorf("first message after a failed send is not generation 0: %v", err)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

// Error text never carries key material or content.
func TestErrorsHideSecrets(t *testing.T) {
	g := newTestGroup(t, suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	pm := g.protectPrivate(g.epoch(), 1, wire.ContentTypeApplication, 0)
	recv := g.epoch()
	if _, err := recv.UnprotectPrivate(pm, g.members); err != nil {
		t.Fatal(err)
	}
	var errs []error
	_, err := recv.UnprotectPrivate(pm, g.members)
	errs = append(errs, err)
	bad := *pm
	bad.Ciphertext = bytes.Clone(pm.Ciphertext)
	bad.Ciphertext[len(bad.Ciphertext)-1] ^= 1
	_, err = g.epoch().UnprotectPrivate(&bad, g.members)
	errs = append(errs, err)
	for _, err := range errs {
		if err == nil {
			t.Fatal("expected an error")
		}
		msg := err.Error() + fmt.Sprintf("%+v %#v", err, err)
		for _, secret := range [][]byte{g.encSecret, g.sdSecret, g.membership} {
			if strings.Contains(msg, fmt.Sprintf("%x", secret)) || strings.Contains(msg, string(secret)) {
				t.Fatalf("error %q leaks a secret", err)
			}
		}
		if strings.Contains(msg, "hello") {
			t.Fatalf("error %q leaks content", err)
		}
	}
}

// A secret-free observer verifies the signature but cannot, and does not,
// check the membership tag.
func TestVerifyPublicObserver(t *testing.T) {
	g := newTestGroup(t, suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	pub, err := g.epoch().ProtectPublic(g.signed(g.content(1, wire.ContentTypeProposal), wire.WireFormatPublicMessage))
	if err != nil {
		t.Fatal(err)
	}
	observer := &Epoch{Suite: g.s, Context: g.ctx}
	pub.MembershipTag = []byte("not checked")
	ac, err := observer.VerifyPublicObserver(pub, g.members)
	if err != nil {
		t.Fatal(err)
	}
	sameContent(t, ac, g.content(1, wire.ContentTypeProposal))
	pub.Auth.Signature[0] ^= 1
	if _, err := observer.VerifyPublicObserver(pub, g.members); !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("bad signature: got %v, want ErrInvalidSignature", err)
	}
}

// A message whose sender data decrypts but whose content does not (or
// whose signature fails) must not use up its generation: the genuine
// message with that generation still decrypts afterwards, and only then
// is the key consumed.
func TestFailedUnprotectKeepsKey(t *testing.T) {
	g := newTestGroup(t, suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	recv := g.epoch()
	pm := g.protectPrivate(g.epoch(), 1, wire.ContentTypeApplication, 0)
	good := encodeMsg(t, &wire.MLSMessage{PrivateMessage: pm})
	// Flip a bit of the content ciphertext's tag (the last byte of
	// ciphertext): the sender data, encrypted with a key derived from the
	// ciphertext's first Nh bytes, still decrypts.
	badPM := *pm
	badPM.Ciphertext = bytes.Clone(pm.Ciphertext)
	badPM.Ciphertext[len(badPM.Ciphertext)-1] ^= 1
	if _, err := recv.UnprotectPrivate(&badPM, g.members); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("corrupted content: %v, want ErrDecrypt", err)
	}
	msg, err := wire.UnmarshalMLSMessage(good)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := recv.UnprotectPrivate(msg.PrivateMessage, g.members); err != nil {
		t.Fatalf("genuine message after a corrupted copy: %v", err)
	}
	if msg, err = wire.UnmarshalMLSMessage(good); err != nil { // the replay: the same bytes again
		t.Fatal(err)
	}
	if _, err := recv.UnprotectPrivate(msg.PrivateMessage, g.members); !errors.Is(err, ErrKeyReused) {
		t.Fatalf("replay: %v, want ErrKeyReused", err)
	}
}

// sealPrivateForTest protects ac as generation 0 with the given key, nonce
// (modified) and reuse guard, and decodes the message.
func sealPrivateForTest(t *testing.T, e *Epoch, ac *wire.AuthenticatedContent, key, nonce keyschedule.Secret, guard [4]byte) *wire.PrivateMessage {
	t.Helper()
	l, err := e.layOutPrivate(ac, func(int) int { return 0 })
	if err != nil {
		t.Fatal(err)
	}
	msg, err := e.sealPrivate(ac, l, 0, key, nonce, guard)
	if err != nil {
		t.Fatal(err)
	}
	m, err := wire.UnmarshalMLSMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	return m.PrivateMessage
}

// TestProtectPrivateMessageLayout: the PrivateMessage made in one buffer,
// with the fields before the ciphertext written backwards from it, is the
// canonical encoding of the message it decodes to and unprotects to the
// content sent, in every suite, at the lengths where a varint's size
// changes: the group_id and the authenticated_data at 63 and 64 octets,
// the ciphertext at 16383 and 16384 (reached through the padding; a signed
// content is never short enough for a one-octet ciphertext length) and
// unpadded.
func TestProtectPrivateMessageLayout(t *testing.T) {
	for _, id := range suite.Supported() {
		t.Run(id.String(), func(t *testing.T) {
			g := newTestGroup(t, id)
			if got := len(mustSeal(t, g.s)); got != 5+g.s.AEADOverhead() {
				t.Fatalf("AEADOverhead %d, sealing 5 octets gave %d", g.s.AEADOverhead(), got)
			}
			for _, gidLen := range []int{0, 63, 64} {
				g.ctx.GroupID = bytes.Repeat([]byte{'g'}, gidLen)
				for _, adLen := range []int{0, 63, 64} {
					for _, ctLen := range []int{0, 16383, 16384} {
						send, recv := g.epoch(), g.epoch()
						c := g.content(1, wire.ContentTypeApplication)
						c.AuthenticatedData = bytes.Repeat([]byte{'a'}, adLen)
						ac := g.signed(c, wire.WireFormatPrivateMessage)
						// Pad the content to a ciphertext of ctLen octets.
						pad := func(n int) int { return max(ctLen-g.s.AEADOverhead()-n, 0) }
						msg, err := send.ProtectPrivateMessage(ac, pad, g.rand)
						if err != nil {
							t.Fatalf("gid %d, ad %d, ct %d: %v", gidLen, adLen, ctLen, err)
						}
						m, err := wire.UnmarshalMLSMessage(msg)
						if err != nil {
							t.Fatalf("gid %d, ad %d, ct %d: %v", gidLen, adLen, ctLen, err)
						}
						pm := m.PrivateMessage
						if (ctLen > 0 && len(pm.Ciphertext) != ctLen) || !bytes.Equal(pm.GroupID, g.ctx.GroupID) || len(pm.AuthenticatedData) != adLen {
							t.Fatalf("gid %d, ad %d, ct %d: decoded lengths %d, %d, %d", gidLen, adLen, ctLen,
								len(pm.GroupID), len(pm.AuthenticatedData), len(pm.Ciphertext))
						}
						again, err := codec.Marshal(m)
						if err != nil || !bytes.Equal(again, msg) {
							t.Fatalf("gid %d, ad %d, ct %d: not the canonical encoding (%v)", gidLen, adLen, ctLen, err)
						}
						got, err := recv.UnprotectPrivate(pm, g.members)
						if err != nil {
							t.Fatalf("gid %d, ad %d, ct %d: %v", gidLen, adLen, ctLen, err)
						}
						if !bytes.Equal(got.Content.ApplicationData, c.ApplicationData) || !bytes.Equal(got.Content.AuthenticatedData, c.AuthenticatedData) {
							t.Fatalf("gid %d, ad %d, ct %d: content differs", gidLen, adLen, ctLen)
						}
					}
				}
			}
		})
	}
}

func mustSeal(t *testing.T, s *suite.Suite) []byte {
	t.Helper()
	out, err := s.Seal(make([]byte, s.KeySize()), make([]byte, s.NonceSize()), nil, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	return out
}
