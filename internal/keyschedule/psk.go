package keyschedule

import (
	"errors"
	"fmt"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/wire"
)

// PSK is one pre-shared key injected into an epoch: its identifier, as sent
// in a PreSharedKey proposal or GroupSecrets, and its value (RFC 9420,
// Section 8.4). For a resumption PSK the value is the resumption_psk of the
// named group and epoch.
type PSK struct {
	ID    wire.PreSharedKeyID
	Value Secret
}

// ErrTooManyPSKs: more PSKs than PSKLabel's uint16 count can number.
var ErrTooManyPSKs = errors.New("mls: more than 65535 PSKs")

// PSKSecret computes psk_secret from the PSKs in the order the Commit or
// GroupSecrets lists them (RFC 9420, Section 8.4):
//
//	psk_extracted_[i] = KDF.Extract(0, psk_[i])
//	psk_input_[i] = ExpandWithLabel(psk_extracted_[i], "derived psk",
//	                  PSKLabel, KDF.Nh)
//	psk_secret_[0] = 0
//	psk_secret_[i] = KDF.Extract(psk_input_[i-1], psk_secret_[i-1])
//	psk_secret     = psk_secret_[n]
//
// with PSKLabel{id, index = i, count = n}. With no PSKs the result is the
// all-zero vector of length KDF.Nh, which is also what WithPSK(nil) uses.
func PSKSecret(s *suite.Suite, psks []PSK) (Secret, error) {
	if len(psks) > 0xffff {
		return nil, ErrTooManyPSKs
	}
	nh := s.HashSize()
	secret := Secret(make([]byte, nh))
	zero := make([]byte, nh)
	for i, p := range psks {
		label, err := codec.Marshal(&wire.PSKLabel{ID: p.ID, Index: uint16(i), Count: uint16(len(psks))})
		if err != nil {
			return nil, fmt.Errorf("mls: encoding PSKLabel %d: %w", i, err)
		}
		extracted := Secret(s.Extract(zero, p.Value))
		input := Secret(s.ExpandWithLabel(extracted, labelDerivedPSK, label, nh))
		next := Secret(s.Extract(input, secret))
		extracted.Erase()
		input.Erase()
		secret.Erase()
		secret = next
	}
	return secret, nil
}
