// Package codec is a strict reader and builder for the TLS presentation
// language as RFC 9420 uses it, including MLS variable-length integers.
//
// # Rules enforced on input (RFC 9420, Section 2.1)
//
//   - Vector lengths are varints of 1, 2 or 4 bytes; the two-bit prefix 0b11 is
//     rejected and a length must use the minimum encoding (Section 2.1.2).
//   - An optional<T> presence octet is 0 or 1 only (Section 2.1.1).
//   - A vector's elements must consume its bytes exactly.
//
// The shape follows golang.org/x/crypto/cryptobyte: reads return bool so they
// chain with ||, and the Builder carries a sticky error. Decoding never panics
// on any input; callers turn a false result into a typed error at the message
// boundary.
package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// MaxVarint is the largest value an MLS varint can carry (2^30 - 1).
const MaxVarint = 1<<30 - 1

// ErrMalformed is the root of every decoding failure.
var ErrMalformed = errors.New("mls: malformed encoding")

// Reader consumes a byte slice from the front. The zero value is an empty
// reader. Slices returned by ReadOpaque and ReadBytes are copies, so callers
// may keep them after the input buffer is reused.
type Reader struct {
	b   []byte
	off int // offset of b[0] in the original input, for error reporting
}

// NewReader returns a Reader over b. b is not copied.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Empty reports whether all input has been consumed.
func (r *Reader) Empty() bool { return len(r.b) == 0 }

// Len returns the number of unread bytes.
func (r *Reader) Len() int { return len(r.b) }

// Offset returns how many bytes of the original input have been consumed.
func (r *Reader) Offset() int { return r.off }

// Rest returns the unread bytes without copying and without consuming them.
func (r *Reader) Rest() []byte { return r.b }

func (r *Reader) take(n int) ([]byte, bool) {
	if n < 0 || n > len(r.b) {
		return nil, false
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	r.off += n
	return v, true
}

// Skip consumes n bytes.
func (r *Reader) Skip(n int) bool {
	_, ok := r.take(n)
	return ok
}

// ReadUint8 reads one byte.
func (r *Reader) ReadUint8(out *uint8) bool {
	v, ok := r.take(1)
	if !ok {
		return false
	}
	*out = v[0]
	return true
}

// ReadUint16 reads a big-endian uint16.
func (r *Reader) ReadUint16(out *uint16) bool {
	v, ok := r.take(2)
	if !ok {
		return false
	}
	*out = binary.BigEndian.Uint16(v)
	return true
}

// ReadUint32 reads a big-endian uint32.
func (r *Reader) ReadUint32(out *uint32) bool {
	v, ok := r.take(4)
	if !ok {
		return false
	}
	*out = binary.BigEndian.Uint32(v)
	return true
}

// ReadUint64 reads a big-endian uint64.
func (r *Reader) ReadUint64(out *uint64) bool {
	v, ok := r.take(8)
	if !ok {
		return false
	}
	*out = binary.BigEndian.Uint64(v)
	return true
}

// ReadBool reads a one-byte boolean, which must be 0 or 1.
func (r *Reader) ReadBool(out *bool) bool {
	var v uint8
	if !r.ReadUint8(&v) || v > 1 {
		return false
	}
	*out = v == 1
	return true
}

// ReadOptional reads the presence octet of an optional<T> (RFC 9420,
// Section 2.1.1): 0 or 1, anything else is malformed.
func (r *Reader) ReadOptional(present *bool) bool { return r.ReadBool(present) }

// ReadVarint reads an MLS variable-length integer (RFC 9420, Section 2.1.2),
// rejecting the 0b11 prefix and non-minimal encodings.
func (r *Reader) ReadVarint(out *uint32) bool {
	x, n, ok := ParseVarint(r.b)
	if !ok {
		return false
	}
	r.take(n)
	*out = x
	return true
}

// ParseVarint decodes the MLS varint at the start of b (RFC 9420, Section
// 2.1.2) and returns its value and length: 1, 2 or 4 bytes, the shortest
// encoding of the value, prefix 0b11 rejected. ok is false if b does not
// start with one.
func ParseVarint(b []byte) (x uint32, n int, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	prefix := b[0] >> 6
	if prefix == 0 {
		// One byte: 0-63, minimal by construction; most lengths in an
		// MLS message (keys, signatures, path secret ciphertexts).
		return uint32(b[0]), 1, true
	}
	if prefix == 3 {
		return 0, 0, false
	}
	n = 1 << prefix
	if n > len(b) {
		return 0, 0, false
	}
	x = uint32(b[0] & 0x3f)
	for _, c := range b[1:n] {
		x = x<<8 | uint32(c)
	}
	if x < 1<<(8*(n/2)-2) {
		return 0, 0, false // not the shortest encoding
	}
	return x, n, true
}

// ReadBytes reads exactly n bytes into a fresh copy.
func (r *Reader) ReadBytes(n int, out *[]byte) bool {
	v, ok := r.take(n)
	if !ok {
		return false
	}
	*out = append(make([]byte, 0, n), v...)
	return true
}

// ReadOpaque reads opaque<V>: a varint length then that many bytes, copied.
// A zero-length vector yields a non-nil empty slice.
func (r *Reader) ReadOpaque(out *[]byte) bool {
	var n uint32
	return r.ReadVarint(&n) && r.ReadBytes(int(n), out)
}

// ReadVector reads a varint-prefixed vector and hands its contents to f as a
// sub-reader. It fails unless f succeeds and consumes the contents exactly.
func (r *Reader) ReadVector(f func(*Reader) bool) bool {
	var n uint32
	if !r.ReadVarint(&n) {
		return false
	}
	start := r.off
	v, ok := r.take(int(n))
	if !ok {
		return false
	}
	sub := &Reader{b: v, off: start}
	return f(sub) && sub.Empty()
}

// ReadList reads a varint-prefixed vector of elements, calling elem until the
// vector's bytes are used up. Each call must consume at least one byte, so a
// hostile length cannot make it loop without progress.
func (r *Reader) ReadList(elem func(*Reader) bool) bool {
	return r.ReadVector(func(s *Reader) bool {
		for !s.Empty() {
			before := s.Len()
			if !elem(s) || s.Len() == before {
				return false
			}
		}
		return true
	})
}

// Builder appends encodings to a buffer. The first failure (an oversized
// vector) is sticky and reported by Bytes.
type Builder struct {
	buf []byte
	err error
}

// NewBuilder returns a Builder that appends to buf.
func NewBuilder(buf []byte) *Builder { return &Builder{buf: buf} }

var errTooLong = errors.New("mls: vector longer than 2^30-1 bytes")

// Bytes returns the encoding, or the first error met while building.
func (b *Builder) Bytes() ([]byte, error) {
	if b.err != nil {
		return nil, b.err
	}
	return b.buf, nil
}

// Err returns the sticky error, if any.
func (b *Builder) Err() error { return b.err }

// SetError records err unless an error is already recorded.
func (b *Builder) SetError(err error) {
	if b.err == nil {
		b.err = err
	}
}

// AddUint8 appends one byte.
func (b *Builder) AddUint8(v uint8) { b.buf = append(b.buf, v) }

// AddUint16 appends a big-endian uint16.
func (b *Builder) AddUint16(v uint16) { b.buf = binary.BigEndian.AppendUint16(b.buf, v) }

// AddUint32 appends a big-endian uint32.
func (b *Builder) AddUint32(v uint32) { b.buf = binary.BigEndian.AppendUint32(b.buf, v) }

// AddUint64 appends a big-endian uint64.
func (b *Builder) AddUint64(v uint64) { b.buf = binary.BigEndian.AppendUint64(b.buf, v) }

// AddBool appends 1 for true and 0 for false.
func (b *Builder) AddBool(v bool) {
	if v {
		b.AddUint8(1)
	} else {
		b.AddUint8(0)
	}
}

// AddOptional appends the presence octet of an optional<T>.
func (b *Builder) AddOptional(present bool) { b.AddBool(present) }

// AddVarint appends v in the minimal MLS varint encoding.
func (b *Builder) AddVarint(v uint64) {
	b.buf = AppendVarint(b.buf, v, &b.err)
}

// AppendVarint appends the minimal MLS varint encoding of v to buf. If v does
// not fit in 30 bits it sets *err (when nil) and appends nothing.
func AppendVarint(buf []byte, v uint64, err *error) []byte {
	switch {
	case v < 1<<6:
		return append(buf, byte(v))
	case v < 1<<14:
		return append(buf, byte(v>>8)|0x40, byte(v))
	case v < 1<<30:
		return append(buf, byte(v>>24)|0x80, byte(v>>16), byte(v>>8), byte(v))
	default:
		if err != nil && *err == nil {
			*err = errTooLong
		}
		return buf
	}
}

// VarintLen returns the length of the minimal varint encoding of v, or 0 if
// v is too large.
func VarintLen(v uint64) int {
	switch {
	case v < 1<<6:
		return 1
	case v < 1<<14:
		return 2
	case v < 1<<30:
		return 4
	}
	return 0
}

// AddBytes appends raw bytes with no length prefix.
func (b *Builder) AddBytes(v []byte) { b.buf = append(b.buf, v...) }

// AddAppended appends the n octets that f appends to its argument; an
// error from f, or a different count, is the Builder's error.
func (b *Builder) AddAppended(n int, f func([]byte) ([]byte, error)) {
	start := len(b.buf)
	out, err := f(b.buf)
	if err == nil && len(out)-start != n {
		err = fmt.Errorf("codec: %d octets appended, %d announced", len(out)-start, n)
	}
	if err != nil {
		b.SetError(err)
		return
	}
	b.buf = out
}

// AddOpaque appends opaque<V>: varint length then the bytes.
func (b *Builder) AddOpaque(v []byte) {
	if uint64(len(v)) > MaxVarint {
		b.SetError(errTooLong)
		return
	}
	b.AddVarint(uint64(len(v)))
	b.buf = append(b.buf, v...)
}

// AddVector appends a varint-prefixed vector whose contents f writes. The
// length is patched in after f returns; the common short case costs one
// small memmove at most.
//
// The length's size is known only once f has run, so room for the longest
// (4 octets) is reserved and the contents are moved left when the length
// takes fewer: that moves fewer than 2^14 octets, whereas reserving the
// shortest would move the contents of every large vector (a ratchet tree
// inside an extension inside a GroupInfo moved once per level).
func (b *Builder) AddVector(f func(*Builder)) {
	start := len(b.buf)
	b.buf = append(b.buf, 0, 0, 0, 0)
	f(b)
	n := len(b.buf) - start - 4
	if n > MaxVarint {
		b.SetError(errTooLong)
		return
	}
	hl := VarintLen(uint64(n))
	if hl < 4 {
		copy(b.buf[start+hl:], b.buf[start+4:])
		b.buf = b.buf[:start+hl+n]
	}
	AppendVarint(b.buf[start:start], uint64(n), nil)
}

// Marshaler is implemented by every wire struct.
type Marshaler interface {
	Marshal(b *Builder)
}

// Marshal encodes m into a fresh slice.
func Marshal(m Marshaler) ([]byte, error) {
	b := NewBuilder(nil)
	m.Marshal(b)
	return b.Bytes()
}

// Unmarshal decodes all of data with f, which must consume every byte.
func Unmarshal(data []byte, f func(*Reader) bool) bool {
	r := NewReader(data)
	return f(r) && r.Empty()
}

// Uint32Fits reports whether n fits in a uint32 (for callers converting lengths).
func Uint32Fits(n int) bool { return n >= 0 && uint64(n) <= math.MaxUint32 }
