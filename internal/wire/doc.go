// Package wire declares every RFC 9420 wire struct and encodes and decodes it.
// It is syntax only: no cryptography and no policy beyond what the encoding
// itself forces.
//
// # Encoding
//
// Every struct has Marshal(*codec.Builder) and Unmarshal(*codec.Reader) bool,
// with fields in RFC order. A few structs are parts of a select whose
// discriminant lives in an enclosing struct (FramedContentAuthData and
// PrivateMessageContent need the content type); they carry that
// discriminant in a field that is not encoded and must be set before
// Unmarshal.
//
// # Decoding
//
// Package-level functions such as UnmarshalMLSMessage decode a complete
// message, reject trailing bytes, and return a *DecodeError wrapping
// codec.ErrMalformed. They copy their input once, and the decoded value's
// byte slices point into that copy.
//
// The Unmarshal methods do not copy: byte slices in the decoded value alias
// the Reader's input. Give them a buffer you will not reuse, or use the
// package-level functions.
//
// # Received bytes
//
// Structs that are hashed or signed (KeyPackage, LeafNode, GroupInfo,
// PublicMessage, AuthenticatedContent, Proposal, Commit, UpdatePath) keep the
// exact bytes they were decoded from, returned by Raw. Raw is not updated
// when fields change. Because the encoding is canonical (minimal varints,
// strict presence octets), Marshal of an unmodified decoded value reproduces
// Raw.
//
// # Extensibility
//
// Values the RFC makes extensible and that sit in a length-delimited context
// (extension types, capability lists, GREASE values, cipher suites) are kept
// whatever their value. Values whose arm cannot be parsed without knowing them
// (wire format, sender type, content type, leaf node source, PSK type, node
// type, ProposalOrRef type) are malformed when unknown. Unknown proposal and
// credential types are encoded as opaque data<V>; see Proposal and Credential.
package wire
