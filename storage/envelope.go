package storage

import (
	"errors"
	"fmt"

	"github.com/mlskit/mlskit/internal/codec"
)

var (
	// ErrCorrupt means a stored blob does not decode as an Envelope.
	ErrCorrupt = errors.New("storage: corrupt record")
	// ErrWrongKind means an Envelope holds a different kind of record than
	// the caller asked for.
	ErrWrongKind = errors.New("storage: record of the wrong kind")
)

// An Envelope labels a stored blob with what it is and which version of its
// format it uses, so the layer that writes a format can change it and still
// read what older builds wrote (or refuse it clearly). Its encoding, in the
// TLS presentation language of RFC 9420, Section 2.1, is
//
//	struct {
//	    uint16 kind;
//	    uint16 version;
//	    opaque payload<V>;
//	} Envelope;
//
// Kind 0 is reserved and never valid, so a zeroed blob is not mistaken for a
// record. The store itself never looks inside blobs; envelopes are for the
// layers above it.
type Envelope struct {
	Kind    uint16
	Version uint16
	Payload []byte
}

// Marshal encodes the envelope.
func (e Envelope) Marshal() ([]byte, error) {
	if e.Kind == 0 {
		return nil, errors.New("storage: envelope kind 0 is reserved")
	}
	b := codec.NewBuilder(make([]byte, 0, 4+codec.VarintLen(uint64(len(e.Payload)))+len(e.Payload)))
	b.AddUint16(e.Kind)
	b.AddUint16(e.Version)
	b.AddOpaque(e.Payload)
	return b.Bytes()
}

// ParseEnvelope decodes an envelope strictly: trailing bytes, a non-minimal
// length and kind 0 are rejected with an error wrapping ErrCorrupt. The
// payload is a copy; b may be reused.
func ParseEnvelope(b []byte) (Envelope, error) {
	var e Envelope
	r := codec.NewReader(b)
	if !r.ReadUint16(&e.Kind) || !r.ReadUint16(&e.Version) || !r.ReadOpaque(&e.Payload) || !r.Empty() {
		return Envelope{}, fmt.Errorf("%w: %w at offset %d", ErrCorrupt, codec.ErrMalformed, r.Offset())
	}
	if e.Kind == 0 {
		return Envelope{}, fmt.Errorf("%w: envelope kind 0", ErrCorrupt)
	}
	return e, nil
}

// OpenEnvelope decodes an envelope that must be of the given kind and returns
// its version and payload. It fails with ErrCorrupt or ErrWrongKind; which
// versions to accept is the caller's decision.
func OpenEnvelope(b []byte, kind uint16) (version uint16, payload []byte, err error) {
	e, err := ParseEnvelope(b)
	if err != nil {
		return 0, nil, err
	}
	if e.Kind != kind {
		return 0, nil, fmt.Errorf("%w: got kind %d, want %d", ErrWrongKind, e.Kind, kind)
	}
	return e.Version, e.Payload, nil
}
