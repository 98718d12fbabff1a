package inspect

import (
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/wire"
)

// Names of enum values as the IANA registries of RFC 9420, Section 17 spell
// them. A value with no name prints as "GREASE" when it is one of the GREASE
// code points (Section 13.5) and as "unknown" otherwise, always with its
// number beside it.

// isGREASE reports whether v is one of the GREASE values 0x0A0A, 0x1A1A,
// ..., 0xEAEA (RFC 9420, Section 13.5).
func isGREASE(v uint16) bool { return v&0x0f0f == 0x0a0a && v>>8 == v&0xff && v != 0xfafa }

func lookupName(names map[uint64]string, v uint64, wide bool) string {
	if s, ok := names[v]; ok {
		return s
	}
	if wide && v <= 0xffff && isGREASE(uint16(v)) {
		return "GREASE"
	}
	return "unknown"
}

var (
	versionNames     = map[uint64]string{1: "mls10"}
	wireFormatNames  = map[uint64]string{1: "mls_public_message", 2: "mls_private_message", 3: "mls_welcome", 4: "mls_group_info", 5: "mls_key_package"}
	contentTypeNames = map[uint64]string{1: "application", 2: "proposal", 3: "commit"}
	senderTypeNames  = map[uint64]string{1: "member", 2: "external", 3: "new_member_proposal", 4: "new_member_commit"}
	leafSourceNames  = map[uint64]string{1: "key_package", 2: "update", 3: "commit"}
	credentialNames  = map[uint64]string{1: "basic", 2: "x509"}
	// app_data_dictionary is draft-ietf-mls-extensions' suggested code point,
	// which mlskit uses for last-resort KeyPackages.
	extensionNames = map[uint64]string{1: "application_id", 2: "ratchet_tree", 3: "required_capabilities",
		4: "external_pub", 5: "external_senders", 6: "app_data_dictionary"}
	proposalNames = map[uint64]string{1: "add", 2: "update", 3: "remove", 4: "psk", 5: "reinit",
		6: "external_init", 7: "group_context_extensions"}
	pskTypeNames       = map[uint64]string{1: "external", 2: "resumption"}
	pskUsageNames      = map[uint64]string{1: "application", 2: "reinit", 3: "branch"}
	nodeTypeNames      = map[uint64]string{1: "leaf", 2: "parent"}
	proposalOrRefNames = map[uint64]string{1: "proposal", 2: "reference"}
	componentNames     = map[uint64]string{4: "last_resort_key_package"}
)

func versionNode(name string, v wire.ProtocolVersion) *Node {
	return enumNode(name, "ProtocolVersion", uint64(v), lookupName(versionNames, uint64(v), true), true)
}

func cipherSuiteName(cs wire.CipherSuite) string {
	if _, err := suite.Lookup(suite.ID(cs)); err == nil {
		return suite.ID(cs).String()
	}
	if isGREASE(uint16(cs)) {
		return "GREASE"
	}
	return "unsupported"
}

func cipherSuiteNode(name string, cs wire.CipherSuite) *Node {
	return enumNode(name, "CipherSuite", uint64(cs), cipherSuiteName(cs), true)
}

func wireFormatNode(v wire.WireFormat) *Node {
	return enumNode("wire_format", "WireFormat", uint64(v), lookupName(wireFormatNames, uint64(v), true), true)
}

func contentTypeNode(v wire.ContentType) *Node {
	return enumNode("content_type", "ContentType", uint64(v), lookupName(contentTypeNames, uint64(v), false), false)
}

func extensionTypeNode(name string, v wire.ExtensionType) *Node {
	return enumNode(name, "ExtensionType", uint64(v), lookupName(extensionNames, uint64(v), true), true)
}

func proposalTypeNode(name string, v wire.ProposalType) *Node {
	return enumNode(name, "ProposalType", uint64(v), lookupName(proposalNames, uint64(v), true), true)
}

func credentialTypeNode(name string, v wire.CredentialType) *Node {
	return enumNode(name, "CredentialType", uint64(v), lookupName(credentialNames, uint64(v), true), true)
}

func u16List[T ~uint16](name, typ string, xs []T, f func(string, T) *Node) *Node {
	items := make([]*Node, len(xs))
	for i, x := range xs {
		items[i] = f("", x)
	}
	return vectorNode(name, typ+"<V>", items)
}
