// Package keyschedule is the MLS key schedule of RFC 9420, Section 8: the
// per-epoch derivation from init_secret, commit_secret, psk_secret and the
// GroupContext to joiner_secret, welcome_secret, epoch_secret and the secrets
// derived from it; pre-shared keys (Section 8.4); the exporter (Section 8.5);
// the external key pair (Section 8.3); the transcript hashes and confirmation
// tag (Section 8.2); and the sender-data key and nonce of Section 6.3.2.
//
// # Stages
//
// As in crypto/tls's TLS 1.3 key schedule, each stage is its own type, so a
// secret cannot be fed to the wrong step:
//
//	init_secret[n-1], commit_secret, GroupContext[n]
//	    -> NewJoinerSecret              (members and external joiners)
//	joiner_secret                       (new members: JoinerSecretFromBytes, from GroupSecrets)
//	    -> (*JoinerSecret).WithPSK(psk_secret)
//	MemberSecret                        KDF.Extract(joiner_secret, psk_secret)
//	    -> WelcomeSecret, WelcomeKeyNonce (Section 12.4.3.1)
//	    -> (*MemberSecret).Epoch(GroupContext[n])
//	Epoch                               every secret of the "Epoch-Derived Secrets" table
//
// RFC 9420 leaves KDF.Extract(joiner_secret, psk_secret) unnamed; mlskit calls
// it the member secret, its name in earlier drafts of the protocol.
//
// # Deletion
//
// epoch_secret itself is never stored: Epoch derives every secret from it and
// erases it. Each stage has Erase, for the caller to call once the stage is
// consumed (RFC 9420, Section 9.2). Secrets print as "[redacted]".
package keyschedule

import (
	"errors"

	"github.com/mlskit/mlskit/internal/suite"
)

// Labels of the key schedule (RFC 9420, Sections 6.3.2, 8, 8.4, 8.5 and
// 12.4.3.1). ExpandWithLabel prefixes each with "MLS 1.0 ".
const (
	labelJoiner         = "joiner"
	labelWelcome        = "welcome"
	labelEpoch          = "epoch"
	labelInit           = "init"
	labelSenderData     = "sender data"
	labelEncryption     = "encryption"
	labelExporter       = "exporter"
	labelExternal       = "external"
	labelConfirm        = "confirm"
	labelMembership     = "membership"
	labelResumption     = "resumption"
	labelAuthentication = "authentication"
	labelExported       = "exported"
	labelDerivedPSK     = "derived psk"
)

// Observe, when set, is called with each secret the key schedule is given
// or derives before epoch_secret (init_secret, commit_secret, psk_secret,
// joiner_secret, the member secret, welcome_secret), under its RFC name.
// It exists for tests that check the callers erase each one once used
// (RFC 9420, Section 9.2); it must be nil otherwise, and is not safe to set
// while key schedules run.
var Observe func(name string, s Secret)

func observe(name string, s Secret) {
	if Observe != nil && len(s) > 0 {
		Observe(name, s)
	}
}

// errLength: a requested output length the KDF cannot produce.
var errLength = errors.New("mls: requested secret length out of range")

// zeroIfEmpty returns v, or Nh zero bytes when v is empty: RFC 9420, Section
// 8 uses the all-zero vector of length KDF.Nh for an absent commit_secret or
// psk_secret ("0" in the key schedule diagram). An empty IKM and an all-zero
// one give different outputs, so the substitution matters.
func zeroIfEmpty(s *suite.Suite, v []byte) []byte {
	if len(v) == 0 {
		return make([]byte, s.HashSize())
	}
	return v
}

// JoinerSecret is joiner_secret for epoch n (RFC 9420, Section 8). The
// committer sends it to new members in GroupSecrets (Section 12.4.3.1).
type JoinerSecret struct {
	s      *suite.Suite
	secret Secret
}

// NewJoinerSecret derives
//
//	joiner_secret = ExpandWithLabel(KDF.Extract(init_secret[n-1], commit_secret),
//	                                "joiner", GroupContext[n], KDF.Nh)
//
// (RFC 9420, Section 8). groupContext is the encoded GroupContext of the new
// epoch. A nil commitSecret is the all-zero vector of a Commit without a path
// (Section 12.4).
func NewJoinerSecret(s *suite.Suite, initSecret, commitSecret Secret, groupContext []byte) *JoinerSecret {
	observe("init_secret", initSecret)
	observe("commit_secret", commitSecret)
	prk := Secret(s.Extract(initSecret, zeroIfEmpty(s, commitSecret)))
	defer prk.Erase()
	j := &JoinerSecret{s: s, secret: s.ExpandWithLabel(prk, labelJoiner, groupContext, s.HashSize())}
	observe("joiner_secret", j.secret)
	return j
}

// JoinerSecretFromBytes wraps a joiner_secret received in GroupSecrets
// (RFC 9420, Section 12.4.3.1). The bytes are copied.
func JoinerSecretFromBytes(s *suite.Suite, joinerSecret []byte) (*JoinerSecret, error) {
	if len(joinerSecret) != s.HashSize() {
		return nil, errors.New("mls: joiner_secret has the wrong length for the cipher suite")
	}
	observe("joiner_secret", joinerSecret)
	j := &JoinerSecret{s: s, secret: Secret(joinerSecret).Clone()}
	observe("joiner_secret", j.secret)
	return j, nil
}

// Secret returns joiner_secret, for GroupSecrets. The caller must not modify it.
func (j *JoinerSecret) Secret() Secret { return j.secret }

// Erase zeroes joiner_secret.
func (j *JoinerSecret) Erase() { j.secret.Erase() }

// WithPSK injects psk_secret (RFC 9420, Sections 8 and 8.4): the member
// secret is KDF.Extract(joiner_secret, psk_secret). A nil pskSecret is the
// all-zero vector used when no PSK is injected.
func (j *JoinerSecret) WithPSK(pskSecret Secret) *MemberSecret {
	observe("psk_secret", pskSecret)
	m := &MemberSecret{s: j.s, secret: j.s.Extract(j.secret, zeroIfEmpty(j.s, pskSecret))}
	observe("member_secret", m.secret)
	return m
}

// MemberSecret is KDF.Extract(joiner_secret, psk_secret), from which
// welcome_secret and epoch_secret are derived (RFC 9420, Section 8).
type MemberSecret struct {
	s      *suite.Suite
	secret Secret
}

// Erase zeroes the member secret.
func (m *MemberSecret) Erase() { m.secret.Erase() }

// WelcomeSecret is DeriveSecret(member, "welcome") (RFC 9420, Section 8).
func (m *MemberSecret) WelcomeSecret() Secret {
	ws := Secret(m.s.DeriveSecret(m.secret, labelWelcome))
	observe("welcome_secret", ws)
	return ws
}

// WelcomeKeyNonce derives the key and nonce that encrypt the GroupInfo of a
// Welcome (RFC 9420, Section 12.4.3.1):
//
//	welcome_nonce = ExpandWithLabel(welcome_secret, "nonce", "", AEAD.Nn)
//	welcome_key = ExpandWithLabel(welcome_secret, "key", "", AEAD.Nk)
func (m *MemberSecret) WelcomeKeyNonce() (key, nonce Secret) {
	ws := m.WelcomeSecret()
	defer ws.Erase()
	return WelcomeKeyNonce(m.s, ws)
}

// WelcomeKeyNonce derives the Welcome key and nonce from welcome_secret
// (RFC 9420, Section 12.4.3.1).
func WelcomeKeyNonce(s *suite.Suite, welcomeSecret Secret) (key, nonce Secret) {
	return s.ExpandKeyNonce(welcomeSecret, nil)
}

// Epoch derives
//
//	epoch_secret = ExpandWithLabel(member, "epoch", GroupContext[n], KDF.Nh)
//
// and from it every epoch secret (RFC 9420, Section 8). epoch_secret is
// erased before Epoch returns.
func (m *MemberSecret) Epoch(groupContext []byte) *Epoch {
	es := Secret(m.s.ExpandWithLabel(m.secret, labelEpoch, groupContext, m.s.HashSize()))
	defer es.Erase()
	return EpochFromSecret(m.s, es)
}

// Epoch holds the secrets of one epoch: the table "Epoch-Derived Secrets" of
// RFC 9420, Section 8, plus the init_secret of the next epoch. Each field is
// DeriveSecret(epoch_secret, label) for the label in its comment.
type Epoch struct {
	s *suite.Suite

	SenderData    Secret // sender_data_secret, "sender data": sender data keys (Section 6.3.2)
	Encryption    Secret // encryption_secret, "encryption": root of the secret tree (Section 9)
	Exporter      Secret // exporter_secret, "exporter": MLS-Exporter (Section 8.5)
	External      Secret // external_secret, "external": the external key pair (Section 8.3)
	Confirmation  Secret // confirmation_key, "confirm": the confirmation tag (Section 6.1)
	Membership    Secret // membership_key, "membership": PublicMessage membership tags (Section 6.2)
	Resumption    Secret // resumption_psk, "resumption": resumption PSKs (Section 8.6)
	Authenticator Secret // epoch_authenticator, "authentication" (Section 8.7)
	Init          Secret // init_secret[n], "init": input to the next epoch's key schedule
}

// EpochFromSecret derives the epoch secrets from epoch_secret (RFC 9420,
// Section 8). It does not erase epochSecret.
func EpochFromSecret(s *suite.Suite, epochSecret Secret) *Epoch {
	d := func(label string) Secret { return s.DeriveSecret(epochSecret, label) }
	return &Epoch{
		s:             s,
		SenderData:    d(labelSenderData),
		Encryption:    d(labelEncryption),
		Exporter:      d(labelExporter),
		External:      d(labelExternal),
		Confirmation:  d(labelConfirm),
		Membership:    d(labelMembership),
		Resumption:    d(labelResumption),
		Authenticator: d(labelAuthentication),
		Init:          d(labelInit),
	}
}

// Suite returns the epoch's cipher suite.
func (e *Epoch) Suite() *suite.Suite { return e.s }

// EraseEncryption zeroes and drops encryption_secret. Call it once the
// epoch's secret tree holds its own copy: RFC 9420, Section 9.2 deletes
// each node secret of the secret tree, the root included, once its
// children are derived, and a copy of the root kept beside the tree would
// let whoever reads memory or saved state re-derive every key the tree has
// deleted. Afterwards Encryption is nil and MarshalSecrets stores it empty.
func (e *Epoch) EraseEncryption() {
	e.Encryption.Erase()
	e.Encryption = nil
}

// Erase zeroes every secret of the epoch.
func (e *Epoch) Erase() {
	for _, v := range []Secret{e.SenderData, e.Encryption, e.Exporter, e.External, e.Confirmation,
		e.Membership, e.Resumption, e.Authenticator, e.Init} {
		v.Erase()
	}
}

// Export is MLS-Exporter (RFC 9420, Section 8.5):
//
//	MLS-Exporter(Label, Context, Length) =
//	    ExpandWithLabel(DeriveSecret(exporter_secret, Label),
//	                    "exported", Hash(Context), Length)
//
// length must be between 0 and the KDF's limit of min(255*Nh, 65535) bytes.
func (e *Epoch) Export(label string, context []byte, length int) (Secret, error) {
	return Export(e.s, e.Exporter, label, context, length)
}

// Export is MLS-Exporter over an explicit exporter_secret (RFC 9420,
// Section 8.5).
func Export(s *suite.Suite, exporterSecret Secret, label string, context []byte, length int) (Secret, error) {
	if length < 0 || length > 255*s.HashSize() || length > 0xffff {
		return nil, errLength
	}
	if len(label) > maxLabel {
		return nil, errors.New("mls: exporter label too long")
	}
	ds := Secret(s.DeriveSecret(exporterSecret, label))
	defer ds.Erase()
	return s.ExpandWithLabel(ds, labelExported, s.Hash(context), length), nil
}

// maxLabel bounds an application-chosen label: "MLS 1.0 " + label must fit an
// opaque<V>. The bound is far above any sensible label.
const maxLabel = 1 << 16

// ExternalKeyPair derives the group's external HPKE key pair from
// external_secret: external_priv, external_pub = KEM.DeriveKeyPair(external_secret)
// (RFC 9420, Section 8). external_pub goes in the GroupInfo's external_pub
// extension (Section 12.4.3.2).
func (e *Epoch) ExternalKeyPair() (priv Secret, pub []byte, err error) {
	p, pub, err := e.s.DeriveKeyPair(e.External)
	if err != nil {
		return nil, nil, err
	}
	return p, pub, nil
}

// ConfirmationTag is MAC(confirmation_key, confirmed_transcript_hash)
// (RFC 9420, Section 6.1), for the Commit that starts this epoch.
func (e *Epoch) ConfirmationTag(confirmedTranscriptHash []byte) []byte {
	return ConfirmationTag(e.s, e.Confirmation, confirmedTranscriptHash)
}

// VerifyConfirmationTag reports, in constant time, whether tag is this
// epoch's confirmation tag over confirmedTranscriptHash (RFC 9420,
// Sections 6.1 and 12.4.2).
func (e *Epoch) VerifyConfirmationTag(confirmedTranscriptHash, tag []byte) bool {
	return VerifyConfirmationTag(e.s, e.Confirmation, confirmedTranscriptHash, tag)
}

// ConfirmationTag is MAC(confirmation_key, confirmed_transcript_hash)
// (RFC 9420, Section 6.1).
func ConfirmationTag(s *suite.Suite, confirmationKey Secret, confirmedTranscriptHash []byte) []byte {
	return s.MAC(confirmationKey, confirmedTranscriptHash)
}

// VerifyConfirmationTag checks a confirmation tag in constant time
// (RFC 9420, Section 6.1).
func VerifyConfirmationTag(s *suite.Suite, confirmationKey Secret, confirmedTranscriptHash, tag []byte) bool {
	return s.VerifyMAC(confirmationKey, confirmedTranscriptHash, tag)
}

// SenderDataKeyNonce derives the key and nonce that protect a
// PrivateMessage's sender data (RFC 9420, Section 6.3.2):
//
//	ciphertext_sample = ciphertext[0..KDF.Nh-1]
//	sender_data_key = ExpandWithLabel(sender_data_secret, "key", ciphertext_sample, AEAD.Nk)
//	sender_data_nonce = ExpandWithLabel(sender_data_secret, "nonce", ciphertext_sample, AEAD.Nn)
//
// ciphertext is PrivateMessage.ciphertext; a shorter one is used whole.
func (e *Epoch) SenderDataKeyNonce(ciphertext []byte) (key, nonce Secret) {
	return SenderDataKeyNonce(e.s, e.SenderData, ciphertext)
}

// SenderDataKeyNonce derives the sender-data key and nonce from an explicit
// sender_data_secret (RFC 9420, Section 6.3.2).
func SenderDataKeyNonce(s *suite.Suite, senderDataSecret Secret, ciphertext []byte) (key, nonce Secret) {
	sample := ciphertext
	if len(sample) > s.HashSize() {
		sample = sample[:s.HashSize()]
	}
	return s.ExpandKeyNonce(senderDataSecret, sample)
}
