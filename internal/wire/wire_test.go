package wire

import (
	"bytes"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"sort"
	"testing"

	"github.com/mlskit/mlskit/internal/codec"
)

// codecValue is what every wire struct implements.
type codecValue interface {
	codec.Marshaler
	Unmarshaler
	decodable
}

// sample is a populated value of one wire type and a constructor for an
// empty value to decode into (with any not-on-the-wire discriminant set).
type sample struct {
	name string
	v    codecValue
	zero func() codecValue
}

func bs(s string) []byte { return []byte(s) }

func sampleCredentialBasic() Credential {
	return Credential{CredentialType: CredentialTypeBasic, Identity: bs("alice")}
}

func sampleCapabilities() Capabilities {
	return Capabilities{
		Versions:     []ProtocolVersion{ProtocolVersionMLS10, 0x0a0a},                 // GREASE kept
		CipherSuites: []CipherSuite{1, 3, 0x2a2a},                                     // GREASE kept
		Extensions:   []ExtensionType{ExtensionTypeExternalSenders, 0xff00},           // unknown kept
		Proposals:    []ProposalType{0x3a3a},                                          // GREASE kept
		Credentials:  []CredentialType{CredentialTypeBasic, CredentialTypeX509, 0xf0}, // unknown kept
	}
}

func sampleExtensions() []Extension {
	return []Extension{
		{ExtensionType: ExtensionTypeApplicationID, ExtensionData: bs("app")},
		{ExtensionType: 0xbeef, ExtensionData: bs("unknown extension stays opaque")},
	}
}

func sampleLeaf(src LeafNodeSource) LeafNode {
	l := LeafNode{
		EncryptionKey:  bs("encryption key"),
		SignatureKey:   bs("signature key"),
		Credential:     sampleCredentialBasic(),
		Capabilities:   sampleCapabilities(),
		LeafNodeSource: src,
		Extensions:     sampleExtensions(),
		Signature:      bs("leaf signature"),
	}
	switch src {
	case LeafNodeSourceKeyPackage:
		l.Lifetime = Lifetime{NotBefore: 1, NotAfter: 1 << 40}
	case LeafNodeSourceCommit:
		l.ParentHash = bs("parent hash")
	}
	return l
}

func sampleKeyPackage() KeyPackage {
	return KeyPackage{
		Version:     ProtocolVersionMLS10,
		CipherSuite: 1,
		InitKey:     bs("init key"),
		LeafNode:    sampleLeaf(LeafNodeSourceKeyPackage),
		Extensions:  sampleExtensions()[1:],
		Signature:   bs("kp signature"),
	}
}

func sampleGroupContext() GroupContext {
	return GroupContext{
		Version:                 ProtocolVersionMLS10,
		CipherSuite:             2,
		GroupID:                 bs("group"),
		Epoch:                   1<<33 + 7,
		TreeHash:                bs("tree hash"),
		ConfirmedTranscriptHash: bs("cth"),
		Extensions:              sampleExtensions(),
	}
}

func samplePSKExternal() PreSharedKeyID {
	return PreSharedKeyID{PSKType: PSKTypeExternal, PSKID: bs("psk id"), PSKNonce: bs("nonce")}
}

func samplePSKResumption() PreSharedKeyID {
	return PreSharedKeyID{PSKType: PSKTypeResumption, Usage: ResumptionPSKUsageBranch,
		PSKGroupID: bs("old group"), PSKEpoch: 9, PSKNonce: bs("nonce")}
}

func sampleParentNode() ParentNode {
	return ParentNode{EncryptionKey: bs("parent key"), ParentHash: bs("ph"), UnmergedLeaves: []uint32{1, 3}}
}

func sampleUpdatePath() UpdatePath {
	p := UpdatePath{
		LeafNode: sampleLeaf(LeafNodeSourceCommit),
		Nodes:    []UpdatePathNode{{EncryptionKey: bs("n1")}, {EncryptionKey: bs("n2")}},
	}
	p.Nodes[0].SetSecrets([]HPKECiphertext{{bs("kem"), bs("ct")}})
	p.Nodes[1].SetSecrets([]HPKECiphertext{{bs("k1"), bs("c1")}, {bs("k2"), bs("c2")}})
	return p
}

func sampleProposals() []Proposal {
	return []Proposal{
		{ProposalType: ProposalTypeAdd, Add: &Add{KeyPackage: sampleKeyPackage()}},
		{ProposalType: ProposalTypeUpdate, Update: &Update{LeafNode: sampleLeaf(LeafNodeSourceUpdate)}},
		{ProposalType: ProposalTypeRemove, Remove: &Remove{Removed: 5}},
		{ProposalType: ProposalTypePSK, PreSharedKey: &PreSharedKey{PSK: samplePSKResumption()}},
		{ProposalType: ProposalTypeReInit, ReInit: &ReInit{GroupID: bs("g2"), Version: ProtocolVersionMLS10,
			CipherSuite: 3, Extensions: sampleExtensions()}},
		{ProposalType: ProposalTypeExternalInit, ExternalInit: &ExternalInit{KEMOutput: bs("kem output")}},
		{ProposalType: ProposalTypeGroupContextExtensions,
			GroupContextExtensions: &GroupContextExtensions{Extensions: sampleExtensions()}},
		{ProposalType: 0x0a0a, Unknown: bs("custom proposal body")},
	}
}

func sampleCommit() Commit {
	var pr []ProposalOrRef
	for _, p := range sampleProposals() {
		pr = append(pr, ProposalOrRef{Type: ProposalOrRefTypeProposal, Proposal: &p})
	}
	pr = append(pr, ProposalOrRef{Type: ProposalOrRefTypeReference, Reference: ProposalRef(bs("ref"))})
	p := sampleUpdatePath()
	return Commit{Proposals: pr, Path: &p}
}

func sampleFramedContent(st SenderType, ct ContentType) FramedContent {
	fc := FramedContent{
		GroupID:           bs("group"),
		Epoch:             42,
		Sender:            Sender{SenderType: st},
		AuthenticatedData: bs("aad"),
		ContentType:       ct,
	}
	switch st {
	case SenderTypeMember:
		fc.Sender.LeafIndex = 3
	case SenderTypeExternal:
		fc.Sender.SenderIndex = 1
	}
	switch ct {
	case ContentTypeApplication:
		fc.ApplicationData = bs("hello")
	case ContentTypeProposal:
		p := sampleProposals()[2]
		fc.Proposal = &p
	case ContentTypeCommit:
		c := sampleCommit()
		fc.Commit = &c
	}
	return fc
}

func sampleAuth(ct ContentType) FramedContentAuthData {
	a := FramedContentAuthData{ContentType: ct, Signature: bs("sig")}
	if ct == ContentTypeCommit {
		a.ConfirmationTag = bs("tag")
	}
	return a
}

func samplePublicMessage(st SenderType, ct ContentType) *PublicMessage {
	pm := &PublicMessage{Content: sampleFramedContent(st, ct), Auth: sampleAuth(ct)}
	if st == SenderTypeMember {
		pm.MembershipTag = bs("membership tag")
	}
	return pm
}

func sampleGroupInfo() GroupInfo {
	return GroupInfo{GroupContext: sampleGroupContext(), Extensions: sampleExtensions(),
		ConfirmationTag: bs("tag"), Signer: 2, Signature: bs("gi sig")}
}

func sampleWelcome() Welcome {
	return Welcome{CipherSuite: 1, Secrets: []EncryptedGroupSecrets{
		{NewMember: KeyPackageRef(bs("kpref1")), EncryptedGroupSecrets: HPKECiphertext{bs("kem"), bs("ct")}},
		{NewMember: KeyPackageRef(bs("kpref2")), EncryptedGroupSecrets: HPKECiphertext{bs("kem2"), bs("ct2")}},
	}, EncryptedGroupInfo: bs("encrypted group info")}
}

func samplePrivateMessage() PrivateMessage {
	return PrivateMessage{GroupID: bs("group"), Epoch: 4, ContentType: ContentTypeCommit,
		AuthenticatedData: bs("aad"), EncryptedSenderData: bs("esd"), Ciphertext: bs("ciphertext")}
}

func ptr[T any](v T) *T { return &v }

func z[T any, P interface {
	*T
	codecValue
}]() func() codecValue {
	return func() codecValue { return P(new(T)) }
}

func samples() []sample {
	var s []sample
	add := func(name string, v codecValue, zero func() codecValue) {
		s = append(s, sample{name, v, zero})
	}
	add("SignContent", &SignContent{bs("MLS 1.0 label"), bs("content")}, z[SignContent]())
	add("EncryptContext", &EncryptContext{bs("label"), bs("context")}, z[EncryptContext]())
	add("RefHashInput", &RefHashInput{bs("MLS 1.0 KeyPackage Reference"), bs("value")}, z[RefHashInput]())
	add("KDFLabel", &KDFLabel{32, bs("MLS 1.0 joiner"), bs("ctx")}, z[KDFLabel]())
	add("Credential/basic", ptr(sampleCredentialBasic()), z[Credential]())
	add("Credential/x509", &Credential{CredentialType: CredentialTypeX509,
		Certificates: [][]byte{bs("leaf cert"), bs("intermediate"), {}}}, z[Credential]())
	add("Credential/unknown", &Credential{CredentialType: 0xabcd, Unknown: bs("custom")}, z[Credential]())
	add("Capabilities", ptr(sampleCapabilities()), z[Capabilities]())
	add("Lifetime", &Lifetime{NotBefore: 5, NotAfter: 1<<64 - 1}, z[Lifetime]())
	add("Extension", &Extension{ExtensionType: ExtensionTypeRatchetTree, ExtensionData: bs("tree")}, z[Extension]())
	add("ApplicationID", &ApplicationID{bs("app id")}, z[ApplicationID]())
	add("RequiredCapabilities", &RequiredCapabilities{[]ExtensionType{5}, []ProposalType{7, 0x0a0a},
		[]CredentialType{1}}, z[RequiredCapabilities]())
	add("ExternalSender", &ExternalSender{bs("sk"), sampleCredentialBasic()}, z[ExternalSender]())
	add("ExternalSenders", &ExternalSenders{{bs("sk1"), sampleCredentialBasic()},
		{bs("sk2"), Credential{CredentialType: CredentialTypeX509, Certificates: [][]byte{bs("c")}}}},
		z[ExternalSenders]())
	add("ExternalPub", &ExternalPub{bs("external pub")}, z[ExternalPub]())
	for _, src := range []LeafNodeSource{LeafNodeSourceKeyPackage, LeafNodeSourceUpdate, LeafNodeSourceCommit} {
		l := sampleLeaf(src)
		add("LeafNode/"+src.String(), &l, z[LeafNode]())
		t := l.ToBeSigned(bs("group"), 7)
		add("LeafNodeTBS/"+src.String(), &t, z[LeafNodeTBS]())
	}
	add("KeyPackage", ptr(sampleKeyPackage()), z[KeyPackage]())
	kp := sampleKeyPackage()
	add("KeyPackageTBS", &KeyPackageTBS{kp.Version, kp.CipherSuite, kp.InitKey, kp.LeafNode, kp.Extensions},
		z[KeyPackageTBS]())
	add("ParentNode", ptr(sampleParentNode()), z[ParentNode]())
	add("Node/leaf", &Node{NodeType: NodeTypeLeaf, LeafNode: ptr(sampleLeaf(LeafNodeSourceCommit))}, z[Node]())
	add("Node/parent", &Node{NodeType: NodeTypeParent, ParentNode: ptr(sampleParentNode())}, z[Node]())
	add("RatchetTree", &RatchetTree{
		{NodeType: NodeTypeLeaf, LeafNode: ptr(sampleLeaf(LeafNodeSourceKeyPackage))},
		{NodeType: NodeTypeParent, ParentNode: ptr(sampleParentNode())},
		nil,
		nil,
		{NodeType: NodeTypeLeaf, LeafNode: ptr(sampleLeaf(LeafNodeSourceCommit))},
	}, z[RatchetTree]())
	add("SparseRatchetTree", &SparseRatchetTree{Width: 5, Nodes: []IndexedNode{
		{0, &Node{NodeType: NodeTypeLeaf, LeafNode: ptr(sampleLeaf(LeafNodeSourceKeyPackage))}},
		{1, &Node{NodeType: NodeTypeParent, ParentNode: ptr(sampleParentNode())}},
		{4, &Node{NodeType: NodeTypeLeaf, LeafNode: ptr(sampleLeaf(LeafNodeSourceCommit))}},
	}}, z[SparseRatchetTree]())
	add("HPKECiphertext", &HPKECiphertext{bs("kem"), bs("ct")}, z[HPKECiphertext]())
	up := sampleUpdatePath()
	add("UpdatePathNode", &up.Nodes[1], z[UpdatePathNode]())
	add("UpdatePath", &up, z[UpdatePath]())
	add("ParentHashInput", &ParentHashInput{bs("ek"), bs("ph"), bs("osth")}, z[ParentHashInput]())
	add("LeafNodeHashInput/present", &LeafNodeHashInput{4, ptr(sampleLeaf(LeafNodeSourceUpdate))},
		z[LeafNodeHashInput]())
	add("LeafNodeHashInput/blank", &LeafNodeHashInput{LeafIndex: 4}, z[LeafNodeHashInput]())
	add("ParentNodeHashInput/present", &ParentNodeHashInput{ptr(sampleParentNode()), bs("l"), bs("r")},
		z[ParentNodeHashInput]())
	add("ParentNodeHashInput/blank", &ParentNodeHashInput{nil, bs("l"), bs("r")}, z[ParentNodeHashInput]())
	add("TreeHashInput/leaf", &TreeHashInput{NodeType: NodeTypeLeaf,
		LeafNode: &LeafNodeHashInput{0, ptr(sampleLeaf(LeafNodeSourceKeyPackage))}}, z[TreeHashInput]())
	add("TreeHashInput/parent", &TreeHashInput{NodeType: NodeTypeParent,
		ParentNode: &ParentNodeHashInput{nil, bs("l"), bs("r")}}, z[TreeHashInput]())
	add("GroupContext", ptr(sampleGroupContext()), z[GroupContext]())
	add("PreSharedKeyID/external", ptr(samplePSKExternal()), z[PreSharedKeyID]())
	add("PreSharedKeyID/resumption", ptr(samplePSKResumption()), z[PreSharedKeyID]())
	add("PSKLabel", &PSKLabel{samplePSKResumption(), 1, 2}, z[PSKLabel]())
	for _, st := range []SenderType{SenderTypeMember, SenderTypeExternal, SenderTypeNewMemberProposal,
		SenderTypeNewMemberCommit} {
		add("Sender/"+st.String(), ptr(sampleFramedContent(st, ContentTypeApplication).Sender), z[Sender]())
	}
	for _, ct := range []ContentType{ContentTypeApplication, ContentTypeProposal, ContentTypeCommit} {
		add("FramedContent/"+ct.String(), ptr(sampleFramedContent(SenderTypeMember, ct)), z[FramedContent]())
		add("FramedContentAuthData/"+ct.String(), ptr(sampleAuth(ct)),
			func() codecValue { return &FramedContentAuthData{ContentType: ct} })
		add("AuthenticatedContent/"+ct.String(), &AuthenticatedContent{WireFormat: WireFormatPublicMessage,
			Content: sampleFramedContent(SenderTypeMember, ct), Auth: sampleAuth(ct)}, z[AuthenticatedContent]())
		add("PrivateMessageContent/"+ct.String(), &PrivateMessageContent{ContentType: ct,
			ApplicationData: sampleFramedContent(SenderTypeMember, ct).ApplicationData,
			Proposal:        sampleFramedContent(SenderTypeMember, ct).Proposal,
			Commit:          sampleFramedContent(SenderTypeMember, ct).Commit,
			Auth:            sampleAuth(ct)},
			func() codecValue { return &PrivateMessageContent{ContentType: ct} })
	}
	gc := sampleGroupContext()
	add("FramedContentTBS/member", &FramedContentTBS{ProtocolVersionMLS10, WireFormatPublicMessage,
		sampleFramedContent(SenderTypeMember, ContentTypeCommit), &gc}, z[FramedContentTBS]())
	add("FramedContentTBS/external", &FramedContentTBS{ProtocolVersionMLS10, WireFormatPublicMessage,
		sampleFramedContent(SenderTypeExternal, ContentTypeProposal), nil}, z[FramedContentTBS]())
	add("AuthenticatedContentTBM", &AuthenticatedContentTBM{FramedContentTBS{ProtocolVersionMLS10,
		WireFormatPublicMessage, sampleFramedContent(SenderTypeNewMemberCommit, ContentTypeCommit), &gc},
		sampleAuth(ContentTypeCommit)}, z[AuthenticatedContentTBM]())
	for _, st := range []SenderType{SenderTypeMember, SenderTypeExternal, SenderTypeNewMemberCommit} {
		ct := ContentTypeProposal
		if st == SenderTypeNewMemberCommit {
			ct = ContentTypeCommit
		}
		add("PublicMessage/"+st.String(), samplePublicMessage(st, ct), z[PublicMessage]())
	}
	add("PrivateMessage", ptr(samplePrivateMessage()), z[PrivateMessage]())
	add("PrivateContentAAD", &PrivateContentAAD{bs("g"), 1, ContentTypeApplication, bs("aad")},
		z[PrivateContentAAD]())
	add("SenderData", &SenderData{LeafIndex: 1, Generation: 1 << 31, ReuseGuard: [4]byte{1, 2, 3, 4}},
		z[SenderData]())
	add("SenderDataAAD", &SenderDataAAD{bs("g"), 1, ContentTypeCommit}, z[SenderDataAAD]())
	add("MLSMessage/public", &MLSMessage{Version: ProtocolVersionMLS10, WireFormat: WireFormatPublicMessage,
		PublicMessage: samplePublicMessage(SenderTypeMember, ContentTypeCommit)}, z[MLSMessage]())
	add("MLSMessage/private", &MLSMessage{Version: ProtocolVersionMLS10, WireFormat: WireFormatPrivateMessage,
		PrivateMessage: ptr(samplePrivateMessage())}, z[MLSMessage]())
	add("MLSMessage/welcome", &MLSMessage{Version: ProtocolVersionMLS10, WireFormat: WireFormatWelcome,
		Welcome: ptr(sampleWelcome())}, z[MLSMessage]())
	add("MLSMessage/group_info", &MLSMessage{Version: ProtocolVersionMLS10, WireFormat: WireFormatGroupInfo,
		GroupInfo: ptr(sampleGroupInfo())}, z[MLSMessage]())
	add("MLSMessage/key_package", &MLSMessage{Version: ProtocolVersionMLS10, WireFormat: WireFormatKeyPackage,
		KeyPackage: ptr(sampleKeyPackage())}, z[MLSMessage]())
	add("ConfirmedTranscriptHashInput", &ConfirmedTranscriptHashInput{WireFormatPrivateMessage,
		sampleFramedContent(SenderTypeMember, ContentTypeCommit), bs("sig")}, z[ConfirmedTranscriptHashInput]())
	add("InterimTranscriptHashInput", &InterimTranscriptHashInput{bs("tag")}, z[InterimTranscriptHashInput]())
	for _, p := range sampleProposals() {
		add("Proposal/"+p.ProposalType.String(), &p, z[Proposal]())
	}
	add("Add", &Add{sampleKeyPackage()}, z[Add]())
	add("Update", &Update{sampleLeaf(LeafNodeSourceUpdate)}, z[Update]())
	add("Remove", &Remove{7}, z[Remove]())
	add("PreSharedKey", &PreSharedKey{samplePSKExternal()}, z[PreSharedKey]())
	add("ReInit", sampleProposals()[4].ReInit, z[ReInit]())
	add("ExternalInit", &ExternalInit{bs("kem")}, z[ExternalInit]())
	add("GroupContextExtensions", &GroupContextExtensions{sampleExtensions()}, z[GroupContextExtensions]())
	add("ProposalOrRef/proposal", &ProposalOrRef{Type: ProposalOrRefTypeProposal,
		Proposal: &sampleProposals()[2]}, z[ProposalOrRef]())
	add("ProposalOrRef/reference", &ProposalOrRef{Type: ProposalOrRefTypeReference,
		Reference: ProposalRef(bs("ref"))}, z[ProposalOrRef]())
	add("Commit/path", ptr(sampleCommit()), z[Commit]())
	add("Commit/nopath", &Commit{Proposals: sampleCommit().Proposals[:3]}, z[Commit]())
	add("Commit/empty", &Commit{}, z[Commit]())
	add("GroupInfo", ptr(sampleGroupInfo()), z[GroupInfo]())
	gi := sampleGroupInfo()
	add("GroupInfoTBS", &GroupInfoTBS{gi.GroupContext, gi.Extensions, gi.ConfirmationTag, gi.Signer},
		z[GroupInfoTBS]())
	add("PathSecret", &PathSecret{bs("path secret")}, z[PathSecret]())
	add("GroupSecrets/path", &GroupSecrets{bs("joiner"), &PathSecret{bs("ps")},
		[]PreSharedKeyID{samplePSKExternal(), samplePSKResumption()}}, z[GroupSecrets]())
	add("GroupSecrets/nopath", &GroupSecrets{JoinerSecret: bs("joiner")}, z[GroupSecrets]())
	add("EncryptedGroupSecrets", &sampleWelcome().Secrets[0], z[EncryptedGroupSecrets]())
	add("Welcome", ptr(sampleWelcome()), z[Welcome]())
	return s
}

// equalIgnoringRaw compares two decoded-or-built values field by field,
// skipping the kept received encodings and treating nil and empty slices as
// equal (a built value may say nil where the decoder says "empty").
func equalIgnoringRaw(a, b reflect.Value) bool {
	if a.Kind() != b.Kind() {
		return false
	}
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return equalIgnoringRaw(a.Elem(), b.Elem())
	case reflect.Struct:
		if a.Type() == reflect.TypeFor[UpdatePathNode]() {
			// Built with SetSecrets, decoded as received: the same
			// node when its key and secrets are.
			x, y := a.Interface().(UpdatePathNode), b.Interface().(UpdatePathNode)
			return bytes.Equal(x.EncryptionKey, y.EncryptionKey) &&
				equalIgnoringRaw(reflect.ValueOf(x.AllSecrets()), reflect.ValueOf(y.AllSecrets()))
		}
		for i := range a.NumField() {
			switch a.Type().Field(i).Name {
			case "raw", "contentRaw":
				continue
			}
			if !equalIgnoringRaw(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Slice, reflect.Array:
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !equalIgnoringRaw(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return equalIgnoringRaw(a.Elem(), b.Elem())
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return a.Uint() == b.Uint()
	case reflect.Int:
		return a.Int() == b.Int()
	case reflect.Bool:
		return a.Bool() == b.Bool()
	}
	panic("equalIgnoringRaw: unhandled kind " + a.Kind().String())
}

func mustMarshal(t testing.TB, v codec.Marshaler) []byte {
	t.Helper()
	enc, err := codec.Marshal(v)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	return enc
}

// rawer is implemented by the structs that keep their received encoding.
type rawer interface{ Raw() []byte }

func TestRoundTrip(t *testing.T) {
	for _, s := range samples() {
		t.Run(s.name, func(t *testing.T) {
			enc := mustMarshal(t, s.v)

			// Through the public Unmarshal method and a codec.Reader, with a
			// byte after the value that must be left unread.
			r := codec.NewReader(append(bytes.Clone(enc), 0xff))
			got := s.zero()
			if _, padded := got.(*PrivateMessageContent); padded {
				r = codec.NewReader(bytes.Clone(enc)) // padding takes everything
			}
			if !got.Unmarshal(r) {
				t.Fatalf("Unmarshal failed on %x", enc)
			}
			if _, padded := got.(*PrivateMessageContent); !padded && r.Len() != 1 {
				t.Fatalf("Unmarshal left %d bytes, want 1", r.Len())
			}
			if !equalIgnoringRaw(reflect.ValueOf(got), reflect.ValueOf(s.v)) {
				t.Errorf("decoded value differs:\n got %+v\nwant %+v", got, s.v)
			}
			if re := mustMarshal(t, got); !bytes.Equal(re, enc) {
				t.Errorf("re-encoding differs:\n got %x\nwant %x", re, enc)
			}
			if rw, ok := got.(rawer); ok && !bytes.Equal(rw.Raw(), enc) {
				t.Errorf("Raw() = %x, want %x", rw.Raw(), enc)
			}

			// Through decodeAll, which copies the input once.
			got2 := s.zero()
			if err := decodeAll(got2, enc, got2.decode); err != nil {
				t.Fatalf("decodeAll: %v", err)
			}
			if re := mustMarshal(t, got2); !bytes.Equal(re, enc) {
				t.Errorf("decodeAll re-encoding differs")
			}
		})
	}
}

// TestNoProperPrefixDecodes: every proper prefix of a valid encoding is
// malformed, so a truncated message can never be mistaken for another.
func TestNoProperPrefixDecodes(t *testing.T) {
	for _, s := range samples() {
		t.Run(s.name, func(t *testing.T) {
			enc := mustMarshal(t, s.v)
			for k := range len(enc) {
				x := s.zero()
				err := decodeAll(x, enc[:k], x.decode)
				if err == nil {
					t.Fatalf("prefix of length %d/%d decoded", k, len(enc))
				}
				var de *DecodeError
				if !errors.As(err, &de) || !errors.Is(err, codec.ErrMalformed) {
					t.Fatalf("prefix %d: error %v is not a *DecodeError wrapping ErrMalformed", k, err)
				}
				if de.Offset < 0 || de.Offset > k {
					t.Fatalf("prefix %d: offset %d outside the input", k, de.Offset)
				}
			}
		})
	}
}

// TestPrivateMessageContentPadding: trailing zero octets are padding
// (RFC 9420, Section 6.3.1), so prefixes that only drop padding decode, with
// less padding; any non-zero padding octet is malformed.
func TestPrivateMessageContentPadding(t *testing.T) {
	v := &PrivateMessageContent{ContentType: ContentTypeApplication, ApplicationData: bs("hi"),
		Auth: sampleAuth(ContentTypeApplication), Padding: 5}
	enc := mustMarshal(t, v)
	for pad := 0; pad <= 5; pad++ {
		got, err := UnmarshalPrivateMessageContent(enc[:len(enc)-5+pad], ContentTypeApplication)
		if err != nil || got.Padding != pad {
			t.Fatalf("padding %d: got %v, %v", pad, got, err)
		}
	}
	for i := len(enc) - 5; i < len(enc); i++ {
		bad := bytes.Clone(enc)
		bad[i] = 1
		_, err := UnmarshalPrivateMessageContent(bad, ContentTypeApplication)
		var de *DecodeError
		if !errors.As(err, &de) || de.Offset != i || de.Reason != "non-zero padding" {
			t.Fatalf("non-zero padding at %d: got %v", i, err)
		}
	}
	if _, err := UnmarshalPrivateMessageContent(enc, 0); err == nil {
		t.Fatal("content type 0 accepted")
	}
	if _, err := codec.Marshal(&PrivateMessageContent{ContentType: ContentTypeApplication, Padding: -1}); err == nil {
		t.Fatal("negative padding encoded")
	}
}

// TestEveryTypeHasASample parses types.go and checks that each struct type
// declared there (and each named slice with methods) is covered by samples,
// so a type added later cannot silently miss its round-trip and prefix tests.
func TestEveryTypeHasASample(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "types.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, s := range samples() {
		covered[reflect.TypeOf(s.v).Elem().Name()] = true
	}
	var missing []string
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.TYPE {
			continue
		}
		for _, spec := range gd.Specs {
			ts := spec.(*ast.TypeSpec)
			switch ts.Type.(type) {
			case *ast.StructType:
			case *ast.ArrayType:
				if ts.Name.Name == "KeyPackageRef" || ts.Name.Name == "ProposalRef" {
					continue // plain byte strings, encoded as opaque<V> by their users
				}
			default:
				continue
			}
			if !covered[ts.Name.Name] {
				missing = append(missing, ts.Name.Name)
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("types without a sample: %v", missing)
	}
}

// FuzzAnyStruct decodes its input as the wire type its first byte selects
// (every type in samples, including the ones no message-level target
// reaches on its own, such as GroupSecrets and PrivateMessageContent), and
// checks decode ok ⇒ encode(decode(b)) == b and Raw() == b.
func FuzzAnyStruct(f *testing.F) {
	ss := samples()
	for i, s := range ss {
		enc, err := codec.Marshal(s.v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(append([]byte{byte(i)}, enc...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		s := ss[int(data[0])%len(ss)]
		data = data[1:]
		x := s.zero()
		if err := decodeAll(x, data, x.decode); err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || de.Offset < 0 || de.Offset > len(data) {
				t.Fatalf("%s: bad error %v", s.name, err)
			}
			return
		}
		enc, err := codec.Marshal(x)
		if err != nil {
			t.Fatalf("%s: decoded but does not re-encode: %v", s.name, err)
		}
		if !bytes.Equal(enc, data) {
			t.Fatalf("%s: re-encoding differs:\n in  %x\n out %x", s.name, data, enc)
		}
		if rw, ok := x.(rawer); ok && !bytes.Equal(rw.Raw(), data) {
			t.Fatalf("%s: Raw() differs from the input", s.name)
		}
	})
}

// fixedWriter is a DataWriter of fixed data that may misstate its length.
type fixedWriter struct {
	data []byte
	n    int
}

func (w fixedWriter) Len() int { return w.n }
func (w fixedWriter) AppendTo(dst []byte) ([]byte, error) {
	return append(dst, w.data...), nil
}

// TestExtensionWriter: an extension written by its Writer encodes exactly as
// the same data held in ExtensionData, inside a list and a GroupInfo; a
// Writer whose Len is not what it writes fails the encoding.
func TestExtensionWriter(t *testing.T) {
	for _, size := range []int{0, 1, 63, 64, 16383, 16384, 300 << 10} {
		data := bytes.Repeat([]byte{0xa5}, size)
		held := GroupInfoTBS{Extensions: []Extension{
			{ExtensionType: ExtensionTypeExternalPub, ExtensionData: []byte("pub")},
			{ExtensionType: ExtensionTypeRatchetTree, ExtensionData: data},
		}, ConfirmationTag: []byte("tag"), Signer: 3}
		written := held
		written.Extensions = []Extension{held.Extensions[0], {ExtensionType: ExtensionTypeRatchetTree, Writer: fixedWriter{data, size}}}
		want, err := codec.Marshal(&held)
		if err != nil {
			t.Fatal(err)
		}
		got, err := codec.Marshal(&written)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("size %d: written %d octets (%v), held %d", size, len(got), err, len(want))
		}
		for _, n := range []int{size + 1, size - 1} {
			if n < 0 {
				continue
			}
			written.Extensions[1].Writer = fixedWriter{data, n}
			if _, err := codec.Marshal(&written); err == nil {
				t.Fatalf("size %d: a Writer announcing %d octets encoded", size, n)
			}
		}
	}
}
