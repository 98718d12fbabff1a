// Package inspect decodes any MLS object and describes it for people: the
// structure with RFC 9420's field names, enum values by name, byte strings
// with their lengths, and the outcome of every check that can be made
// without the group's secrets. It backs the "mls inspect" command and does
// no I/O: input bytes, the current time and any context come in as arguments.
//
// # Decoding
//
// Inspect decodes its input as one type only: MLSMessage unless the caller
// names another struct (Types lists them). It never tries other types on
// its own, because several bare structs can decode from the same bytes and a
// wrong guess would mislead. Malformed input gives the *wire.DecodeError of
// the wire package: the type, the byte offset and the reason.
//
// # Checks
//
// Each Check names what was checked, where in the object (a path such as
// "key_package.leaf_node"), the section of RFC 9420 that requires it and
// the outcome: ok, failed, or not verified with the reason (a secret only
// members hold, or context the caller did not give). The checks are:
//
//   - KeyPackage (Section 10.1): signature, the leaf's signature and source,
//     lifetime against Context.Now, init_key != encryption_key, and the
//     KeyPackageRef (Section 5.2).
//   - LeafNode (Sections 7.2, 7.3): source, signature (update and commit
//     leaves sign the group id and leaf index, known inside a message from a
//     member), capabilities covering the leaf's credential and extensions.
//   - GroupInfo (Section 12.4.3.1), with the tree from its ratchet_tree
//     extension or Context.Tree: tree structure, tree hash against the
//     GroupContext, parent hashes, leaf signatures and lifetimes, the full
//     tree validation with every credential accepted, and the signature.
//   - PublicMessage (Sections 6.1, 6.2), with Context.GroupInfo: whether the
//     sender may send the content, the signature with the sender's key (from
//     the tree, the external_senders extension or the message), the
//     ProposalRef of a proposal, and validity against the group as a public
//     observer (mls.PublicGroup) for proposals and commits by value.
//   - Welcome: the size of each new_member reference.
//
// Membership tags, confirmation tags and everything encrypted need a
// member's epoch secrets and are reported as not verified, unless
// Context.Member gives a client's state (member.go): then a PrivateMessage
// of its group is decrypted, a PublicMessage processed (membership and
// confirmation tags), a GroupInfo's confirmation_tag compared with the one
// the member computed in that epoch, and a Welcome to one of its
// KeyPackages opened. Without Context.GroupInfo, the member's own group
// info for a PublicMessage's epoch stands in for it.
//
// An external commit's path leaf signs the leaf its joiner takes; with
// Context.GroupInfo of the commit's epoch that leaf is known (the leftmost
// blank one once the commit's Removes apply), so the signature is checked.
//
// # Output
//
// Report.Text renders indented text (long byte strings abbreviated unless
// asked otherwise); Report.JSON renders the same content as JSON, with byte
// strings in full.
package inspect
