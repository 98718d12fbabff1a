package wire

import "strconv"

// Names for printing enum values; an unknown value prints as its number.

func enumString(names []string, v int, typ string) string {
	if v >= 0 && v < len(names) && names[v] != "" {
		return names[v]
	}
	return typ + "(" + strconv.Itoa(v) + ")"
}

var wireFormatNames = []string{1: "mls_public_message", 2: "mls_private_message", 3: "mls_welcome",
	4: "mls_group_info", 5: "mls_key_package"}

func (v WireFormat) String() string { return enumString(wireFormatNames, int(v), "WireFormat") }

// Known reports whether v is one of the RFC 9420 wire formats.
func (v WireFormat) Known() bool { return v >= WireFormatPublicMessage && v <= WireFormatKeyPackage }

var contentTypeNames = []string{1: "application", 2: "proposal", 3: "commit"}

func (v ContentType) String() string { return enumString(contentTypeNames, int(v), "ContentType") }

// Known reports whether v is one of the RFC 9420 content types.
func (v ContentType) Known() bool { return validContentType(v) }

var senderTypeNames = []string{1: "member", 2: "external", 3: "new_member_proposal", 4: "new_member_commit"}

func (v SenderType) String() string { return enumString(senderTypeNames, int(v), "SenderType") }

// Known reports whether v is one of the RFC 9420 sender types.
func (v SenderType) Known() bool { return v >= SenderTypeMember && v <= SenderTypeNewMemberCommit }

var leafNodeSourceNames = []string{1: "key_package", 2: "update", 3: "commit"}

func (v LeafNodeSource) String() string {
	return enumString(leafNodeSourceNames, int(v), "LeafNodeSource")
}

var credentialTypeNames = []string{1: "basic", 2: "x509"}

func (v CredentialType) String() string {
	return enumString(credentialTypeNames, int(v), "CredentialType")
}

var extensionTypeNames = []string{1: "application_id", 2: "ratchet_tree", 3: "required_capabilities",
	4: "external_pub", 5: "external_senders"}

func (v ExtensionType) String() string {
	return enumString(extensionTypeNames, int(v), "ExtensionType")
}

var proposalTypeNames = []string{1: "add", 2: "update", 3: "remove", 4: "psk", 5: "reinit",
	6: "external_init", 7: "group_context_extensions"}

func (v ProposalType) String() string { return enumString(proposalTypeNames, int(v), "ProposalType") }

// Known reports whether v is one of the proposal types RFC 9420 defines
// (whose bodies this package decodes rather than keeping as Unknown).
func (v ProposalType) Known() bool {
	return v >= ProposalTypeAdd && v <= ProposalTypeGroupContextExtensions
}

var pskTypeNames = []string{1: "external", 2: "resumption"}

func (v PSKType) String() string { return enumString(pskTypeNames, int(v), "PSKType") }

var resumptionPSKUsageNames = []string{1: "application", 2: "reinit", 3: "branch"}

func (v ResumptionPSKUsage) String() string {
	return enumString(resumptionPSKUsageNames, int(v), "ResumptionPSKUsage")
}

var nodeTypeNames = []string{1: "leaf", 2: "parent"}

func (v NodeType) String() string { return enumString(nodeTypeNames, int(v), "NodeType") }

var proposalOrRefTypeNames = []string{1: "proposal", 2: "reference"}

func (v ProposalOrRefType) String() string {
	return enumString(proposalOrRefTypeNames, int(v), "ProposalOrRefType")
}

func (v ProtocolVersion) String() string {
	if v == ProtocolVersionMLS10 {
		return "mls10"
	}
	return "ProtocolVersion(" + strconv.Itoa(int(v)) + ")"
}
