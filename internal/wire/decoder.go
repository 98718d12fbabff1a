package wire

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/mlskit/mlskit/internal/codec"
)

// DecodeError reports malformed input: the type being decoded, the byte
// offset into the input at which decoding failed, and why when that is more
// than "these bytes do not parse". It wraps codec.ErrMalformed.
type DecodeError struct {
	Type   string // the top-level type, e.g. "MLSMessage"
	Offset int    // byte offset of the first byte that could not be parsed
	Reason string // e.g. "truncated", "unknown sender type", "trailing bytes"
}

func (e *DecodeError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("mls: malformed %s at byte %d", e.Type, e.Offset)
	}
	return fmt.Sprintf("mls: malformed %s at byte %d: %s", e.Type, e.Offset, e.Reason)
}

// Unwrap returns codec.ErrMalformed, so errors.Is(err, codec.ErrMalformed)
// holds for every decoding failure.
func (e *DecodeError) Unwrap() error { return codec.ErrMalformed }

// failure records the first (innermost) decoding failure. Decoding never
// backtracks, so the first failure recorded is the one that made the whole
// decode fail.
type failure struct {
	set    bool
	off    int
	reason string
}

// decoder is a strict, allocation-free reader over a slice that the decoded
// values alias. It mirrors codec.Reader (and uses it for varints, so the MLS
// varint rules live in one place) but keeps absolute offsets in nested
// vectors and records where decoding failed, without closures.
type decoder struct {
	b    []byte   // unread input
	off  int      // offset of b[0] in the whole input
	fail *failure // nil when the caller does not want diagnostics
}

// errAt records a failure at off (if none is recorded yet) and returns false.
func (d *decoder) errAt(off int, reason string) bool {
	if d.fail != nil && !d.fail.set {
		*d.fail = failure{set: true, off: off, reason: reason}
	}
	return false
}

func (d *decoder) empty() bool { return len(d.b) == 0 }

func (d *decoder) take(n int) ([]byte, bool) {
	if n < 0 || n > len(d.b) {
		return nil, d.errAt(d.off, "truncated")
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	d.off += n
	return v, true
}

// consumed returns the bytes read since d.b was start, capacity-limited so an
// append to the result can never overwrite the input.
func consumed(start []byte, d *decoder) []byte {
	n := len(start) - len(d.b)
	return start[:n:n]
}

func readU8[T ~uint8](d *decoder, out *T) bool {
	v, ok := d.take(1)
	if ok {
		*out = T(v[0])
	}
	return ok
}

func readU16[T ~uint16](d *decoder, out *T) bool {
	v, ok := d.take(2)
	if ok {
		*out = T(uint16(v[0])<<8 | uint16(v[1]))
	}
	return ok
}

func (d *decoder) u32(out *uint32) bool {
	v, ok := d.take(4)
	if ok {
		*out = uint32(v[0])<<24 | uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3])
	}
	return ok
}

func (d *decoder) u64(out *uint64) bool {
	v, ok := d.take(8)
	if ok {
		*out = uint64(v[0])<<56 | uint64(v[1])<<48 | uint64(v[2])<<40 | uint64(v[3])<<32 |
			uint64(v[4])<<24 | uint64(v[5])<<16 | uint64(v[6])<<8 | uint64(v[7])
	}
	return ok
}

// varint reads an MLS varint (RFC 9420, Section 2.1.2) with codec's rules:
// 1, 2 or 4 bytes, minimal, prefix 0b11 rejected.
func (d *decoder) varint(out *uint32) bool {
	x, n, ok := codec.ParseVarint(d.b)
	if !ok {
		if len(d.b) == 0 || 1<<(d.b[0]>>6) > len(d.b) {
			return d.errAt(d.off, "truncated")
		}
		return d.errAt(d.off, "invalid varint")
	}
	*out = x
	d.b = d.b[n:]
	d.off += n
	return true
}

// opaque reads opaque<V>. The result aliases the input; a zero-length
// vector gives a non-nil empty slice, as codec.Reader.ReadOpaque does.
func (d *decoder) opaque(out *[]byte) bool {
	if b := d.b; len(b) > 0 && b[0] < 0x40 && int(b[0]) < len(b) {
		// codec.ParseVarint's one-byte case (0-63, minimal by
		// construction), written out with the bytes it counts: most
		// opaque fields of a message (keys, signatures, a commit's path
		// secret ciphertexts) take it, and ParseVarint is over the
		// compiler's inlining budget, so a call per field would be.
		e := 1 + int(b[0])
		*out = b[1:e:e]
		d.b, d.off = b[e:], d.off+e
		return true
	}
	var n uint32
	if !d.varint(&n) {
		return false
	}
	v, ok := d.take(int(n))
	if ok {
		*out = v
	}
	return ok
}

// optional reads the presence octet of optional<T> (RFC 9420, Section 2.1.1).
func (d *decoder) optional(present *bool) bool {
	var v uint8
	if !readU8(d, &v) {
		return false
	}
	if v > 1 {
		return d.errAt(d.off-1, "presence octet not 0 or 1")
	}
	*present = v == 1
	return true
}

// vector reads a varint length and returns a decoder over exactly that many
// bytes. The caller reads elements until it is empty.
func (d *decoder) vector() (decoder, bool) {
	var n uint32
	if !d.varint(&n) {
		return decoder{}, false
	}
	start := d.off
	v, ok := d.take(int(n))
	if !ok {
		return decoder{}, false
	}
	return decoder{b: v, off: start, fail: d.fail}, true
}

// decodeList reads a vector of elements. An empty vector gives nil.
func decodeList[T any](d *decoder, out *[]T, elem func(*T, *decoder) bool) bool {
	v, ok := appendList(d, nil, elem)
	if ok {
		*out = v
	}
	return ok
}

// appendList reads a list as decodeList does, appending to v.
func appendList[T any](d *decoder, v []T, elem func(*T, *decoder) bool) ([]T, bool) {
	s, ok := d.vector()
	if !ok {
		return nil, false
	}
	var zero T
	for !s.empty() {
		before := len(s.b)
		// Decoded in place: a local passed to elem, a func value, would
		// escape and cost an allocation per element.
		v = append(v, zero)
		if !elem(&v[len(v)-1], &s) {
			return nil, false
		}
		if len(s.b) == before { // cannot happen for MLS structs; guards against a loop
			return nil, s.errAt(s.off, "empty list element")
		}
	}
	return v, true
}

func decodeU16List[T ~uint16](d *decoder, out *[]T) bool {
	s, ok := d.fixedList(2)
	if !ok {
		return false
	}
	var v []T
	if n := len(s) / 2; n > 0 {
		v = make([]T, n) // one allocation: the vector's length fixes the count
		for i := range v {
			v[i] = T(uint16(s[2*i])<<8 | uint16(s[2*i+1]))
		}
	}
	*out = v
	return true
}

func decodeU32List(d *decoder, out *[]uint32) bool {
	s, ok := d.fixedList(4)
	if !ok {
		return false
	}
	var v []uint32
	if n := len(s) / 4; n > 0 {
		v = make([]uint32, n)
		for i := range v {
			e := s[4*i:]
			v[i] = uint32(e[0])<<24 | uint32(e[1])<<16 | uint32(e[2])<<8 | uint32(e[3])
		}
	}
	*out = v
	return true
}

// fixedList reads a vector of size-byte elements and returns its contents,
// which must be a whole number of elements.
func (d *decoder) fixedList(size int) ([]byte, bool) {
	s, ok := d.vector()
	if !ok {
		return nil, false
	}
	if rem := len(s.b) % size; rem != 0 {
		return nil, d.errAt(s.off+len(s.b)-rem, "truncated")
	}
	return s.b, true
}

func decodeOpaqueList(d *decoder, out *[][]byte) bool {
	return decodeList(d, out, func(e *[]byte, d *decoder) bool { return d.opaque(e) })
}

// unmarshalFrom runs f over r's unread bytes without copying, and advances r
// past what f consumed only if f succeeds.
func unmarshalFrom(r *codec.Reader, f func(*decoder) bool) bool {
	d := decoder{b: r.Rest(), off: r.Offset()}
	if !f(&d) {
		return false
	}
	return r.Skip(r.Len() - len(d.b))
}

// decodable is implemented by every struct in this package.
type decodable interface {
	decode(d *decoder) bool
}

// Unmarshaler is implemented by every struct in this package.
type Unmarshaler interface {
	Unmarshal(r *codec.Reader) bool
}

// Decode decodes data, which must hold exactly one T, into a new T. It copies
// data once; the result's byte slices point into that copy. Errors are
// *DecodeError.
//
// Types whose encoding depends on context from an enclosing struct
// (FramedContentAuthData, PrivateMessageContent) cannot be decoded with
// Decode; use UnmarshalPrivateMessageContent.
func Decode[T any, P interface {
	*T
	Unmarshaler
}](data []byte) (*T, error) {
	x := new(T)
	if dx, ok := any(x).(decodable); ok {
		if err := decodeAll(x, data, dx.decode); err != nil {
			return nil, err
		}
		return x, nil
	}
	// Not one of ours: decode through the public interface.
	r := codec.NewReader(bytes.Clone(data))
	if !P(x).Unmarshal(r) {
		return nil, &DecodeError{Type: typeName(x)}
	}
	if !r.Empty() {
		return nil, &DecodeError{Type: typeName(x), Offset: r.Offset(), Reason: "trailing bytes"}
	}
	return x, nil
}

// DecodeInPlace is Decode without the copy: the result's byte slices point
// into data itself. For a caller that owns data and never changes it again
// (a GroupInfo just decrypted into a buffer of its own, whose ratchet tree
// the joiner then keeps in the same bytes), or that only reads the result
// and copies out what it keeps before data can change.
func DecodeInPlace[T any, P interface {
	*T
	decodable
}](data []byte) (*T, error) {
	x := new(T)
	if err := decodeInto(x, data, P(x).decode); err != nil {
		return nil, err
	}
	return x, nil
}

// BorrowMLSMessage is DecodeInPlace of an MLSMessage, for a caller that
// only reads the result (mls.InspectMessage, which a delivery service runs
// on every message it accepts).
func BorrowMLSMessage(data []byte) (*MLSMessage, error) { return DecodeInPlace[MLSMessage](data) }

// typeName names *x for a DecodeError ("MLSMessage", not "*wire.MLSMessage").
func typeName(x any) string {
	s := fmt.Sprintf("%T", x)
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		s = s[i+1:]
	}
	return strings.TrimLeft(s, "*")
}

// decodeAll copies data once and decodes all of it with f; x names the type
// in errors.
func decodeAll(x any, data []byte, f func(*decoder) bool) error {
	return decodeInto(x, bytes.Clone(data), f)
}

// decodeInto decodes all of data with f, leaving the result's byte slices
// pointing into data; the decoder never writes to it.
func decodeInto(x any, data []byte, f func(*decoder) bool) error {
	var fl failure
	d := decoder{b: data, fail: &fl}
	if d.b == nil {
		d.b = []byte{}
	}
	if !f(&d) {
		if !fl.set {
			fl.off, fl.reason = d.off, ""
		}
		return &DecodeError{Type: typeName(x), Offset: fl.off, Reason: fl.reason}
	}
	if !d.empty() {
		return &DecodeError{Type: typeName(x), Offset: d.off, Reason: "trailing bytes"}
	}
	return nil
}
