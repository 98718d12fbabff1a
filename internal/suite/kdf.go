package suite

import (
	"crypto/hmac"
	"encoding/binary"
	"hash"

	"github.com/mlskit/mlskit/internal/codec"
)

// maxVarint is the largest length an MLS opaque<V> can carry (RFC 9420,
// Section 2.1.2).
const maxVarint = 1<<30 - 1

// NewHash returns a fresh instance of the suite's hash function, for
// callers that hash many small inputs and reuse one state (Reset) and one
// output buffer (Sum(buf[:0])) to allocate nothing per hash.
func (s *Suite) NewHash() hash.Hash { return s.kdf.new() }

// Hash returns Hash(data) with the suite's hash function.
//
// The digest comes from the HMAC pool (hmac.go): a tree hash runs this once
// per node, and a fresh digest each time cost half a megabyte of allocation
// per join of a 1,000-member group. Its callers hash public values only
// (tree, transcript and exporter contexts): a pooled digest may keep the last
// partial block.
func (s *Suite) Hash(data []byte) []byte {
	m := s.getMAC()
	m.inner.Reset()
	m.inner.Write(data)
	out := m.inner.Sum(make([]byte, 0, s.kdf.size))
	s.putMAC(m)
	return out
}

// HashWith returns Hash of what write writes into the HashInput, without
// assembling it: a tree hash (RFC 9420, Section 7.8) hashes a LeafNode's
// encoding as received and a parent's fields, and a parent hash (Section
// 7.9) an encryption key and two hashes, once per node of a tree a joiner
// checks. Small fields are gathered before they reach the digest. An
// opaque<V> field longer than 2^30-1 octets has no encoding; the result is
// then Hash of nothing, which no honest input hashes to.
func (s *Suite) HashWith(write func(*HashInput)) []byte {
	m := s.getMAC()
	m.inner.Reset()
	in := HashInput{m: m}
	write(&in)
	if in.bad {
		s.putMAC(m)
		return s.Hash(nil)
	}
	in.flush()
	out := m.inner.Sum(make([]byte, 0, s.kdf.size))
	s.putMAC(m)
	return out
}

// A HashInput is the input of HashWith, written field by field in the
// order of its encoding.
type HashInput struct {
	m   *macState // m.t gathers small fields
	n   int       // octets gathered in m.t
	bad bool      // a field had no encoding
}

func (h *HashInput) flush() {
	if h.n > 0 {
		h.m.inner.Write(h.m.t[:h.n])
		h.n = 0
	}
}

// Write writes b as it is.
func (h *HashInput) Write(b []byte) {
	if h.n+len(b) <= len(h.m.t) {
		h.n += copy(h.m.t[h.n:], b)
		return
	}
	h.flush()
	h.m.inner.Write(b)
}

// Uint8 writes v.
func (h *HashInput) Uint8(v uint8) {
	if h.n+1 > len(h.m.t) {
		h.flush()
	}
	h.m.t[h.n] = v
	h.n++
}

// Uint32 writes v, big-endian.
func (h *HashInput) Uint32(v uint32) {
	if h.n+4 > len(h.m.t) {
		h.flush()
	}
	binary.BigEndian.PutUint32(h.m.t[h.n:], v)
	h.n += 4
}

// Varint writes n as an MLS variable-length integer (RFC 9420, Section
// 2.1.2).
func (h *HashInput) Varint(n int) {
	if n < 0 || n > maxVarint {
		h.bad = true
		return
	}
	if h.n+4 > len(h.m.t) {
		h.flush()
	}
	h.n = len(codec.AppendVarint(h.m.t[:h.n], uint64(n), nil))
}

// Opaque writes b as an opaque<V>: its length, then b.
func (h *HashInput) Opaque(b []byte) {
	h.Varint(len(b))
	h.Write(b)
}

// Extract is HKDF-Extract (RFC 5869) with the suite's hash (RFC 9420,
// Section 5.1). A nil or empty salt is a string of Nh zero bytes.
func (s *Suite) Extract(salt, ikm []byte) []byte {
	// HMAC pads its key with zeros, so an empty salt and Nh zero bytes give
	// the same result (RFC 5869, Section 2.2).
	m := s.getMAC()
	out := append(make([]byte, 0, s.kdf.size), m.hmac(salt, ikm, nil, nil)...)
	s.putMAC(m)
	return out
}

// Expand is HKDF-Expand (RFC 5869) with the suite's hash. It panics if length
// exceeds 255*Nh, which RFC 5869 forbids; lengths in MLS are fixed by the
// protocol, never taken from a peer.
func (s *Suite) Expand(prk, info []byte, length int) []byte {
	checkExpandLength(length, s.kdf.size)
	out := make([]byte, length)
	m := s.getMAC()
	m.expand(out, prk, info)
	s.putMAC(m)
	return out
}

func checkExpandLength(length, nh int) {
	if length < 0 || length > 255*nh {
		panic("suite: HKDF-Expand length out of range")
	}
}

// ExpandWithLabel derives length bytes from secret (RFC 9420, Section 8):
//
//	ExpandWithLabel(Secret, Label, Context, Length) =
//	    KDF.Expand(Secret, KDFLabel, Length)
//
// where KDFLabel is {uint16 length; opaque label<V> = "MLS 1.0 " + Label;
// opaque context<V>}. It panics if length exceeds 255*Nh or the context
// exceeds 2^30-1 bytes (both are fixed by the caller, not by a peer).
func (s *Suite) ExpandWithLabel(secret []byte, label string, context []byte, length int) []byte {
	checkExpandLength(length, s.kdf.size)
	out := make([]byte, length)
	m := s.getMAC()
	m.info = appendKDFLabel(m.info[:0], label, context, length)
	m.expand(out, secret, m.info)
	s.putMAC(m)
	return out
}

// appendKDFLabel appends the KDFLabel struct (RFC 9420, Section 8).
func appendKDFLabel(b []byte, label string, context []byte, length int) []byte {
	if length < 0 || length > 0xffff {
		panic("suite: ExpandWithLabel length does not fit uint16")
	}
	b = binary.BigEndian.AppendUint16(b, uint16(length))
	b = appendLabel(b, label)
	return appendOpaque(b, context)
}

// appendLabel appends opaque label<V> = "MLS 1.0 " + label.
func appendLabel(b []byte, label string) []byte {
	b = appendVarint(b, len(labelPrefix)+len(label))
	b = append(b, labelPrefix...)
	return append(b, label...)
}

// appendOpaque appends opaque v<V>.
func appendOpaque(b, v []byte) []byte {
	b = appendVarint(b, len(v))
	return append(b, v...)
}

func appendVarint(b []byte, n int) []byte {
	if n < 0 || n > maxVarint {
		panic("suite: value too long for an MLS opaque<V>")
	}
	return codec.AppendVarint(b, uint64(n), nil)
}

// DeriveSecret is ExpandWithLabel(Secret, Label, "", Nh) (RFC 9420,
// Section 8).
func (s *Suite) DeriveSecret(secret []byte, label string) []byte {
	return s.ExpandWithLabel(secret, label, nil, s.kdf.size)
}

// DeriveTreeSecret is ExpandWithLabel(Secret, Label, Generation, Length)
// with the generation as a uint32 (RFC 9420, Section 9).
func (s *Suite) DeriveTreeSecret(secret []byte, label string, generation uint32, length int) []byte {
	checkExpandLength(length, s.kdf.size)
	out := make([]byte, length)
	m := s.getMAC()
	var ctx [4]byte // the generation as a uint32, the context
	binary.BigEndian.PutUint32(ctx[:], generation)
	m.info = appendKDFLabel(m.info[:0], label, ctx[:], length)
	m.expand(out, secret, m.info)
	s.putMAC(m)
	return out
}

// DeriveTreeKeys returns what generation's ratchet secret derives (RFC
// 9420, Section 9.1): DeriveTreeSecret(secret, "key", generation, Nk) and
// (..., "nonce", ..., Nn) and, with next, (..., "secret", ..., Nh), the
// next generation's ratchet secret (else nil). The HMAC key is set up once
// for the three, and the three share one allocation.
func (s *Suite) DeriveTreeKeys(secret []byte, generation uint32, next bool) (key, nonce, nextSecret []byte) {
	var ctx [4]byte
	binary.BigEndian.PutUint32(ctx[:], generation)
	return s.expandKeys(secret, ctx[:], next)
}

// ExpandKeyNonce returns ExpandWithLabel(secret, "key", context, Nk) and
// ExpandWithLabel(secret, "nonce", context, Nn), as the sender data key and
// nonce are derived (RFC 9420, Section 6.3.2), with the HMAC key set up once
// for both.
func (s *Suite) ExpandKeyNonce(secret, context []byte) (key, nonce []byte) {
	key, nonce, _ = s.expandKeys(secret, context, false)
	return key, nonce
}

func (s *Suite) expandKeys(secret, context []byte, next bool) (key, nonce, nextSecret []byte) {
	nk, nn, nh := s.nk, s.nn, 0
	if next {
		nh = s.kdf.size
	}
	buf := make([]byte, nk+nn+nh)
	key, nonce, nextSecret = buf[:nk:nk], buf[nk:nk+nn:nk+nn], buf[nk+nn:]
	m := s.getMAC()
	m.setKey(secret)
	for _, o := range [...]struct {
		label string
		out   []byte
	}{{"key", key}, {"nonce", nonce}, {"secret", nextSecret}} {
		if len(o.out) == 0 {
			continue
		}
		m.info = appendKDFLabel(m.info[:0], o.label, context, len(o.out))
		m.expandKeyed(o.out, m.info)
	}
	s.putMAC(m)
	if !next {
		nextSecret = nil
	}
	return key, nonce, nextSecret
}

// RefHash is Hash(RefHashInput{label, value}) (RFC 9420, Section 5.2). The
// label is used as given: callers pass the full label, e.g. "MLS 1.0
// KeyPackage Reference".
func (s *Suite) RefHash(label string, value []byte) []byte {
	h := s.kdf.new()
	var buf [8]byte
	h.Write(appendVarint(buf[:0], len(label)))
	h.Write([]byte(label))
	h.Write(appendVarint(buf[:0], len(value)))
	h.Write(value)
	return h.Sum(make([]byte, 0, s.kdf.size))
}

// MAC is HMAC(key, data) with the suite's hash (RFC 9420, Section 5.1).
func (s *Suite) MAC(key, data []byte) []byte {
	m := s.getMAC()
	out := append(make([]byte, 0, s.kdf.size), m.hmac(key, data, nil, nil)...)
	s.putMAC(m)
	return out
}

// VerifyMAC reports whether tag is MAC(key, data), in constant time.
func (s *Suite) VerifyMAC(key, data, tag []byte) bool {
	return hmac.Equal(s.MAC(key, data), tag)
}
