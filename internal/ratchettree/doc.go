// Package ratchettree is the MLS ratchet tree and TreeKEM (RFC 9420,
// Sections 4, 7 and 12): the public tree every member shares, the private
// keys one member holds, and the UpdatePaths that move both forward.
//
// # The tree
//
// A Tree holds the nodes in array form (Appendix C), blank nodes as nil. It
// is built by New (a one-member group), Decode or FromNodes (the
// ratchet_tree extension, Section 12.4.3.3), and changed by the proposals
// of Section 12.1 (AddLeaf, UpdateLeaf, RemoveLeaf: Remove blanks the
// removed leaf's whole direct path and truncates, so a removed member keeps
// no key in the tree) and by UpdatePaths (CreateUpdatePath on the
// committer's side, ApplyUpdatePath on everyone else's). Encode gives the
// ratchet_tree extension back.
//
// # Staging and cost
//
// The group stages a commit on a Clone and keeps the clone only if the
// commit is accepted. Clone is cheap: nodes live in 64-slot chunks, reached
// through directories of 64 chunks, both shared copy-on-write, and the key
// indexes are persistent hash tries, so a clone copies n/4096 pointers and
// a change copies only what it touches. Each slot
// caches its subtree's tree hash (invalidated along ancestors only), the
// size of its resolution and its count of members. As a result, on a tree of
// n leaves:
//
//   - applying an UpdatePath, including the tree hash, costs O(log n)
//     hashes and key derivations; the receiver locates its ciphertext by
//     walking one path instead of computing resolutions;
//   - FreeLeaf, FilteredDirectPath and the uniqueness checks of Section 7.3
//     (FindEncryptionKey, FindSignatureKey) cost O(log n);
//   - Validate, the joiner's full check of Section 12.4.3.1, costs
//     O(n log^2 n) at worst, O(n log n) for trees without unmerged leaves.
//
// # Validation
//
// ValidateLeafNode applies Section 7.3 to a LeafNode about to enter the tree;
// Validate applies Section 12.4.3.1 to a whole tree; VerifyParentHashes is
// Section 7.9.2. Both take a Policy carrying the group's parameters, a clock
// value and the application's CredentialValidator. Failures are
// *ValidationError values wrapping one of the Err* sentinels.
//
// # Private state
//
// PrivateState holds one member's HPKE private keys by node. ApplyUpdatePath
// returns a new state with the keys of replaced nodes dropped and the
// derived ones added; CreatedPath.Private is the committer's. A joiner
// installs the Welcome's path secret with ImportPathSecret. Keys never
// appear in errors or in the state's printed form.
//
// # Concurrency
//
// A Tree is not safe for concurrent use, even for reads (hashes are filled
// in lazily). Distinct trees, including clones of one another, may be used
// from different goroutines.
package ratchettree
