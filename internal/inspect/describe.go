package inspect

import (
	"fmt"
	"strconv"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/wire"
)

// This file turns decoded wire structs into Nodes, field by field in RFC
// order with the RFC's field names, and calls the checks of verify.go on
// the objects that carry something verifiable.

// env is what the enclosing message tells about a nested object: the cipher
// suite (a LeafNode does not carry one), and for objects sent by a member,
// the group and the sender's leaf, which update and commit LeafNodes sign.
type env struct {
	suite   *suite.Suite // nil when the cipher suite is not known
	groupID []byte       // nil when unknown
	sender  *uint32      // the sending member's leaf, when known
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// --- RFC 9420, Section 6 ---

func (in *inspector) mlsMessage(path string, m *wire.MLSMessage) *Node {
	n := structNode("", "MLSMessage", versionNode("version", m.Version), wireFormatNode(m.WireFormat))
	switch m.WireFormat {
	case wire.WireFormatPublicMessage:
		n.Fields = append(n.Fields, named("public_message", in.publicMessage(join(path, "public_message"), m.PublicMessage)))
	case wire.WireFormatPrivateMessage:
		n.Fields = append(n.Fields, named("private_message", in.privateMessage(join(path, "private_message"), m.PrivateMessage)))
	case wire.WireFormatWelcome:
		n.Fields = append(n.Fields, named("welcome", in.welcome(join(path, "welcome"), m.Welcome)))
	case wire.WireFormatGroupInfo:
		n.Fields = append(n.Fields, named("group_info", in.groupInfo(join(path, "group_info"), m.GroupInfo)))
	case wire.WireFormatKeyPackage:
		n.Fields = append(n.Fields, named("key_package", in.keyPackage(join(path, "key_package"), m.KeyPackage)))
	}
	return n
}

func senderNode(s *wire.Sender) *Node {
	n := structNode("sender", "Sender",
		enumNode("sender_type", "SenderType", uint64(s.SenderType), lookupName(senderTypeNames, uint64(s.SenderType), false), false))
	switch s.SenderType {
	case wire.SenderTypeMember:
		n.Fields = append(n.Fields, uintNode("leaf_index", "uint32", uint64(s.LeafIndex)))
	case wire.SenderTypeExternal:
		n.Fields = append(n.Fields, uintNode("sender_index", "uint32", uint64(s.SenderIndex)))
	}
	return n
}

// contentBody describes the content_type select shared by FramedContent
// and PrivateMessageContent (RFC 9420, Sections 6 and 6.3.1).
func (in *inspector) contentBody(path string, ct wire.ContentType, app []byte, p *wire.Proposal, c *wire.Commit, e env) *Node {
	switch ct {
	case wire.ContentTypeApplication:
		return bytesNode("application_data", "opaque<V>", app)
	case wire.ContentTypeProposal:
		return named("proposal", in.proposal(join(path, "proposal"), p, e))
	case wire.ContentTypeCommit:
		return named("commit", in.commit(join(path, "commit"), c, e))
	}
	return nil
}

// framedContent describes a FramedContent (RFC 9420, Section 6). e carries
// the suite when the caller knows it; the group and sender come from the
// content itself.
func (in *inspector) framedContent(path string, fc *wire.FramedContent, e env) *Node {
	e.groupID = fc.GroupID
	switch fc.Sender.SenderType {
	case wire.SenderTypeMember:
		l := fc.Sender.LeafIndex
		e.sender = &l
	case wire.SenderTypeNewMemberCommit:
		// The joiner's path leaf signs the leaf it will take, which the
		// group's tree tells (RFC 9420, Sections 7.3 and 12.4.3.2).
		if fc.ContentType == wire.ContentTypeCommit && fc.Commit != nil {
			if l, ok := in.externalJoinerLeaf(fc); ok {
				e.sender = &l
			}
		}
	}
	n := structNode("content", "FramedContent",
		textBytesNode("group_id", "opaque<V>", fc.GroupID),
		uintNode("epoch", "uint64", fc.Epoch),
		senderNode(&fc.Sender),
		bytesNode("authenticated_data", "opaque<V>", fc.AuthenticatedData),
		contentTypeNode(fc.ContentType))
	if b := in.contentBody(path, fc.ContentType, fc.ApplicationData, fc.Proposal, fc.Commit, e); b != nil {
		n.Fields = append(n.Fields, b)
	}
	return n
}

// authNode describes FramedContentAuthData (RFC 9420, Section 6.1).
func authNode(a *wire.FramedContentAuthData, ct wire.ContentType) *Node {
	n := structNode("auth", "FramedContentAuthData", bytesNode("signature", "opaque<V>", a.Signature))
	if ct == wire.ContentTypeCommit {
		n.Fields = append(n.Fields, bytesNode("confirmation_tag", "MAC", a.ConfirmationTag))
	}
	return n
}

// publicMessage describes a PublicMessage (RFC 9420, Section 6.2) and checks
// what can be checked without the group's secrets.
func (in *inspector) publicMessage(path string, pm *wire.PublicMessage) *Node {
	in.groupInfoFromState(pm.Content.GroupID, pm.Content.Epoch)
	e := env{suite: in.messageSuite(pm)}
	n := structNode("", "PublicMessage",
		in.framedContent(join(path, "content"), &pm.Content, e),
		authNode(&pm.Auth, pm.Content.ContentType))
	if pm.Content.Sender.SenderType == wire.SenderTypeMember {
		n.Fields = append(n.Fields, bytesNode("membership_tag", "MAC", pm.MembershipTag))
	}
	in.checkPublicMessage(path, pm, e.suite)
	if in.member != nil {
		in.processPublic(path, pm)
	}
	return n
}

// privateMessage describes a PrivateMessage (RFC 9420, Section 6.3).
func (in *inspector) privateMessage(path string, pm *wire.PrivateMessage) *Node {
	ct := bytesNode("ciphertext", "opaque<V>", pm.Ciphertext)
	if in.member != nil {
		ct.Decoded = in.decryptPrivate(path, pm)
	} else {
		in.notVerified(path, "sender and content", "6.3",
			"encrypted: decrypting needs a member's sender_data_secret and secret tree for epoch "+
				strconv.FormatUint(pm.Epoch, 10)+" (give -state)")
	}
	return structNode("", "PrivateMessage",
		textBytesNode("group_id", "opaque<V>", pm.GroupID),
		uintNode("epoch", "uint64", pm.Epoch),
		contentTypeNode(pm.ContentType),
		bytesNode("authenticated_data", "opaque<V>", pm.AuthenticatedData),
		bytesNode("encrypted_sender_data", "opaque<V>", pm.EncryptedSenderData),
		ct)
}

// authenticatedContent describes an AuthenticatedContent (RFC 9420,
// Section 6).
func (in *inspector) authenticatedContent(path string, ac *wire.AuthenticatedContent) *Node {
	return structNode("", "AuthenticatedContent",
		wireFormatNode(ac.WireFormat),
		in.framedContent(join(path, "content"), &ac.Content, env{suite: in.ctxSuite}),
		authNode(&ac.Auth, ac.Content.ContentType))
}

// senderData describes the plaintext of encrypted_sender_data (RFC 9420,
// Section 6.3.2).
func senderData(sd *wire.SenderData) *Node {
	return structNode("", "SenderData",
		uintNode("leaf_index", "uint32", uint64(sd.LeafIndex)),
		uintNode("generation", "uint32", uint64(sd.Generation)),
		bytesNode("reuse_guard", "opaque[4]", sd.ReuseGuard[:]))
}

// --- RFC 9420, Sections 5.3 and 7.2 ---

func credentialNode(name string, c *wire.Credential) *Node {
	n := structNode(name, "Credential", credentialTypeNode("credential_type", c.CredentialType))
	switch c.CredentialType {
	case wire.CredentialTypeBasic:
		n.Fields = append(n.Fields, textBytesNode("identity", "opaque<V>", c.Identity))
	case wire.CredentialTypeX509:
		items := make([]*Node, len(c.Certificates))
		for i, cert := range c.Certificates {
			items[i] = structNode("", "Certificate", bytesNode("cert_data", "opaque<V>", cert))
		}
		n.Fields = append(n.Fields, vectorNode("certificates", "Certificate<V>", items))
	default:
		// mlskit reads other credential types' bodies as opaque data<V>
		// (see wire.Credential).
		n.Fields = append(n.Fields, bytesNode("data", "opaque<V>", c.Unknown))
	}
	return n
}

func capabilitiesNode(name string, c *wire.Capabilities) *Node {
	return structNode(name, "Capabilities",
		u16List("versions", "ProtocolVersion", c.Versions, versionNode),
		u16List("cipher_suites", "CipherSuite", c.CipherSuites, cipherSuiteNode),
		u16List("extensions", "ExtensionType", c.Extensions, extensionTypeNode),
		u16List("proposals", "ProposalType", c.Proposals, proposalTypeNode),
		u16List("credentials", "CredentialType", c.Credentials, credentialTypeNode))
}

func lifetimeNode(lt *wire.Lifetime) *Node {
	return structNode("lifetime", "Lifetime",
		timeNode("not_before", lt.NotBefore),
		timeNode("not_after", lt.NotAfter))
}

func timeNode(name string, v uint64) *Node {
	n := uintNode(name, "uint64", v)
	n.Label = unixText(v)
	return n
}

// leafNode describes a LeafNode (RFC 9420, Section 7.2). Its checks depend on
// where it appears and are made by the caller.
func (in *inspector) leafNode(path string, l *wire.LeafNode) *Node {
	n := structNode("leaf_node", "LeafNode",
		bytesNode("encryption_key", "HPKEPublicKey", l.EncryptionKey),
		bytesNode("signature_key", "SignaturePublicKey", l.SignatureKey),
		credentialNode("credential", &l.Credential),
		capabilitiesNode("capabilities", &l.Capabilities),
		enumNode("leaf_node_source", "LeafNodeSource", uint64(l.LeafNodeSource),
			lookupName(leafSourceNames, uint64(l.LeafNodeSource), false), false))
	switch l.LeafNodeSource {
	case wire.LeafNodeSourceKeyPackage:
		n.Fields = append(n.Fields, lifetimeNode(&l.Lifetime))
	case wire.LeafNodeSourceCommit:
		n.Fields = append(n.Fields, bytesNode("parent_hash", "opaque<V>", l.ParentHash))
	}
	n.Fields = append(n.Fields,
		in.extensions(join(path, "extensions"), "extensions", l.Extensions),
		bytesNode("signature", "opaque<V>", l.Signature))
	return n
}

// --- RFC 9420, Section 10 ---

// keyPackage describes a KeyPackage and makes the checks of Section 10.1
// that need no group.
func (in *inspector) keyPackage(path string, kp *wire.KeyPackage) *Node {
	n := structNode("key_package", "KeyPackage",
		versionNode("version", kp.Version),
		cipherSuiteNode("cipher_suite", kp.CipherSuite),
		bytesNode("init_key", "HPKEPublicKey", kp.InitKey),
		in.leafNode(join(path, "leaf_node"), &kp.LeafNode),
		in.extensions(join(path, "extensions"), "extensions", kp.Extensions),
		bytesNode("signature", "opaque<V>", kp.Signature))
	in.checkKeyPackage(path, kp)
	return n
}

// --- RFC 9420, Section 7.2 and 13: extensions ---

// extensions describes an extension list, decoding the data of the
// extension types RFC 9420 defines (and app_data_dictionary).
func (in *inspector) extensions(path, name string, xs []wire.Extension) *Node {
	items := make([]*Node, len(xs))
	for i := range xs {
		items[i] = in.extension(index(path, i), &xs[i])
	}
	return vectorNode(name, "Extension<V>", items)
}

func (in *inspector) extension(path string, x *wire.Extension) *Node {
	data := bytesNode("extension_data", "opaque<V>", x.ExtensionData)
	var dec *Node
	var err error
	switch x.ExtensionType {
	case wire.ExtensionTypeApplicationID:
		var v *wire.ApplicationID
		if v, err = wire.Decode[wire.ApplicationID](x.ExtensionData); err == nil {
			dec = structNode("", "ApplicationID", textBytesNode("application_id", "opaque<V>", v.ApplicationID))
		}
	case wire.ExtensionTypeRatchetTree:
		var v wire.RatchetTree
		if v, err = wire.UnmarshalRatchetTree(x.ExtensionData); err == nil {
			dec = in.ratchetTree(join(path, "extension_data"), v)
		}
	case wire.ExtensionTypeRequiredCapabilities:
		var v *wire.RequiredCapabilities
		if v, err = wire.Decode[wire.RequiredCapabilities](x.ExtensionData); err == nil {
			dec = requiredCapabilitiesNode(v)
		}
	case wire.ExtensionTypeExternalPub:
		var v *wire.ExternalPub
		if v, err = wire.Decode[wire.ExternalPub](x.ExtensionData); err == nil {
			dec = structNode("", "ExternalPub", bytesNode("external_pub", "HPKEPublicKey", v.ExternalPub))
		}
	case wire.ExtensionTypeExternalSenders:
		var v *wire.ExternalSenders
		if v, err = wire.Decode[wire.ExternalSenders](x.ExtensionData); err == nil {
			dec = externalSendersNode(*v)
		}
	case extensionTypeAppDataDictionary:
		dec, err = appDataDictionary(x.ExtensionData)
	}
	if err != nil {
		data.Label = "does not decode: " + errText(err)
		in.failed(path, "extension_data decodes", extensionSection[x.ExtensionType], errText(err))
	}
	data.Decoded = dec
	return structNode("", "Extension", extensionTypeNode("extension_type", x.ExtensionType), data)
}

// extensionSection is where RFC 9420 defines each extension's data.
// app_data_dictionary is draft-ietf-mls-extensions'; 13.4 is the RFC's
// section on extensions in general.
var extensionSection = map[wire.ExtensionType]string{
	wire.ExtensionTypeApplicationID:        "5.3.3",
	wire.ExtensionTypeRatchetTree:          "12.4.3.3",
	wire.ExtensionTypeRequiredCapabilities: "11.1",
	wire.ExtensionTypeExternalPub:          "12.4.3.2",
	wire.ExtensionTypeExternalSenders:      "12.1.8.1",
	extensionTypeAppDataDictionary:         "13.4",
}

func requiredCapabilitiesNode(v *wire.RequiredCapabilities) *Node {
	return structNode("", "RequiredCapabilities",
		u16List("extension_types", "ExtensionType", v.ExtensionTypes, extensionTypeNode),
		u16List("proposal_types", "ProposalType", v.ProposalTypes, proposalTypeNode),
		u16List("credential_types", "CredentialType", v.CredentialTypes, credentialTypeNode))
}

func externalSendersNode(v wire.ExternalSenders) *Node {
	items := make([]*Node, len(v))
	for i := range v {
		items[i] = structNode("", "ExternalSender",
			bytesNode("signature_key", "SignaturePublicKey", v[i].SignatureKey),
			credentialNode("credential", &v[i].Credential))
	}
	return vectorNode("", "ExternalSender<V>", items)
}

// extensionTypeAppDataDictionary is the app_data_dictionary extension of
// draft-ietf-mls-extensions (suggested code point), which mlskit uses for
// last-resort KeyPackages.
const extensionTypeAppDataDictionary wire.ExtensionType = 0x0006

// appDataDictionary decodes ComponentData component_data<V> with
// ComponentData = {ComponentID component_id (uint16); opaque data<V>}
// (draft-ietf-mls-extensions, "Application Data Dictionary").
func appDataDictionary(data []byte) (*Node, error) {
	var items []*Node
	ok := codec.Unmarshal(data, func(r *codec.Reader) bool {
		return r.ReadList(func(r *codec.Reader) bool {
			var id uint16
			var d []byte
			if !r.ReadUint16(&id) || !r.ReadOpaque(&d) {
				return false
			}
			items = append(items, structNode("", "ComponentData",
				enumNode("component_id", "ComponentID", uint64(id), lookupName(componentNames, uint64(id), true), true),
				bytesNode("data", "opaque<V>", d)))
			return true
		})
	})
	if !ok {
		return nil, fmt.Errorf("malformed AppDataDictionary")
	}
	return vectorNode("", "ComponentData<V>", items), nil
}

// --- RFC 9420, Sections 7.1 and 12.4.3.3: the ratchet tree ---

func parentNodeNode(p *wire.ParentNode) *Node {
	items := make([]*Node, len(p.UnmergedLeaves))
	for i, l := range p.UnmergedLeaves {
		items[i] = uintNode("", "uint32", uint64(l))
	}
	return structNode("parent_node", "ParentNode",
		bytesNode("encryption_key", "HPKEPublicKey", p.EncryptionKey),
		bytesNode("parent_hash", "opaque<V>", p.ParentHash),
		vectorNode("unmerged_leaves", "uint32<V>", items))
}

func (in *inspector) treeNode(path string, nd *wire.Node) *Node {
	n := structNode("", "Node",
		enumNode("node_type", "NodeType", uint64(nd.NodeType), lookupName(nodeTypeNames, uint64(nd.NodeType), false), false))
	switch nd.NodeType {
	case wire.NodeTypeLeaf:
		n.Fields = append(n.Fields, in.leafNode(join(path, "leaf_node"), nd.LeafNode))
	case wire.NodeTypeParent:
		n.Fields = append(n.Fields, parentNodeNode(nd.ParentNode))
	}
	return n
}

// ratchetTree describes optional<Node> ratchet_tree<V>, labelling each entry
// with its node index and, for leaves, leaf index (RFC 9420, Appendix C).
func (in *inspector) ratchetTree(path string, t wire.RatchetTree) *Node {
	items := make([]*Node, len(t))
	for i, nd := range t {
		pos := "node " + strconv.Itoa(i)
		if i%2 == 0 {
			pos += ", leaf " + strconv.Itoa(i/2)
		}
		if nd == nil {
			items[i] = absentNode("", "optional<Node>")
			items[i].Label = "blank " + pos
			continue
		}
		items[i] = present(in.treeNode(index(path, i), nd))
		items[i].Label = pos
	}
	return vectorNode("", "optional<Node><V>", items)
}

// --- RFC 9420, Section 8.1 ---

func (in *inspector) groupContext(path string, gc *wire.GroupContext) *Node {
	return structNode("group_context", "GroupContext",
		versionNode("version", gc.Version),
		cipherSuiteNode("cipher_suite", gc.CipherSuite),
		textBytesNode("group_id", "opaque<V>", gc.GroupID),
		uintNode("epoch", "uint64", gc.Epoch),
		bytesNode("tree_hash", "opaque<V>", gc.TreeHash),
		bytesNode("confirmed_transcript_hash", "opaque<V>", gc.ConfirmedTranscriptHash),
		in.extensions(join(path, "extensions"), "extensions", gc.Extensions))
}

// --- RFC 9420, Section 8.4 ---

func pskIDNode(name string, p *wire.PreSharedKeyID) *Node {
	n := structNode(name, "PreSharedKeyID",
		enumNode("psktype", "PSKType", uint64(p.PSKType), lookupName(pskTypeNames, uint64(p.PSKType), false), false))
	switch p.PSKType {
	case wire.PSKTypeExternal:
		n.Fields = append(n.Fields, textBytesNode("psk_id", "opaque<V>", p.PSKID))
	case wire.PSKTypeResumption:
		n.Fields = append(n.Fields,
			enumNode("usage", "ResumptionPSKUsage", uint64(p.Usage), lookupName(pskUsageNames, uint64(p.Usage), false), false),
			textBytesNode("psk_group_id", "opaque<V>", p.PSKGroupID),
			uintNode("psk_epoch", "uint64", p.PSKEpoch))
	}
	n.Fields = append(n.Fields, bytesNode("psk_nonce", "opaque<V>", p.PSKNonce))
	return n
}

// --- RFC 9420, Section 12.1 ---

func (in *inspector) add(path string, a *wire.Add) *Node {
	return structNode("add", "Add", in.keyPackage(join(path, "key_package"), &a.KeyPackage))
}

func (in *inspector) update(path string, u *wire.Update, e env) *Node {
	lp := join(path, "leaf_node")
	n := structNode("update", "Update", in.leafNode(lp, &u.LeafNode))
	in.checkLeaf(lp, &u.LeafNode, wire.LeafNodeSourceUpdate, e)
	return n
}

func removeNode(r *wire.Remove) *Node {
	return structNode("remove", "Remove", uintNode("removed", "uint32", uint64(r.Removed)))
}

func pskProposalNode(p *wire.PreSharedKey) *Node {
	return structNode("psk", "PreSharedKey", pskIDNode("psk", &p.PSK))
}

func (in *inspector) reInit(path string, r *wire.ReInit) *Node {
	return structNode("reinit", "ReInit",
		textBytesNode("group_id", "opaque<V>", r.GroupID),
		versionNode("version", r.Version),
		cipherSuiteNode("cipher_suite", r.CipherSuite),
		in.extensions(join(path, "extensions"), "extensions", r.Extensions))
}

func externalInitNode(x *wire.ExternalInit) *Node {
	return structNode("external_init", "ExternalInit", bytesNode("kem_output", "opaque<V>", x.KEMOutput))
}

func (in *inspector) groupContextExtensions(path string, g *wire.GroupContextExtensions) *Node {
	return structNode("group_context_extensions", "GroupContextExtensions",
		in.extensions(join(path, "extensions"), "extensions", g.Extensions))
}

// proposal describes a Proposal (RFC 9420, Section 12.1) with the checks of
// what it carries (an Add's KeyPackage, an Update's LeafNode).
func (in *inspector) proposal(path string, p *wire.Proposal, e env) *Node {
	n := structNode("proposal", "Proposal", proposalTypeNode("proposal_type", p.ProposalType))
	var body *Node
	switch p.ProposalType {
	case wire.ProposalTypeAdd:
		body = in.add(join(path, "add"), p.Add)
	case wire.ProposalTypeUpdate:
		body = in.update(join(path, "update"), p.Update, e)
	case wire.ProposalTypeRemove:
		body = removeNode(p.Remove)
	case wire.ProposalTypePSK:
		body = pskProposalNode(p.PreSharedKey)
	case wire.ProposalTypeReInit:
		body = in.reInit(join(path, "reinit"), p.ReInit)
	case wire.ProposalTypeExternalInit:
		body = externalInitNode(p.ExternalInit)
	case wire.ProposalTypeGroupContextExtensions:
		body = in.groupContextExtensions(join(path, "group_context_extensions"), p.GroupContextExtensions)
	default:
		// mlskit reads other proposal types' bodies as opaque data<V>
		// (see wire.Proposal).
		body = bytesNode("data", "opaque<V>", p.Unknown)
	}
	n.Fields = append(n.Fields, body)
	return n
}

// --- RFC 9420, Sections 7.6 and 12.4 ---

func hpkeCiphertextNode(name string, c *wire.HPKECiphertext) *Node {
	return structNode(name, "HPKECiphertext",
		bytesNode("kem_output", "opaque<V>", c.KEMOutput),
		bytesNode("ciphertext", "opaque<V>", c.Ciphertext))
}

func (in *inspector) updatePath(path string, up *wire.UpdatePath, e env) *Node {
	lp := join(path, "leaf_node")
	nodes := make([]*Node, len(up.Nodes))
	for i := range up.Nodes {
		secrets := up.Nodes[i].AllSecrets()
		cts := make([]*Node, len(secrets))
		for j := range secrets {
			cts[j] = hpkeCiphertextNode("", &secrets[j])
		}
		nodes[i] = structNode("", "UpdatePathNode",
			bytesNode("encryption_key", "HPKEPublicKey", up.Nodes[i].EncryptionKey),
			vectorNode("encrypted_path_secret", "HPKECiphertext<V>", cts))
	}
	n := structNode("path", "UpdatePath", in.leafNode(lp, &up.LeafNode), vectorNode("nodes", "UpdatePathNode<V>", nodes))
	in.checkLeaf(lp, &up.LeafNode, wire.LeafNodeSourceCommit, e)
	return n
}

// commit describes a Commit (RFC 9420, Section 12.4).
func (in *inspector) commit(path string, c *wire.Commit, e env) *Node {
	pp := join(path, "proposals")
	items := make([]*Node, len(c.Proposals))
	for i := range c.Proposals {
		por := &c.Proposals[i]
		it := structNode("", "ProposalOrRef",
			enumNode("type", "ProposalOrRefType", uint64(por.Type), lookupName(proposalOrRefNames, uint64(por.Type), false), false))
		switch por.Type {
		case wire.ProposalOrRefTypeProposal:
			it.Fields = append(it.Fields, in.proposal(join(index(pp, i), "proposal"), por.Proposal, e))
		case wire.ProposalOrRefTypeReference:
			it.Fields = append(it.Fields, bytesNode("reference", "ProposalRef", por.Reference))
		}
		items[i] = it
	}
	n := structNode("commit", "Commit", vectorNode("proposals", "ProposalOrRef<V>", items))
	if c.Path == nil {
		n.Fields = append(n.Fields, absentNode("path", "optional<UpdatePath>"))
	} else {
		n.Fields = append(n.Fields, present(in.updatePath(join(path, "path"), c.Path, e)))
	}
	return n
}

// --- RFC 9420, Section 12.4.3 ---

func (in *inspector) groupInfo(path string, gi *wire.GroupInfo) *Node {
	n := structNode("group_info", "GroupInfo",
		in.groupContext(join(path, "group_context"), &gi.GroupContext),
		in.extensions(join(path, "extensions"), "extensions", gi.Extensions),
		bytesNode("confirmation_tag", "MAC", gi.ConfirmationTag),
		uintNode("signer", "uint32", uint64(gi.Signer)),
		bytesNode("signature", "opaque<V>", gi.Signature))
	in.checkGroupInfo(path, gi)
	return n
}

func groupSecretsNode(gs *wire.GroupSecrets) *Node {
	n := structNode("", "GroupSecrets", bytesNode("joiner_secret", "opaque<V>", gs.JoinerSecret))
	if gs.PathSecret == nil {
		n.Fields = append(n.Fields, absentNode("path_secret", "optional<PathSecret>"))
	} else {
		n.Fields = append(n.Fields, present(structNode("path_secret", "PathSecret",
			bytesNode("path_secret", "opaque<V>", gs.PathSecret.PathSecret))))
	}
	psks := make([]*Node, len(gs.PSKs))
	for i := range gs.PSKs {
		psks[i] = pskIDNode("", &gs.PSKs[i])
	}
	n.Fields = append(n.Fields, vectorNode("psks", "PreSharedKeyID<V>", psks))
	return n
}

func (in *inspector) welcome(path string, w *wire.Welcome) *Node {
	secrets := make([]*Node, len(w.Secrets))
	for i := range w.Secrets {
		secrets[i] = structNode("", "EncryptedGroupSecrets",
			bytesNode("new_member", "KeyPackageRef", w.Secrets[i].NewMember),
			hpkeCiphertextNode("encrypted_group_secrets", &w.Secrets[i].EncryptedGroupSecrets))
	}
	egi := bytesNode("encrypted_group_info", "opaque<V>", w.EncryptedGroupInfo)
	in.checkWelcome(path, w)
	if in.member != nil {
		in.openWelcome(path, w, secrets, egi)
	}
	return structNode("welcome", "Welcome",
		cipherSuiteNode("cipher_suite", w.CipherSuite),
		vectorNode("secrets", "EncryptedGroupSecrets<V>", secrets),
		egi)
}
