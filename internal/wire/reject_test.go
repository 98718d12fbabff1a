package wire

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/mlskit/mlskit/internal/codec"
)

// build returns the bytes f writes.
func build(t *testing.T, f func(b *codec.Builder)) []byte {
	t.Helper()
	b := codec.NewBuilder(nil)
	f(b)
	out, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// decodeErr decodes data as a fresh x and returns the *DecodeError.
func decodeErr(t *testing.T, x codecValue, data []byte) *DecodeError {
	t.Helper()
	err := decodeAll(x, data, x.decode)
	if err == nil {
		t.Fatalf("%T: %x decoded, want an error", x, data)
	}
	var de *DecodeError
	if !errors.As(err, &de) || !errors.Is(err, codec.ErrMalformed) {
		t.Fatalf("error %v is not a *DecodeError wrapping codec.ErrMalformed", err)
	}
	return de
}

func wantReject(t *testing.T, x codecValue, data []byte, off int, reason string) {
	t.Helper()
	de := decodeErr(t, x, data)
	if de.Offset != off || !strings.Contains(de.Reason, reason) {
		t.Errorf("%T: got %q (offset %d, reason %q), want offset %d, reason containing %q",
			x, de.Error(), de.Offset, de.Reason, off, reason)
	}
}

func TestRejectMLSMessageHeader(t *testing.T) {
	valid := mustMarshal(t, &MLSMessage{Version: ProtocolVersionMLS10, WireFormat: WireFormatWelcome,
		Welcome: ptr(sampleWelcome())})

	v2 := bytes.Clone(valid)
	v2[1] = 2
	wantReject(t, new(MLSMessage), v2, 0, "unsupported protocol version 2")
	v0 := bytes.Clone(valid)
	v0[1] = 0
	wantReject(t, new(MLSMessage), v0, 0, "unsupported protocol version 0")

	for _, wf := range []byte{0, 6, 0xff} {
		bad := bytes.Clone(valid)
		bad[3] = wf
		wantReject(t, new(MLSMessage), bad, 2, "unknown wire format")
	}

	_, err := UnmarshalMLSMessage(append(bytes.Clone(valid), 0))
	var de *DecodeError
	if !errors.As(err, &de) || de.Offset != len(valid) || de.Reason != "trailing bytes" || de.Type != "MLSMessage" {
		t.Errorf("trailing byte: got %v", err)
	}
	if _, err := UnmarshalMLSMessage(valid); err != nil {
		t.Errorf("valid message: %v", err)
	}
	if _, err := UnmarshalMLSMessage(nil); err == nil {
		t.Error("empty input decoded")
	}
}

func TestRejectTrailingBytes(t *testing.T) {
	for _, s := range samples() {
		if _, padded := s.v.(*PrivateMessageContent); padded {
			continue // trailing zero octets are padding; tested separately
		}
		enc := append(mustMarshal(t, s.v), 0)
		x := s.zero()
		if de := decodeErr(t, x, enc); de.Reason != "trailing bytes" || de.Offset != len(enc)-1 {
			t.Errorf("%s: got %v", s.name, de)
		}
	}
}

func TestRejectBadPresenceOctet(t *testing.T) {
	// Commit with no proposals: proposals<V> = 00, then the path presence octet.
	wantReject(t, new(Commit), []byte{0x00, 0x02}, 1, "presence octet")
	wantReject(t, new(Commit), []byte{0x00, 0xff}, 1, "presence octet")

	// GroupSecrets: joiner_secret "j", presence octet, psks.
	wantReject(t, new(GroupSecrets), []byte{0x01, 'j', 0x02, 0x00}, 2, "presence octet")

	// Ratchet tree: one element whose presence octet is 2.
	wantReject(t, new(RatchetTree), []byte{0x01, 0x02}, 1, "presence octet")

	// Tree hash inputs.
	wantReject(t, new(LeafNodeHashInput), []byte{0, 0, 0, 1, 0x05}, 4, "presence octet")
	wantReject(t, new(ParentNodeHashInput), []byte{0x03, 0x00, 0x00}, 0, "presence octet")
}

func TestRejectBadVarint(t *testing.T) {
	cases := []struct {
		name string
		data []byte
	}{
		{"non-minimal 2-byte", []byte{0x40, 0x03, 'k', 'e', 'm'}},
		{"non-minimal 4-byte", []byte{0x80, 0x00, 0x00, 0x03, 'k', 'e', 'm'}},
		{"non-minimal 4-byte for a 2-byte value", []byte{0x80, 0x00, 0x3f, 0xff}},
		{"prefix 0b11", []byte{0xc0, 0, 0, 0, 0, 0, 0, 3, 'k', 'e', 'm'}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantReject(t, new(ExternalInit), c.data, 0, "invalid varint")
		})
	}
	// The same inside a nested vector reports the absolute offset: a
	// Welcome's secrets vector holding a non-minimal new_member length.
	w := []byte{0x00, 0x01, 0x07, 0x40, 0x01, 'r', 0x01, 'k', 0x01, 'c', 0x00}
	wantReject(t, new(Welcome), w, 3, "invalid varint")
	// A length running past the end is "truncated", not silently short.
	wantReject(t, new(ExternalInit), []byte{0x05, 'k'}, 1, "truncated")
}

func TestRejectVectorNotUsedUp(t *testing.T) {
	// Capabilities.versions is uint16<V>; three bytes cannot hold whole elements.
	caps := []byte{0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00}
	de := decodeErr(t, new(Capabilities), caps)
	if de.Offset != 3 {
		t.Errorf("got %v, want offset 3", de)
	}
	// RatchetTree: a vector whose last element is cut short.
	tree := mustMarshal(t, &RatchetTree{{NodeType: NodeTypeParent, ParentNode: ptr(sampleParentNode())}})
	tree[0]-- // shrink the outer length by one; the element no longer fits
	decodeErr(t, new(RatchetTree), tree[:len(tree)-1])
}

func TestRejectUnknownDiscriminants(t *testing.T) {
	fc := func(st, ct byte) []byte {
		return build(t, func(b *codec.Builder) {
			b.AddOpaque(bs("g"))
			b.AddUint64(1)
			b.AddUint8(st)
			if st == 1 || st == 2 {
				b.AddUint32(0)
			}
			b.AddOpaque(nil)
			b.AddUint8(ct)
			b.AddOpaque(bs("data"))
		})
	}
	if err := decodeAll(new(FramedContent), fc(1, 1), new(FramedContent).decode); err != nil {
		t.Fatalf("valid FramedContent: %v", err)
	}
	for _, st := range []byte{0, 5, 0xff} {
		wantReject(t, new(FramedContent), fc(st, 1), 10, "unknown sender type")
	}
	for _, ct := range []byte{0, 4, 0xff} {
		wantReject(t, new(FramedContent), fc(1, ct), 16, "unknown content type")
	}

	pm := mustMarshal(t, ptr(samplePrivateMessage()))
	ctOff := 1 + len("group") + 8
	for _, ct := range []byte{0, 4} {
		bad := bytes.Clone(pm)
		bad[ctOff] = ct
		wantReject(t, new(PrivateMessage), bad, ctOff, "unknown content type")
	}

	leaf := mustMarshal(t, ptr(sampleLeaf(LeafNodeSourceUpdate)))
	l := sampleLeaf(LeafNodeSourceUpdate)
	srcOff := len(build(t, func(b *codec.Builder) {
		b.AddOpaque(l.EncryptionKey)
		b.AddOpaque(l.SignatureKey)
		l.Credential.Marshal(b)
		l.Capabilities.Marshal(b)
	}))
	for _, src := range []byte{0, 4} {
		bad := bytes.Clone(leaf)
		bad[srcOff] = src
		wantReject(t, new(LeafNode), bad, srcOff, "unknown leaf node source")
	}

	for _, pt := range []byte{0, 3} {
		wantReject(t, new(PreSharedKeyID), []byte{pt, 0x01, 'x', 0x00}, 0, "unknown psk type")
	}
	for _, nt := range []byte{0, 3} {
		wantReject(t, new(Node), []byte{nt, 0, 0, 0}, 0, "unknown node type")
		wantReject(t, new(TreeHashInput), []byte{nt, 0, 0, 0}, 0, "unknown node type")
		wantReject(t, new(RatchetTree), []byte{0x05, 0x01, nt, 0, 0, 0}, 2, "unknown node type")
	}
	for _, pt := range []byte{0, 3} {
		wantReject(t, new(ProposalOrRef), []byte{pt, 0x01, 'r'}, 0, "unknown proposal-or-ref type")
	}

	// A FramedContentAuthData or PrivateMessageContent whose discriminant
	// was never set cannot be decoded.
	decodeErr(t, new(FramedContentAuthData), []byte{0x00})
	decodeErr(t, new(PrivateMessageContent), []byte{0x00, 0x00})
}

// TestAcceptExtensibleValues: values the RFC makes extensible, in a context
// that delimits them, are kept rather than rejected.
func TestAcceptExtensibleValues(t *testing.T) {
	// Unknown proposal type 0xf00d: body is opaque data<V>.
	p, err := Decode[Proposal]([]byte{0xf0, 0x0d, 0x02, 'h', 'i'})
	if err != nil || p.ProposalType != 0xf00d || string(p.Unknown) != "hi" {
		t.Fatalf("unknown proposal: %+v, %v", p, err)
	}
	// Unknown credential type 0x0003: body is opaque data<V>.
	c, err := Decode[Credential]([]byte{0x00, 0x03, 0x01, 'm'})
	if err != nil || c.CredentialType != 3 || string(c.Unknown) != "m" {
		t.Fatalf("unknown credential: %+v, %v", c, err)
	}
	// Unknown extension type.
	e, err := Decode[Extension]([]byte{0xff, 0xff, 0x00})
	if err != nil || e.ExtensionType != 0xffff || e.ExtensionData == nil {
		t.Fatalf("unknown extension: %+v, %v", e, err)
	}
	// Unknown resumption usage selects nothing, so it is kept.
	psk, err := Decode[PreSharedKeyID]([]byte{0x02, 0x09, 0x00, 0, 0, 0, 0, 0, 0, 0, 1, 0x00})
	if err != nil || psk.Usage != 9 {
		t.Fatalf("unknown usage: %+v, %v", psk, err)
	}
}

// TestMarshalRejectsInconsistentValues: a value whose select discriminant
// has no body, or is unknown, fails to encode instead of producing bytes
// that would not decode.
func TestMarshalRejectsInconsistentValues(t *testing.T) {
	bad := []codec.Marshaler{
		&MLSMessage{Version: 1, WireFormat: WireFormatWelcome},
		&MLSMessage{Version: 1, WireFormat: 9, Welcome: ptr(sampleWelcome())},
		&Proposal{ProposalType: ProposalTypeAdd},
		&ProposalOrRef{Type: ProposalOrRefTypeProposal},
		&ProposalOrRef{Type: 7},
		&Node{NodeType: NodeTypeLeaf},
		&Node{NodeType: 0},
		&TreeHashInput{NodeType: NodeTypeParent},
		&FramedContent{ContentType: ContentTypeCommit, Sender: Sender{SenderType: SenderTypeMember}},
		&FramedContent{ContentType: 0, Sender: Sender{SenderType: SenderTypeMember}},
		&Sender{SenderType: 0},
		&LeafNode{LeafNodeSource: 0},
		&PreSharedKeyID{PSKType: 0},
		&FramedContentAuthData{},
		&FramedContentTBS{Content: sampleFramedContent(SenderTypeMember, ContentTypeApplication)},
	}
	for _, v := range bad {
		if enc, err := codec.Marshal(v); err == nil {
			t.Errorf("%T %+v encoded to %x", v, v, enc)
		}
	}
}

// TestDecodeAliasesOneCopy: the package-level decoders copy their input, so
// the caller may reuse its buffer; the Unmarshal methods alias the reader.
func TestDecodeAliasesOneCopy(t *testing.T) {
	in := mustMarshal(t, &ExternalInit{bs("kem output")})
	x, err := Decode[ExternalInit](in)
	if err != nil {
		t.Fatal(err)
	}
	in[1] = 'X'
	if string(x.KEMOutput) != "kem output" {
		t.Error("Decode result changed when the caller's buffer did")
	}
	var y ExternalInit
	if !y.Unmarshal(codec.NewReader(in)) || string(y.KEMOutput) != "Xem output" {
		t.Errorf("Unmarshal: %q", y.KEMOutput)
	}
	// Appending to a decoded field must never overwrite what follows it.
	two := mustMarshal(t, &HPKECiphertext{bs("aa"), bs("bb")})
	h, err := Decode[HPKECiphertext](two)
	if err != nil {
		t.Fatal(err)
	}
	_ = append(h.KEMOutput, 'z')
	if string(h.Ciphertext) != "bb" {
		t.Error("append to one field clobbered the next")
	}
}

func TestUnmarshalLeavesReaderOnFailure(t *testing.T) {
	r := codec.NewReader([]byte{0x05, 'a'})
	var x ExternalInit
	if x.Unmarshal(r) {
		t.Fatal("decoded a truncated ExternalInit")
	}
	if r.Len() != 2 {
		t.Errorf("failed Unmarshal consumed %d bytes", 2-r.Len())
	}
}

func TestTBSHelpers(t *testing.T) {
	kp := sampleKeyPackage()
	enc := mustMarshal(t, &kp)
	sigLen := 1 + len(kp.Signature)
	if got := kp.TBS(); !bytes.Equal(got, enc[:len(enc)-sigLen]) {
		t.Errorf("KeyPackage.TBS is not the encoding minus the signature")
	}
	gi := sampleGroupInfo()
	enc = mustMarshal(t, &gi)
	if got := gi.TBS(); !bytes.Equal(got, enc[:len(enc)-1-len(gi.Signature)]) {
		t.Errorf("GroupInfo.TBS is not the encoding minus the signature")
	}
	for _, src := range []LeafNodeSource{LeafNodeSourceKeyPackage, LeafNodeSourceUpdate, LeafNodeSourceCommit} {
		l := sampleLeaf(src)
		enc := mustMarshal(t, &l)
		want := bytes.Clone(enc[:len(enc)-1-len(l.Signature)])
		if src != LeafNodeSourceKeyPackage {
			want = append(want, 0x02, 'g', 'i', 0, 0, 0, 9)
		}
		if got := l.TBS(bs("gi"), 9); !bytes.Equal(got, want) {
			t.Errorf("%v: LeafNode.TBS = %x, want %x", src, got, want)
		}
	}
	// The FramedContentTBS carries the GroupContext only for member and
	// new_member_commit senders.
	gc := sampleGroupContext()
	gcEnc := mustMarshal(t, &gc)
	for _, st := range []SenderType{SenderTypeMember, SenderTypeExternal, SenderTypeNewMemberProposal,
		SenderTypeNewMemberCommit} {
		ac := &AuthenticatedContent{WireFormat: WireFormatPublicMessage,
			Content: sampleFramedContent(st, ContentTypeProposal), Auth: sampleAuth(ContentTypeProposal)}
		tbs := mustMarshal(t, ac.TBS(&gc))
		hasCtx := bytes.HasSuffix(tbs, gcEnc)
		if hasCtx != (st == SenderTypeMember || st == SenderTypeNewMemberCommit) {
			t.Errorf("%v: context present = %v", st, hasCtx)
		}
		if !bytes.HasPrefix(tbs, []byte{0, 1, 0, 1}) {
			t.Errorf("%v: TBS does not start with mls10, public_message", st)
		}
	}
}

func TestPublicMessageAuthenticatedContentRaw(t *testing.T) {
	pm := samplePublicMessage(SenderTypeMember, ContentTypeProposal)
	enc := mustMarshal(t, &MLSMessage{Version: 1, WireFormat: WireFormatPublicMessage, PublicMessage: pm})
	m, err := UnmarshalMLSMessage(enc)
	if err != nil {
		t.Fatal(err)
	}
	ac := m.PublicMessage.AuthenticatedContent()
	want := mustMarshal(t, &AuthenticatedContent{WireFormat: WireFormatPublicMessage, Content: pm.Content,
		Auth: pm.Auth})
	if !bytes.Equal(ac.Raw(), want) {
		t.Errorf("AuthenticatedContent.Raw = %x, want %x", ac.Raw(), want)
	}
	// Built, not decoded: no received bytes to keep.
	if pm.AuthenticatedContent().Raw() != nil {
		t.Error("Raw of a built PublicMessage's AuthenticatedContent is not nil")
	}
}

func TestEnumStrings(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{WireFormatKeyPackage.String(), "mls_key_package"},
		{WireFormat(9).String(), "WireFormat(9)"},
		{SenderTypeNewMemberCommit.String(), "new_member_commit"},
		{ProposalType(0x0a0a).String(), "ProposalType(2570)"},
		{ProtocolVersionMLS10.String(), "mls10"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
