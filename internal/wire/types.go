package wire

// This file declares every wire struct and enum of RFC 9420 that mlskit
// encodes or decodes. The codecs live beside it (one file per RFC area).
// Field names follow the RFC's names in Go casing, in RFC order.
//
// Byte-string fields are plain []byte. A field that appears only under one
// arm of a select is left at its zero value under the other arms and is
// ignored by Marshal.

// ProtocolVersion is the MLS protocol version. RFC 9420, Section 6.
type ProtocolVersion uint16

// ProtocolVersionMLS10 is the only version defined (mls10).
const ProtocolVersionMLS10 ProtocolVersion = 1

// CipherSuite is an MLS cipher suite identifier. RFC 9420, Section 17.1.
type CipherSuite uint16

// WireFormat says which message an MLSMessage carries. RFC 9420, Section 6.
type WireFormat uint16

// Wire formats. RFC 9420, Section 17.2.
const (
	WireFormatPublicMessage  WireFormat = 1
	WireFormatPrivateMessage WireFormat = 2
	WireFormatWelcome        WireFormat = 3
	WireFormatGroupInfo      WireFormat = 4
	WireFormatKeyPackage     WireFormat = 5
)

// ContentType says what a FramedContent carries. RFC 9420, Section 6.
type ContentType uint8

// Content types. RFC 9420, Section 6.
const (
	ContentTypeApplication ContentType = 1
	ContentTypeProposal    ContentType = 2
	ContentTypeCommit      ContentType = 3
)

// SenderType says who sent a message. RFC 9420, Section 6.
type SenderType uint8

// Sender types. RFC 9420, Section 6.
const (
	SenderTypeMember            SenderType = 1
	SenderTypeExternal          SenderType = 2
	SenderTypeNewMemberProposal SenderType = 3
	SenderTypeNewMemberCommit   SenderType = 4
)

// LeafNodeSource says where a LeafNode came from. RFC 9420, Section 7.2.
type LeafNodeSource uint8

// Leaf node sources. RFC 9420, Section 7.2.
const (
	LeafNodeSourceKeyPackage LeafNodeSource = 1
	LeafNodeSourceUpdate     LeafNodeSource = 2
	LeafNodeSourceCommit     LeafNodeSource = 3
)

// CredentialType identifies a credential format. RFC 9420, Section 5.3.
type CredentialType uint16

// Credential types. RFC 9420, Section 17.5.
const (
	CredentialTypeBasic CredentialType = 1
	CredentialTypeX509  CredentialType = 2
)

// ExtensionType identifies an extension. RFC 9420, Section 7.2.
type ExtensionType uint16

// Extension types. RFC 9420, Section 17.3.
//
// There is deliberately no last_resort constant: the version of
// draft-ietf-mls-extensions this project follows
// (/work/shared/spec/draft-ietf-mls-extensions.md) no longer defines a
// last_resort extension type; it defines last_resort_key_package as
// component 0x0004 inside the app_data_dictionary extension (suggested
// extension type 0x0006), which is opaque extension data at this layer.
const (
	ExtensionTypeApplicationID        ExtensionType = 1
	ExtensionTypeRatchetTree          ExtensionType = 2
	ExtensionTypeRequiredCapabilities ExtensionType = 3
	ExtensionTypeExternalPub          ExtensionType = 4
	ExtensionTypeExternalSenders      ExtensionType = 5
)

// ProposalType identifies a proposal. RFC 9420, Section 12.1.
type ProposalType uint16

// Proposal types. RFC 9420, Section 17.4.
const (
	ProposalTypeAdd                    ProposalType = 1
	ProposalTypeUpdate                 ProposalType = 2
	ProposalTypeRemove                 ProposalType = 3
	ProposalTypePSK                    ProposalType = 4
	ProposalTypeReInit                 ProposalType = 5
	ProposalTypeExternalInit           ProposalType = 6
	ProposalTypeGroupContextExtensions ProposalType = 7
)

// PSKType says which kind of pre-shared key a PreSharedKeyID names.
// RFC 9420, Section 8.4.
type PSKType uint8

// PSK types. RFC 9420, Section 8.4.
const (
	PSKTypeExternal   PSKType = 1
	PSKTypeResumption PSKType = 2
)

// ResumptionPSKUsage says why a resumption PSK is used. RFC 9420, Section 8.4.
type ResumptionPSKUsage uint8

// Resumption PSK usages. RFC 9420, Section 8.4.
const (
	ResumptionPSKUsageApplication ResumptionPSKUsage = 1
	ResumptionPSKUsageReInit      ResumptionPSKUsage = 2
	ResumptionPSKUsageBranch      ResumptionPSKUsage = 3
)

// NodeType says whether a tree node is a leaf or a parent. RFC 9420,
// Section 7.8 and Section 12.4.3.3.
type NodeType uint8

// Node types. RFC 9420, Section 7.8.
const (
	NodeTypeLeaf   NodeType = 1
	NodeTypeParent NodeType = 2
)

// ProposalOrRefType says whether a Commit carries a proposal inline or by
// reference. RFC 9420, Section 12.4.
type ProposalOrRefType uint8

// ProposalOrRef types. RFC 9420, Section 12.4.
const (
	ProposalOrRefTypeProposal  ProposalOrRefType = 1
	ProposalOrRefTypeReference ProposalOrRefType = 2
)

// KeyPackageRef is a KeyPackage's RefHash (HashReference, opaque<V>).
// RFC 9420, Section 5.2.
type KeyPackageRef []byte

// ProposalRef is a proposal's RefHash over its AuthenticatedContent
// (HashReference, opaque<V>). RFC 9420, Section 5.2.
type ProposalRef []byte

// SignContent is the input to SignWithLabel. RFC 9420, Section 5.1.2.
type SignContent struct {
	Label   []byte
	Content []byte
}

// EncryptContext is the HPKE info of EncryptWithLabel. RFC 9420, Section 5.1.3.
type EncryptContext struct {
	Label   []byte
	Context []byte
}

// RefHashInput is the input to RefHash. RFC 9420, Section 5.2.
type RefHashInput struct {
	Label []byte
	Value []byte
}

// KDFLabel is the info of ExpandWithLabel. RFC 9420, Section 8.
type KDFLabel struct {
	Length  uint16
	Label   []byte
	Context []byte
}

// Credential binds an identity to a signature key. RFC 9420, Section 5.3.
//
// RFC 9420's select over credential_type has no length prefix, so the body of
// a credential type this package does not know cannot be skipped. Like mls-rs
// and OpenMLS, mlskit encodes the body of any other credential type as
// opaque data<V> and keeps it in Unknown (Sections 5.3 and 17.5 leave new
// types' encodings to the documents that define them).
type Credential struct {
	CredentialType CredentialType
	Identity       []byte   // basic: opaque identity<V>
	Certificates   [][]byte // x509: Certificate certificates<V>, each cert_data
	Unknown        []byte   // any other type: opaque data<V>
}

// Capabilities lists what a client supports. RFC 9420, Section 7.2.
// Unknown and GREASE values are kept as they arrived.
type Capabilities struct {
	Versions     []ProtocolVersion
	CipherSuites []CipherSuite
	Extensions   []ExtensionType
	Proposals    []ProposalType
	Credentials  []CredentialType
}

// Lifetime bounds a KeyPackage's validity in seconds since the Unix epoch.
// RFC 9420, Section 7.2.
type Lifetime struct {
	NotBefore uint64
	NotAfter  uint64
}

// Extension is a typed opaque blob. RFC 9420, Section 7.2.
type Extension struct {
	ExtensionType ExtensionType
	ExtensionData []byte
	// Writer, when not nil, writes the extension's data straight into the
	// encoding that holds the extension, in place of ExtensionData (then
	// nil): a GroupInfo's ratchet tree, megabytes in a large group, is not
	// built apart and copied in. Decoders never set it.
	Writer DataWriter
}

// DataWriter writes an extension's data on demand (Extension.Writer).
type DataWriter interface {
	// Len is the length of the data AppendTo appends.
	Len() int
	// AppendTo appends the data to dst.
	AppendTo(dst []byte) ([]byte, error)
}

// LeafNode is a member's leaf in the ratchet tree. RFC 9420, Section 7.2.
type LeafNode struct {
	EncryptionKey  []byte // HPKEPublicKey
	SignatureKey   []byte // SignaturePublicKey
	Credential     Credential
	Capabilities   Capabilities
	LeafNodeSource LeafNodeSource
	Lifetime       Lifetime // key_package only
	ParentHash     []byte   // commit only
	Extensions     []Extension
	Signature      []byte

	raw []byte // encoding as received; see Raw
}

// LeafNodeTBS is what a LeafNode's signature covers. GroupID and LeafIndex
// are encoded only for the update and commit sources. RFC 9420, Section 7.2.
type LeafNodeTBS struct {
	EncryptionKey  []byte
	SignatureKey   []byte
	Credential     Credential
	Capabilities   Capabilities
	LeafNodeSource LeafNodeSource
	Lifetime       Lifetime // key_package only
	ParentHash     []byte   // commit only
	Extensions     []Extension
	GroupID        []byte // update and commit only
	LeafIndex      uint32 // update and commit only
}

// KeyPackage advertises a client for asynchronous adds. RFC 9420, Section 10.
type KeyPackage struct {
	Version     ProtocolVersion
	CipherSuite CipherSuite
	InitKey     []byte // HPKEPublicKey
	LeafNode    LeafNode
	Extensions  []Extension
	Signature   []byte

	raw []byte
}

// KeyPackageTBS is what a KeyPackage's signature covers. RFC 9420, Section 10.
type KeyPackageTBS struct {
	Version     ProtocolVersion
	CipherSuite CipherSuite
	InitKey     []byte
	LeafNode    LeafNode
	Extensions  []Extension
}

// ParentNode is an interior node of the ratchet tree. RFC 9420, Section 7.1.
type ParentNode struct {
	EncryptionKey  []byte // HPKEPublicKey
	ParentHash     []byte
	UnmergedLeaves []uint32
}

// Node is a non-blank ratchet tree node. RFC 9420, Section 12.4.3.3.
type Node struct {
	NodeType   NodeType
	LeafNode   *LeafNode   // NodeTypeLeaf
	ParentNode *ParentNode // NodeTypeParent
}

// RatchetTree is optional<Node> ratchet_tree<V>, the ratchet_tree extension's
// data: one entry per node in array order, nil for a blank node.
// RFC 9420, Section 12.4.3.3.
type RatchetTree []*Node

// SparseRatchetTree is the same ratchet_tree extension data with only its
// non-blank nodes kept, each with its index. A blank node takes one octet
// on the wire, so a RatchetTree can be hundreds of times the size of the
// bytes it came from; a SparseRatchetTree grows with the bytes (issue 12,
// finding 7). RFC 9420, Section 12.4.3.3.
type SparseRatchetTree struct {
	Width uint32        // nodes listed, blank or not
	Nodes []IndexedNode // the non-blank ones, in increasing Index order
}

// HPKECiphertext is an HPKE encapsulation and ciphertext. RFC 9420, Section 7.6.
type HPKECiphertext struct {
	KEMOutput  []byte
	Ciphertext []byte
}

// UpdatePathNode is one copath node's new public key and encrypted path
// secrets (encrypted_path_secret: Secrets, Secret, SetSecrets). RFC 9420,
// Section 7.6.
//
// A decoded node keeps its ciphertexts as received, each checked by the
// decoder and read where it lies when asked for: a commit to a sparse tree
// of n members holds about n of them, and a receiver opens one.
type UpdatePathNode struct {
	EncryptionKey []byte

	cts    []HPKECiphertext // as built (SetSecrets)
	sealed []byte           // or as received: the vector's content,
	n      int              // holding n well-formed HPKECiphertexts
}

// UpdatePath is a committer's new direct path. RFC 9420, Section 7.6.
type UpdatePath struct {
	LeafNode LeafNode
	Nodes    []UpdatePathNode

	raw []byte
}

// ParentHashInput is hashed to compute a parent hash. RFC 9420, Section 7.9.
type ParentHashInput struct {
	EncryptionKey           []byte
	ParentHash              []byte
	OriginalSiblingTreeHash []byte
}

// LeafNodeHashInput is the leaf arm of TreeHashInput. RFC 9420, Section 7.8.
type LeafNodeHashInput struct {
	LeafIndex uint32
	LeafNode  *LeafNode // nil for a blank leaf
}

// ParentNodeHashInput is the parent arm of TreeHashInput. RFC 9420, Section 7.8.
type ParentNodeHashInput struct {
	ParentNode *ParentNode // nil for a blank parent
	LeftHash   []byte
	RightHash  []byte
}

// TreeHashInput is hashed to compute a tree hash. RFC 9420, Section 7.8.
type TreeHashInput struct {
	NodeType   NodeType
	LeafNode   *LeafNodeHashInput   // NodeTypeLeaf
	ParentNode *ParentNodeHashInput // NodeTypeParent
}

// GroupContext is the group's shared state summary. RFC 9420, Section 8.1.
type GroupContext struct {
	Version                 ProtocolVersion
	CipherSuite             CipherSuite
	GroupID                 []byte
	Epoch                   uint64
	TreeHash                []byte
	ConfirmedTranscriptHash []byte
	Extensions              []Extension
}

// PreSharedKeyID names a PSK. RFC 9420, Section 8.4.
type PreSharedKeyID struct {
	PSKType    PSKType
	PSKID      []byte             // external
	Usage      ResumptionPSKUsage // resumption
	PSKGroupID []byte             // resumption
	PSKEpoch   uint64             // resumption
	PSKNonce   []byte
}

// PSKLabel is the context of a PSK's derivation. RFC 9420, Section 8.4.
type PSKLabel struct {
	ID    PreSharedKeyID
	Index uint16
	Count uint16
}

// Sender identifies the sender of a message. RFC 9420, Section 6.
type Sender struct {
	SenderType  SenderType
	LeafIndex   uint32 // member
	SenderIndex uint32 // external
}

// FramedContent is the content of a handshake or application message.
// RFC 9420, Section 6.
type FramedContent struct {
	GroupID           []byte
	Epoch             uint64
	Sender            Sender
	AuthenticatedData []byte
	ContentType       ContentType
	ApplicationData   []byte    // application
	Proposal          *Proposal // proposal
	Commit            *Commit   // commit

	// receivedBody is the body's encoding as received; see
	// SetReceivedBody.
	receivedBody []byte
}

// FramedContentAuthData authenticates a FramedContent. RFC 9420, Section 6.1.
//
// ContentType is not encoded: it is the select's discriminant
// (FramedContent.content_type), which decides whether ConfirmationTag is on
// the wire. Set it before calling Unmarshal; the enclosing structs set it.
type FramedContentAuthData struct {
	ContentType     ContentType // not on the wire
	Signature       []byte
	ConfirmationTag []byte // commit only (MAC)
}

// FramedContentTBS is what a FramedContent's signature covers. Context is
// encoded only for member and new_member_commit senders. RFC 9420, Section 6.1.
type FramedContentTBS struct {
	Version    ProtocolVersion
	WireFormat WireFormat
	Content    FramedContent
	Context    *GroupContext
}

// AuthenticatedContent is a signed FramedContent with its wire format; its
// encoding is what proposal references hash. RFC 9420, Section 6.
type AuthenticatedContent struct {
	WireFormat WireFormat
	Content    FramedContent
	Auth       FramedContentAuthData

	raw []byte
}

// AuthenticatedContentTBM is what a PublicMessage's membership tag covers.
// RFC 9420, Section 6.2.
type AuthenticatedContentTBM struct {
	ContentTBS FramedContentTBS
	Auth       FramedContentAuthData
}

// PublicMessage is a signed, unencrypted message. MembershipTag is present
// only for member senders. RFC 9420, Section 6.2.
type PublicMessage struct {
	Content       FramedContent
	Auth          FramedContentAuthData
	MembershipTag []byte // member only (MAC)

	raw        []byte // whole PublicMessage as received
	contentRaw []byte // content || auth as received
}

// PrivateMessage is an encrypted message. RFC 9420, Section 6.3.
type PrivateMessage struct {
	GroupID             []byte
	Epoch               uint64
	ContentType         ContentType
	AuthenticatedData   []byte
	EncryptedSenderData []byte
	Ciphertext          []byte
}

// PrivateMessageContent is the plaintext of PrivateMessage.ciphertext.
// RFC 9420, Section 6.3.1.
//
// ContentType is not encoded: it comes from PrivateMessage.content_type and
// must be set before Unmarshal. Padding is the number of trailing zero
// octets; decoding rejects any non-zero padding octet.
type PrivateMessageContent struct {
	ContentType     ContentType // not on the wire
	ApplicationData []byte      // application
	Proposal        *Proposal   // proposal
	Commit          *Commit     // commit
	Auth            FramedContentAuthData
	Padding         int
}

// PrivateContentAAD is the AEAD associated data of PrivateMessage.ciphertext.
// RFC 9420, Section 6.3.1.
type PrivateContentAAD struct {
	GroupID           []byte
	Epoch             uint64
	ContentType       ContentType
	AuthenticatedData []byte
}

// SenderData is the plaintext of PrivateMessage.encrypted_sender_data.
// RFC 9420, Section 6.3.2.
type SenderData struct {
	LeafIndex  uint32
	Generation uint32
	ReuseGuard [4]byte
}

// SenderDataAAD is the AEAD associated data of the sender data.
// RFC 9420, Section 6.3.2.
type SenderDataAAD struct {
	GroupID     []byte
	Epoch       uint64
	ContentType ContentType
}

// MLSMessage is the outer message of every MLS wire format. Exactly one body
// pointer, the one WireFormat selects, is set. RFC 9420, Section 6.
type MLSMessage struct {
	Version        ProtocolVersion
	WireFormat     WireFormat
	PublicMessage  *PublicMessage
	PrivateMessage *PrivateMessage
	Welcome        *Welcome
	GroupInfo      *GroupInfo
	KeyPackage     *KeyPackage
}

// ConfirmedTranscriptHashInput is hashed into the confirmed transcript hash.
// RFC 9420, Section 8.2.
type ConfirmedTranscriptHashInput struct {
	WireFormat WireFormat
	Content    FramedContent // with content_type == commit
	Signature  []byte
}

// InterimTranscriptHashInput is hashed into the interim transcript hash.
// RFC 9420, Section 8.2.
type InterimTranscriptHashInput struct {
	ConfirmationTag []byte
}

// Proposal proposes a change to the group. RFC 9420, Section 12.1.
//
// Exactly one body pointer, the one ProposalType selects, is set. RFC 9420's
// select has no length prefix, so the body of an unknown proposal type cannot
// be skipped; like mls-rs and OpenMLS, mlskit encodes the body of any proposal
// type other than 1..7 as opaque data<V> and keeps it in Unknown (Sections
// 12.1 and 17.4 leave new types' encodings to their defining documents).
type Proposal struct {
	ProposalType           ProposalType
	Add                    *Add
	Update                 *Update
	Remove                 *Remove
	PreSharedKey           *PreSharedKey
	ReInit                 *ReInit
	ExternalInit           *ExternalInit
	GroupContextExtensions *GroupContextExtensions
	Unknown                []byte // other types: opaque data<V>

	raw []byte
}

// Add proposes adding a member. RFC 9420, Section 12.1.1.
type Add struct {
	KeyPackage KeyPackage
}

// Update proposes replacing the sender's leaf. RFC 9420, Section 12.1.2.
type Update struct {
	LeafNode LeafNode
}

// Remove proposes removing a member. RFC 9420, Section 12.1.3.
type Remove struct {
	Removed uint32
}

// PreSharedKey proposes injecting a PSK. RFC 9420, Section 12.1.4.
type PreSharedKey struct {
	PSK PreSharedKeyID
}

// ReInit proposes reinitializing the group. RFC 9420, Section 12.1.5.
type ReInit struct {
	GroupID     []byte
	Version     ProtocolVersion
	CipherSuite CipherSuite
	Extensions  []Extension
}

// ExternalInit carries an external joiner's KEM output. RFC 9420, Section 12.1.6.
type ExternalInit struct {
	KEMOutput []byte
}

// GroupContextExtensions proposes new group context extensions.
// RFC 9420, Section 12.1.7.
type GroupContextExtensions struct {
	Extensions []Extension
}

// ExternalSender is one entry of the external_senders extension.
// RFC 9420, Section 12.1.8.1.
type ExternalSender struct {
	SignatureKey []byte
	Credential   Credential
}

// ExternalSenders is the external_senders extension's data:
// ExternalSender external_senders<V>. RFC 9420, Section 12.1.8.1.
type ExternalSenders []ExternalSender

// RequiredCapabilities is the required_capabilities extension's data.
// RFC 9420, Section 11.1.
type RequiredCapabilities struct {
	ExtensionTypes  []ExtensionType
	ProposalTypes   []ProposalType
	CredentialTypes []CredentialType
}

// ExternalPub is the external_pub extension's data. RFC 9420, Section 12.4.3.2.
type ExternalPub struct {
	ExternalPub []byte
}

// ApplicationID is the application_id extension's data (opaque
// application_id<V>). RFC 9420, Section 5.3.3.
type ApplicationID struct {
	ApplicationID []byte
}

// ProposalOrRef is one proposal of a Commit. RFC 9420, Section 12.4.
type ProposalOrRef struct {
	Type      ProposalOrRefType
	Proposal  *Proposal   // ProposalOrRefTypeProposal
	Reference ProposalRef // ProposalOrRefTypeReference
}

// Commit commits proposals and optionally a new path. RFC 9420, Section 12.4.
type Commit struct {
	Proposals []ProposalOrRef
	Path      *UpdatePath // optional

	raw []byte
}

// GroupInfo describes a group for joiners. RFC 9420, Section 12.4.3.
type GroupInfo struct {
	GroupContext    GroupContext
	Extensions      []Extension
	ConfirmationTag []byte // MAC
	Signer          uint32
	Signature       []byte

	raw []byte
}

// GroupInfoTBS is what a GroupInfo's signature covers. RFC 9420, Section 12.4.3.
type GroupInfoTBS struct {
	GroupContext    GroupContext
	Extensions      []Extension
	ConfirmationTag []byte
	Signer          uint32
}

// PathSecret is a path secret sent to a joiner. RFC 9420, Section 12.4.3.1.
type PathSecret struct {
	PathSecret []byte
}

// GroupSecrets is the plaintext of EncryptedGroupSecrets. RFC 9420,
// Section 12.4.3.1.
type GroupSecrets struct {
	JoinerSecret []byte
	PathSecret   *PathSecret // optional
	PSKs         []PreSharedKeyID
}

// EncryptedGroupSecrets is the group secrets encrypted to one new member.
// RFC 9420, Section 12.4.3.1.
type EncryptedGroupSecrets struct {
	NewMember             KeyPackageRef
	EncryptedGroupSecrets HPKECiphertext
}

// Welcome brings new members into a group. RFC 9420, Section 12.4.3.1.
type Welcome struct {
	CipherSuite        CipherSuite
	Secrets            []EncryptedGroupSecrets
	EncryptedGroupInfo []byte
}
