package suite

import (
	"crypto/hmac"
	"encoding/binary"

	"github.com/mlskit/mlskit/internal/codec"
)

// maxVarint is the largest length an MLS opaque<V> can carry (RFC 9420,
// Section 2.1.2).
const maxVarint = 1<<30 - 1

// Hash returns Hash(data) with the suite's hash function.
func (s *Suite) Hash(data []byte) []byte {
	h := s.newHash()
	h.Write(data)
	return h.Sum(make([]byte, 0, s.nh))
}

// Extract is HKDF-Extract (RFC 5869) with the suite's hash (RFC 9420,
// Section 5.1). A nil or empty salt is a string of Nh zero bytes.
func (s *Suite) Extract(salt, ikm []byte) []byte {
	if len(salt) == 0 {
		var zero [64]byte
		salt = zero[:s.nh]
	}
	m := hmac.New(s.newHash, salt)
	m.Write(ikm)
	return m.Sum(make([]byte, 0, s.nh))
}

// Expand is HKDF-Expand (RFC 5869) with the suite's hash. It panics if length
// exceeds 255*Nh, which RFC 5869 forbids; lengths in MLS are fixed by the
// protocol, never taken from a peer.
func (s *Suite) Expand(prk, info []byte, length int) []byte {
	out := make([]byte, length)
	s.expand(out, prk, info)
	return out
}

// expand fills out with HKDF-Expand(prk, info, len(out)).
func (s *Suite) expand(out, prk, info []byte) {
	if len(out) > 255*s.nh {
		panic("suite: HKDF-Expand length exceeds 255*Nh")
	}
	m := hmac.New(s.newHash, prk)
	var t [64]byte // T(i), at most SHA-512 sized
	var ctr [1]byte
	for done := 0; done < len(out); {
		if ctr[0] > 0 {
			m.Reset()
			m.Write(t[:s.nh])
		}
		ctr[0]++
		m.Write(info)
		m.Write(ctr[:])
		m.Sum(t[:0])
		done += copy(out[done:], t[:s.nh])
	}
	clear(t[:])
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
	out := make([]byte, length)
	var buf [128]byte
	s.expand(out, secret, appendKDFLabel(buf[:0], label, context, length))
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
	return s.ExpandWithLabel(secret, label, nil, s.nh)
}

// DeriveTreeSecret is ExpandWithLabel(Secret, Label, Generation, Length)
// with the generation as a uint32 (RFC 9420, Section 9).
func (s *Suite) DeriveTreeSecret(secret []byte, label string, generation uint32, length int) []byte {
	var g [4]byte
	binary.BigEndian.PutUint32(g[:], generation)
	out := make([]byte, length)
	var buf [64]byte
	s.expand(out, secret, appendKDFLabel(buf[:0], label, g[:], length))
	return out
}

// RefHash is Hash(RefHashInput{label, value}) (RFC 9420, Section 5.2). The
// label is used as given: callers pass the full label, e.g. "MLS 1.0
// KeyPackage Reference".
func (s *Suite) RefHash(label string, value []byte) []byte {
	h := s.newHash()
	var buf [8]byte
	h.Write(appendVarint(buf[:0], len(label)))
	h.Write([]byte(label))
	h.Write(appendVarint(buf[:0], len(value)))
	h.Write(value)
	return h.Sum(make([]byte, 0, s.nh))
}

// MAC is HMAC(key, data) with the suite's hash (RFC 9420, Section 5.1).
func (s *Suite) MAC(key, data []byte) []byte {
	m := hmac.New(s.newHash, key)
	m.Write(data)
	return m.Sum(make([]byte, 0, s.nh))
}

// VerifyMAC reports whether tag is MAC(key, data), in constant time.
func (s *Suite) VerifyMAC(key, data, tag []byte) bool {
	return hmac.Equal(s.MAC(key, data), tag)
}
