// Package dsproto is what the delivery service's client and server share
// beyond the generated API (ds/api/mlsdv1): the login proof both sign and
// check, and the conversion between the API's Record and the log's
// chain.Record, whose hash chain clients verify. It sits below ds/client and
// ds/server, so a client binary links no server code.
package dsproto

import (
	"errors"
	"fmt"
	"time"

	v1 "github.com/mlskit/mlskit/ds/api/mlsdv1"
	"github.com/mlskit/mlskit/ds/chain"
	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/suite"
)

// AuthLabel is the SignWithLabel label of a login proof (RFC 9420, Section
// 5.1.2; a label of mlsd's own, outside the IANA registry's MLS labels).
const AuthLabel = "mlsd auth"

// AuthContent is what a login proof signs: struct { opaque challenge<V>;
// opaque credential<V>; opaque signature_key<V>; uint16 cipher_suite; }.
// Signing the credential and key with the challenge binds the proof of
// possession to that credential.
func AuthContent(suiteID uint16, signatureKey, challenge, credential []byte) []byte {
	b := codec.NewBuilder(nil)
	b.AddOpaque(challenge)
	b.AddOpaque(credential)
	b.AddOpaque(signatureKey)
	b.AddUint16(suiteID)
	out, _ := b.Bytes()
	return out
}

// SignAuth makes a login proof with signer.
func SignAuth(suiteID uint16, signer suite.Signer, challenge, credential []byte) ([]byte, error) {
	return signer.SignWithLabel(AuthLabel, AuthContent(suiteID, signer.PublicKey(), challenge, credential))
}

// VerifyAuth checks a login proof.
func VerifyAuth(suiteID uint16, signatureKey, challenge, credential, sig []byte) error {
	s, err := suite.Lookup(suite.ID(suiteID))
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	if err := s.VerifyWithLabel(signatureKey, AuthLabel, AuthContent(suiteID, signatureKey, challenge, credential), sig); err != nil {
		return errors.New("login: signature does not verify")
	}
	return nil
}

// RecordToProto converts a log record for clientID: the body only if it is
// a recipient (a Welcome goes to its joiners alone; the others get the
// header and hashes, enough to follow the chain).
func RecordToProto(r *chain.Record, clientID string) *v1.Record {
	p := &v1.Record{
		GroupId: r.GroupID, Seq: r.Seq, Epoch: r.Epoch, Kind: uint32(r.Kind), WireFormat: uint32(r.WireFormat),
		Sender: r.Sender, Recipients: r.Recipients, BodyHash: r.BodyHash, PrevHash: r.PrevHash, ChainHash: r.ChainHash,
		TimeUnixMs: r.Time.UnixMilli(),
	}
	if chain.IsRecipient(r, clientID) {
		p.Body = r.Body
	}
	return p
}

// RecordFromProto converts an API record back, for clients verifying the
// chain.
func RecordFromProto(p *v1.Record) chain.Record {
	return chain.Record{
		GroupID: p.GroupId, Seq: p.Seq, Epoch: p.Epoch, Kind: uint8(p.Kind), WireFormat: uint16(p.WireFormat),
		Sender: p.Sender, Recipients: p.Recipients, BodyHash: p.BodyHash, PrevHash: p.PrevHash, ChainHash: p.ChainHash,
		Body: p.Body, Time: time.UnixMilli(p.TimeUnixMs),
	}
}
