// Package framing protects and unprotects MLS messages (RFC 9420, Section 6):
// it signs and verifies FramedContent, turns an AuthenticatedContent into a
// PublicMessage or PrivateMessage and back, and builds and opens the secrets of
// a Welcome (Section 12.4.3.1).
//
// # Where it sits
//
// framing is below the group state machine and above the wire, suite,
// key schedule and secret tree packages. It holds no group state of its own
// and makes no policy decisions: the caller hands it what one epoch needs in
// an Epoch (suite, GroupContext, membership_key, sender_data_secret, the
// secret tree) and a MemberKeys lookup into the epoch's ratchet tree, and
// decides itself what to do with a verified message (apply a proposal,
// check a commit's confirmation tag against the next epoch, deliver
// application data).
//
// # Sending
//
//	ac, err := framing.Sign(signer, wire.WireFormatPrivateMessage, content, groupContext)
//	// for a commit: set ac.Auth.ConfirmationTag (Section 6.1; it depends on
//	// the signature through the confirmed transcript hash, Section 8.2)
//	pm, err := epoch.ProtectPrivate(ac, padding, rand)
//
// # Receiving
//
//	ac, err := epoch.UnprotectPrivate(pm, members)   // or UnprotectPublic
//
// A returned AuthenticatedContent has passed every check of Section 6: group
// and epoch, membership tag or AEAD decryption, sender data, padding, the
// sender's right to send this content, and the signature. The one thing left
// to the caller is a commit's confirmation_tag, which is checked with the
// confirmation_key of the epoch the commit creates (Section 12.4.2).
//
// # Errors
//
// Malformed bytes are a *wire.DecodeError (errors.Is codec.ErrMalformed).
// A well-formed message that breaks a rule of RFC 9420 is a
// *ValidationError naming the check and the section, wrapping one of the
// sentinels below (ErrWrongEpoch, ErrInvalidSignature, ErrKeyReused, ...)
// and, where there is one, the lower-level cause (suite.ErrDecrypt,
// secrettree.ErrGenerationUsed, ...); test with errors.Is. Misuse of the API
// (a nil argument, a content that does not match the epoch) is a plain
// error. No error ever carries key material or plaintext.
//
// # Key consumption
//
// Unprotecting a PrivateMessage consumes its generation's key in the secret
// tree only after the content has decrypted, decoded and its signature
// verified (the key is looked up with secrettree.Tree.Peek first): a second
// message with the same generation fails with ErrKeyReused, and a message
// that fails any check leaves the secret tree exactly as it was, so the
// genuine message with that generation can still be read.
package framing
