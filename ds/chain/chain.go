// Package chain is mlsd's log as its clients see it: the record, its kinds,
// and the hash chain h_seq = SHA-256(h_{seq-1} || RecordHeader) by which a
// client detects reordering, gaps and forks (RFC 9750, Section 5.2.1). The
// server's store and the clients share it, so a client binary links no
// server code.
package chain

import (
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/mlskit/mlskit/internal/codec"
)

// Record kinds: the RFC 9420 ContentType values, plus welcome.
const (
	KindApplication uint8 = 1
	KindProposal    uint8 = 2
	KindCommit      uint8 = 3
	KindWelcome     uint8 = 4
)

// Record is one log entry as stored.
type Record struct {
	GroupID    []byte
	Seq        uint64
	Epoch      uint64
	Kind       uint8
	WireFormat uint16
	Sender     string
	Recipients []string
	BodyHash   []byte
	PrevHash   []byte
	ChainHash  []byte
	Body       []byte
	Time       time.Time
}

// GenesisHash is h_0 of a group's chain: SHA-256("mlsd log v1" || opaque
// group_id<V>).
func GenesisHash(groupID []byte) []byte {
	b := codec.NewBuilder([]byte("mlsd log v1"))
	b.AddOpaque(groupID)
	enc, _ := b.Bytes()
	h := sha256.Sum256(enc)
	return h[:]
}

// BodyHash is SHA-256 of a record body.
func BodyHash(body []byte) []byte {
	h := sha256.Sum256(body)
	return h[:]
}

// HeaderBytes is the RecordHeader the chain hashes: struct { opaque
// group_id<V>; uint64 seq; uint64 epoch; uint8 kind; uint16 wire_format;
// opaque sender<V>; opaque recipients<V>; opaque body_hash<V>; } where
// recipients is a vector of opaque<V>.
func HeaderBytes(r *Record) []byte {
	b := codec.NewBuilder(make([]byte, 0, 128))
	b.AddOpaque(r.GroupID)
	b.AddUint64(r.Seq)
	b.AddUint64(r.Epoch)
	b.AddUint8(r.Kind)
	b.AddUint16(r.WireFormat)
	b.AddOpaque([]byte(r.Sender))
	b.AddVector(func(b *codec.Builder) {
		for _, c := range r.Recipients {
			b.AddOpaque([]byte(c))
		}
	})
	b.AddOpaque(r.BodyHash)
	out, _ := b.Bytes()
	return out
}

// ChainHash computes h = SHA-256(prev || RecordHeader).
func ChainHash(prev []byte, r *Record) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(HeaderBytes(r))
	return h.Sum(nil)
}

// VerifyChain checks that records continue a chain from (afterSeq,
// afterHash) without gaps and with correct hashes, and that each body (when
// present) matches its hash. It is what clients run on what they fetch.
func VerifyChain(afterSeq uint64, afterHash []byte, recs []Record) error {
	prev := afterHash
	for i := range recs {
		r := &recs[i]
		if r.Seq != afterSeq+uint64(i)+1 {
			return fmt.Errorf("chain: gap in log: want seq %d, got %d", afterSeq+uint64(i)+1, r.Seq)
		}
		if r.Body != nil && string(BodyHash(r.Body)) != string(r.BodyHash) {
			return fmt.Errorf("chain: record %d body does not match its hash", r.Seq)
		}
		if string(r.PrevHash) != string(prev) {
			return fmt.Errorf("chain: record %d does not continue the chain (fork or reorder)", r.Seq)
		}
		if string(ChainHash(prev, r)) != string(r.ChainHash) {
			return fmt.Errorf("chain: record %d chain hash mismatch", r.Seq)
		}
		prev = r.ChainHash
	}
	return nil
}

// IsRecipient reports whether clientID may see the body of r.
func IsRecipient(r *Record, clientID string) bool {
	if len(r.Recipients) == 0 {
		return true
	}
	for _, c := range r.Recipients {
		if c == clientID {
			return true
		}
	}
	return false
}
