package framing

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/keyschedule"
	"github.com/mlskit/mlskit/internal/par"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/wire"
)

// KeyPackageRef is RefHash("MLS 1.0 KeyPackage Reference", KeyPackage)
// (RFC 9420, Section 5.2), over the KeyPackage's bytes as received when kp
// was decoded, and over its encoding otherwise.
func KeyPackageRef(s *suite.Suite, kp *wire.KeyPackage) (wire.KeyPackageRef, error) {
	if kp == nil {
		return nil, errors.New("mls: nil KeyPackage")
	}
	raw := kp.Raw()
	if raw == nil {
		var err error
		if raw, err = codec.Marshal(kp); err != nil {
			return nil, fmt.Errorf("mls: encoding KeyPackage: %w", err)
		}
	}
	return s.RefHash(labelKeyPackageRef, raw), nil
}

// NewMember is one recipient of a Welcome: the KeyPackage it was added with
// and the GroupSecrets the committer sends it (RFC 9420, Section 12.4.3.1).
type NewMember struct {
	KeyPackage *wire.KeyPackage
	Secrets    *wire.GroupSecrets
}

// NewWelcome builds a Welcome (RFC 9420, Section 12.4.3.1): it encrypts the
// signed GroupInfo under the welcome_key and welcome_nonce derived from
// welcomeSecret, then each new member's GroupSecrets to the init_key of its
// KeyPackage with EncryptWithLabel(init_key, "Welcome",
// encrypted_group_info, group_secrets). Every KeyPackage must be of the
// suite s.
func NewWelcome(s *suite.Suite, welcomeSecret keyschedule.Secret, gi *wire.GroupInfo, members []NewMember) (*wire.Welcome, error) {
	giBytes, err := encodeGroupInfo(gi)
	if err != nil {
		return nil, err
	}
	return NewWelcomeEncoded(s, welcomeSecret, giBytes, members)
}

func encodeGroupInfo(gi *wire.GroupInfo) ([]byte, error) {
	if gi == nil {
		return nil, errors.New("mls: nil GroupInfo")
	}
	b, err := codec.Marshal(gi)
	if err != nil {
		return nil, fmt.Errorf("mls: encoding GroupInfo: %w", err)
	}
	return b, nil
}

// NewWelcomeEncoded is NewWelcome of a GroupInfo already encoded (the
// giBytes of SignGroupInfoMessage), which is not encoded again.
func NewWelcomeEncoded(s *suite.Suite, welcomeSecret keyschedule.Secret, giBytes []byte, members []NewMember) (*wire.Welcome, error) {
	egi, err := encryptGroupInfo(s, welcomeSecret, nil, giBytes)
	if err != nil {
		return nil, err
	}
	return welcomeFor(s, egi, members)
}

// inPlaceMembers is the most new members for which NewWelcomeMessage seals
// the GroupInfo in place, and inPlaceRoom the room it leaves before it per
// member for that member's entry (a KeyPackageRef, a KEM output and the
// sealed GroupSecrets: a few hundred octets, about 1,800 with ML-KEM-1024;
// more, with many PSKs, takes the copy).
const (
	inPlaceMembers = 16
	inPlaceRoom    = 2048
)

// NewWelcomeMessage is NewWelcomeEncoded's Welcome encoded as an
// MLSMessage. A Welcome is mostly its encrypted GroupInfo (with the
// ratchet tree, 300 KB at 1,000 members); for up to inPlaceMembers new
// members it is sealed straight into the message's buffer, after room for
// the header and the entries, instead of into a buffer of its own that the
// message then copies. The entries need the sealed GroupInfo (it is their
// HPKE context), so they are written after it, into that room. More members
// (or entries that outgrow the room) take the copy.
func NewWelcomeMessage(s *suite.Suite, welcomeSecret keyschedule.Secret, giBytes []byte, members []NewMember) ([]byte, error) {
	if len(members) == 0 || len(members) > inPlaceMembers {
		w, err := NewWelcomeEncoded(s, welcomeSecret, giBytes, members)
		if err != nil {
			return nil, err
		}
		return marshalWelcomeMessage(w)
	}
	room := 16 + inPlaceRoom*len(members)
	buf := make([]byte, room, room+len(giBytes)+32) // 32: at least any AEAD's tag
	buf, err := encryptGroupInfo(s, welcomeSecret, buf, giBytes)
	if err != nil {
		return nil, err
	}
	egi := buf[room:]
	w, err := welcomeFor(s, egi, members)
	if err != nil {
		return nil, err
	}
	// The message up to the GroupInfo's length: the whole message with an
	// empty encrypted_group_info (the last field: RFC 9420, Section
	// 12.4.3.1) ends in its zero length, which the real one replaces.
	w.EncryptedGroupInfo = nil
	head, err := marshalWelcomeMessage(w)
	if err != nil {
		return nil, err
	}
	if head[len(head)-1] != 0 {
		return nil, errors.New("mls: Welcome does not end in its encrypted GroupInfo")
	}
	head = codec.AppendVarint(head[:len(head)-1], uint64(len(egi)), &err)
	if err != nil {
		return nil, err
	}
	if len(head) > room {
		return append(head, egi...), nil
	}
	start := room - len(head)
	copy(buf[start:], head)
	return buf[start:], nil
}

func marshalWelcomeMessage(w *wire.Welcome) ([]byte, error) {
	return codec.Marshal(&wire.MLSMessage{Version: wire.ProtocolVersionMLS10, WireFormat: wire.WireFormatWelcome, Welcome: w})
}

// welcomeFor seals each new member's GroupSecrets with egi as context and
// returns the Welcome.
func welcomeFor(s *suite.Suite, egi []byte, members []NewMember) (*wire.Welcome, error) {
	w := &wire.Welcome{
		CipherSuite:        wire.CipherSuite(s.ID()),
		Secrets:            make([]wire.EncryptedGroupSecrets, len(members)),
		EncryptedGroupInfo: egi,
	}
	for i, m := range members {
		if m.KeyPackage == nil || m.Secrets == nil {
			return nil, fmt.Errorf("mls: new member %d has no KeyPackage or GroupSecrets", i)
		}
		if uint16(m.KeyPackage.CipherSuite) != uint16(s.ID()) {
			return nil, fmt.Errorf("mls: new member %d: %w", i, ErrCipherSuiteMismatch)
		}
	}
	// Every entry has the same context, encrypted_group_info, which holds
	// the GroupInfo (and usually the tree): one sealer hashes it once
	// instead of once per new member.
	ls, err := s.NewLabeledSealer(labelWelcome, egi)
	if err != nil {
		return nil, fmt.Errorf("mls: encrypting GroupSecrets: %w", err)
	}
	// The entries are independent: with the system's randomness they are
	// sealed on every core, each into its own slot, in the serial order.
	err = par.ForEach(len(members), par.RandIsDefault(), func(i int) error {
		m := members[i]
		ref, err := KeyPackageRef(s, m.KeyPackage)
		if err != nil {
			return err
		}
		ct, err := sealGroupSecrets(ls, m.KeyPackage.InitKey, m.Secrets)
		if err != nil {
			return fmt.Errorf("mls: new member %d: %w", i, err)
		}
		w.Secrets[i] = wire.EncryptedGroupSecrets{NewMember: ref, EncryptedGroupSecrets: ct}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// EncryptGroupSecrets encrypts gs to a new member's init_key (RFC 9420,
// Section 12.4.3.1):
//
//	encrypted_group_secrets = EncryptWithLabel(init_key, "Welcome",
//	                                           encrypted_group_info, group_secrets)
func EncryptGroupSecrets(s *suite.Suite, initKey, encryptedGroupInfo []byte, gs *wire.GroupSecrets) (wire.HPKECiphertext, error) {
	ls, err := s.NewLabeledSealer(labelWelcome, encryptedGroupInfo)
	if err != nil {
		return wire.HPKECiphertext{}, fmt.Errorf("mls: encrypting GroupSecrets: %w", err)
	}
	return sealGroupSecrets(ls, initKey, gs)
}

// sealGroupSecrets is EncryptGroupSecrets with the sealer of
// EncryptWithLabel(·, "Welcome", encrypted_group_info, ·).
func sealGroupSecrets(ls *suite.LabeledSealer, initKey []byte, gs *wire.GroupSecrets) (wire.HPKECiphertext, error) {
	if gs == nil {
		return wire.HPKECiphertext{}, errors.New("mls: nil GroupSecrets")
	}
	pt, err := codec.Marshal(gs)
	if err != nil {
		return wire.HPKECiphertext{}, fmt.Errorf("mls: encoding GroupSecrets: %w", err)
	}
	defer keyschedule.Secret(pt).Erase()
	kemOutput, ct, err := ls.Seal(initKey, pt)
	if err != nil {
		return wire.HPKECiphertext{}, fmt.Errorf("mls: encrypting GroupSecrets: %w", err)
	}
	return wire.HPKECiphertext{KEMOutput: kemOutput, Ciphertext: ct}, nil
}

// DecryptGroupSecrets reverses EncryptGroupSecrets with the private key of
// the KeyPackage's init_key (RFC 9420, Section 12.4.3.1):
//
//	group_secrets = DecryptWithLabel(init_key_priv, "Welcome",
//	                                 encrypted_group_info, kem_output, ciphertext)
func DecryptGroupSecrets(s *suite.Suite, initPriv, encryptedGroupInfo []byte, ct wire.HPKECiphertext) (*wire.GroupSecrets, error) {
	pt, err := s.DecryptWithLabel(initPriv, labelWelcome, encryptedGroupInfo, ct.KEMOutput, ct.Ciphertext)
	if err != nil {
		if errors.Is(err, suite.ErrDecrypt) {
			return nil, invalidCause(ErrDecrypt, "group secrets decrypt", "12.4.3.1", err)
		}
		return nil, fmt.Errorf("mls: decrypting GroupSecrets: %w", err)
	}
	defer keyschedule.Secret(pt).Erase()
	return wire.UnmarshalGroupSecrets(pt)
}

// FindGroupSecrets returns the entry of w.secrets whose new_member is the
// KeyPackageRef of kp (RFC 9420, Section 12.4.3.1). The Welcome's, the
// KeyPackage's and s's cipher suites must agree (ErrCipherSuiteMismatch);
// ErrNoGroupSecrets if no entry is for kp.
func FindGroupSecrets(s *suite.Suite, w *wire.Welcome, kp *wire.KeyPackage) (*wire.EncryptedGroupSecrets, error) {
	if w == nil || kp == nil {
		return nil, errors.New("mls: nil Welcome or KeyPackage")
	}
	if uint16(w.CipherSuite) != uint16(s.ID()) || uint16(kp.CipherSuite) != uint16(s.ID()) {
		return nil, invalid(ErrCipherSuiteMismatch, "Welcome and KeyPackage cipher suites match", "12.4.3.1")
	}
	ref, err := KeyPackageRef(s, kp)
	if err != nil {
		return nil, err
	}
	for i := range w.Secrets {
		if bytes.Equal(w.Secrets[i].NewMember, ref) {
			return &w.Secrets[i], nil
		}
	}
	return nil, invalid(ErrNoGroupSecrets, "Welcome has an entry for our KeyPackage", "12.4.3.1")
}

// OpenGroupSecrets finds the entry of w for kp and decrypts it with
// initPriv, the private key of kp's init_key (RFC 9420, Section 12.4.3.1).
// The caller then injects the PSKs the GroupSecrets name, derives
// welcome_secret from joiner_secret, and calls DecryptGroupInfo.
func OpenGroupSecrets(s *suite.Suite, w *wire.Welcome, kp *wire.KeyPackage, initPriv []byte) (*wire.GroupSecrets, error) {
	egs, err := FindGroupSecrets(s, w, kp)
	if err != nil {
		return nil, err
	}
	return DecryptGroupSecrets(s, initPriv, w.EncryptedGroupInfo, egs.EncryptedGroupSecrets)
}

// EncryptGroupInfo encrypts the encoded GroupInfo under welcome_key and
// welcome_nonce derived from welcomeSecret (RFC 9420, Section 12.4.3.1):
//
//	welcome_nonce = ExpandWithLabel(welcome_secret, "nonce", "", AEAD.Nn)
//	welcome_key = ExpandWithLabel(welcome_secret, "key", "", AEAD.Nk)
func EncryptGroupInfo(s *suite.Suite, welcomeSecret keyschedule.Secret, gi *wire.GroupInfo) ([]byte, error) {
	pt, err := encodeGroupInfo(gi)
	if err != nil {
		return nil, err
	}
	return encryptGroupInfo(s, welcomeSecret, nil, pt)
}

// encryptGroupInfo is EncryptGroupInfo of an encoded GroupInfo.
func encryptGroupInfo(s *suite.Suite, welcomeSecret keyschedule.Secret, dst, pt []byte) ([]byte, error) {
	key, nonce := keyschedule.WelcomeKeyNonce(s, welcomeSecret)
	defer key.Erase()
	defer nonce.Erase()
	ct, err := s.SealAppend(dst, key, nonce, nil, pt)
	if err != nil {
		return nil, fmt.Errorf("mls: encrypting GroupInfo: %w", err)
	}
	return ct, nil
}

// DecryptGroupInfo decrypts a Welcome's encrypted_group_info with the key
// and nonce derived from welcomeSecret and decodes the GroupInfo (RFC 9420,
// Section 12.4.3.1). The GroupInfo's signature is not checked here: the
// signer's key is in the ratchet tree; see VerifyGroupInfo.
func DecryptGroupInfo(s *suite.Suite, welcomeSecret keyschedule.Secret, encryptedGroupInfo []byte) (*wire.GroupInfo, error) {
	key, nonce := keyschedule.WelcomeKeyNonce(s, welcomeSecret)
	defer key.Erase()
	defer nonce.Erase()
	pt, err := s.Open(key, nonce, nil, encryptedGroupInfo)
	if err != nil {
		return nil, invalidCause(ErrDecrypt, "encrypted_group_info decrypts", "12.4.3.1", err)
	}
	// pt is this call's own buffer: the GroupInfo is decoded in it, not
	// in a copy. With the ratchet tree in it (300 KB at 1,000 members), a
	// joiner keeps these bytes as its tree's (see mls.verifiedTree).
	gi, err := wire.DecodeInPlace[wire.GroupInfo](pt)
	if err != nil {
		return nil, err
	}
	if uint16(gi.GroupContext.CipherSuite) != uint16(s.ID()) {
		return nil, invalid(ErrCipherSuiteMismatch, "GroupInfo cipher suite is the Welcome's", "12.4.3.1")
	}
	return gi, nil
}

// SignGroupInfo signs gi: gi.Signature = SignWithLabel(., "GroupInfoTBS",
// GroupInfoTBS) (RFC 9420, Section 12.4.3).
func SignGroupInfo(signer suite.Signer, gi *wire.GroupInfo) error {
	_, _, err := SignGroupInfoMessage(signer, gi)
	return err
}

// SignGroupInfoMessage signs gi as SignGroupInfo does and returns it
// encoded as an MLSMessage (version, wire_format mls_group_info, the
// GroupInfo), and giBytes, the GroupInfo's own encoding, which is the end
// of msg. A GroupInfo usually carries the whole ratchet tree, so it is
// encoded once: the GroupInfoTBS is laid out after room for the
// SignContent header, signed in place, and the room then takes the
// MLSMessage header while the signature is appended.
func SignGroupInfoMessage(signer suite.Signer, gi *wire.GroupInfo) (msg, giBytes []byte, err error) {
	msg, giBytes, _, err = SignGroupInfoMessageIn(nil, signer, gi)
	return msg, giBytes, err
}

// SignGroupInfoMessageIn is SignGroupInfoMessage laid out in buf's storage
// when it is large enough. It also returns the whole buffer it used (buf's
// storage or a larger one, msg at its end), for a caller that hands it back
// to be used again once msg and giBytes are no longer needed.
func SignGroupInfoMessageIn(buf []byte, signer suite.Signer, gi *wire.GroupInfo) (msg, giBytes, used []byte, err error) {
	hint := 1024
	for _, e := range gi.Extensions {
		hint += len(e.ExtensionData)
		if e.Writer != nil {
			hint += e.Writer.Len()
		}
	}
	tbs := &wire.GroupInfoTBS{GroupContext: gi.GroupContext, Extensions: gi.Extensions,
		ConfirmationTag: gi.ConfirmationTag, Signer: gi.Signer}
	sc, err := layOutSignContentIn(buf, labelGroupInfoTBS, hint, tbs.Marshal)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("mls: encoding GroupInfoTBS: %w", err)
	}
	sig, err := sc.sign(signer)
	if err != nil {
		return nil, nil, sc.buf, fmt.Errorf("mls: signing GroupInfo: %w", err)
	}
	gi.Signature = sig
	// MLSMessage: ProtocolVersion version; WireFormat wire_format; then
	// the GroupInfo (RFC 9420, Section 6).
	// The room, no longer needed for the SignContent header, takes it.
	out, room := sc.buf, sc.room
	binary.BigEndian.PutUint16(out[room-4:], uint16(wire.ProtocolVersionMLS10))
	binary.BigEndian.PutUint16(out[room-2:], uint16(wire.WireFormatGroupInfo))
	out = codec.AppendVarint(out, uint64(len(sig)), nil)
	out = append(out, sig...)
	return out[room-4:], out[room:], out, nil
}

// VerifyGroupInfo checks gi's signature with pub, the signature key of the
// leaf at gi.signer (RFC 9420, Section 12.4.3).
func VerifyGroupInfo(s *suite.Suite, pub []byte, gi *wire.GroupInfo) error {
	tbs := gi.TBS()
	if tbs == nil {
		return errors.New("mls: GroupInfo cannot be encoded")
	}
	if err := s.VerifyWithLabel(pub, labelGroupInfoTBS, tbs, gi.Signature); err != nil {
		return invalidCause(ErrInvalidSignature, "GroupInfo signature", "12.4.3", err)
	}
	return nil
}
