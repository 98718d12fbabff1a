// Package art is an experimental implementation of the Asynchronous
// Ratcheting Tree (ART) of Cohn-Gordon, Cremers, Garratt, Millican and
// Milner, "On Ends-to-Ends Encryption: Asynchronous Group Messaging with
// Strong Security Guarantees" (ACM CCS 2018), built on the primitives of
// MLS cipher suite 1: X25519 for Diffie-Hellman, SHA-256 (HKDF through
// ExpandWithLabel) for key derivation, Ed25519 for signatures.
//
// It exists to measure ART beside mlskit's TreeKEM (see
// docs/ART-vs-TreeKEM.md). It is not part of mlskit's API, has no stability
// promise, is not wire compatible with anything (not with the paper's
// prototype, nor with any MLS draft that used ART), and has not been
// reviewed for use with real secrets. Do not use it to protect messages.
//
// # The tree
//
// A group of n members is a left-balanced binary tree with n leaves: the
// left subtree of a node over k leaves holds the largest power of two below
// k. Appending a leaf changes only the nodes on the new leaf's path, so
// adds never reshape the rest of the tree. Every node has a secret x and a
// public key g^x (X25519). A leaf's secret is its member's. A parent's
// secret is ι(DH(x_left, g^x_right)) = ι(DH(x_right, g^x_left)), where ι
// maps a DH output to a scalar (here ExpandWithLabel(·, "art node")). The
// root's secret is the tree key; each tree key is chained into the stage
// key, which is what the application would use.
//
// Nodes are numbered in order: leaf i is node 2i, and the parent whose
// left subtree ends at leaf m-1 (and right subtree starts at leaf m) is
// node 2m-1. Each split point occurs once, so the numbering is stable as
// the tree grows.
//
// # Operations
//
//   - Setup: an initiator who holds every member's prekey derives each
//     leaf secret as ι(DH(suk, EK_i)) with a fresh setup key suk, computes
//     the whole tree, and sends the public tree signed (NewGroup, Join).
//     Until a member updates, the initiator knows its leaf secret; this is
//     ART's known trade-off for asynchronous setup.
//   - Update: a member picks a fresh leaf secret, recomputes its path and
//     sends the new public keys of its path, signed (Update, Process).
//     A receiver computes from the lowest node its path shares with the
//     sender's, one DH per level.
//   - Remove: a member overwrites the removed member's leaf with a fresh
//     secret of its own choosing and sends that leaf's new path, as an
//     update on the removed member's behalf; the slot stays in the tree,
//     vacant, until an add reuses it (the tree never shrinks or blanks).
//   - Add: a member derives the new member's leaf secret from a fresh
//     ephemeral key and the new member's prekey, as setup does, puts it in
//     the first vacant slot (or a new rightmost leaf), sends the new path
//     to the group and a Welcome with the public tree to the new member.
//
// The paper proves security for static groups; add and remove follow its
// description of membership changes as updates made on another leaf's
// behalf. Messages carry an Ed25519 signature by the sender over the whole
// message; the paper's transcript MACs are omitted.
//
// # Concurrency
//
// ART has no way to merge two updates made against the same tree: a
// receiver needs the public key of every node on its path, and after two
// concurrent updates the node where the two paths meet has a public key
// that neither sender published. Messages name the stage they were made
// in; Process rejects a message for any other stage (ErrWrongStage), and
// the loser must update again on the new tree, as a TreeKEM committer does
// when its commit loses the epoch.
package art
