package codec

import (
	"bytes"
	"testing"
)

func TestVarintRoundTrip(t *testing.T) {
	for _, v := range []uint64{0, 1, 63, 64, 255, 16383, 16384, 1<<30 - 1} {
		b := NewBuilder(nil)
		b.AddVarint(v)
		enc, err := b.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		var got uint32
		r := NewReader(enc)
		if !r.ReadVarint(&got) || !r.Empty() || uint64(got) != v {
			t.Fatalf("varint %d: encoded %x decoded %d", v, enc, got)
		}
	}
	b := NewBuilder(nil)
	b.AddVarint(1 << 30)
	if _, err := b.Bytes(); err == nil {
		t.Fatal("2^30 encoded without error")
	}
}

func TestVarintRejects(t *testing.T) {
	for _, in := range [][]byte{
		{},                       // empty
		{0xc0},                   // prefix 0b11
		{0xff, 0xff, 0xff, 0xff}, // prefix 0b11
		{0x40, 0x3f},             // 63 in two bytes: not minimal
		{0x80, 0x00, 0x3f, 0xff}, // 16383 in four bytes: not minimal
		{0x40},                   // truncated
		{0x80, 0x00, 0x40},       // truncated
	} {
		var v uint32
		if NewReader(in).ReadVarint(&v) {
			t.Errorf("%x decoded to %d", in, v)
		}
	}
}

func TestOptionalPresence(t *testing.T) {
	for in, ok := range map[byte]bool{0: true, 1: true, 2: false, 0xff: false} {
		var p bool
		if got := NewReader([]byte{in}).ReadOptional(&p); got != ok {
			t.Errorf("presence %d: ok=%v, want %v", in, got, ok)
		}
	}
}

func TestVectorExact(t *testing.T) {
	// A vector of uint16 with 3 bytes of content cannot be consumed exactly.
	in := []byte{0x03, 0x00, 0x01, 0x02}
	ok := NewReader(in).ReadList(func(r *Reader) bool {
		var v uint16
		return r.ReadUint16(&v)
	})
	if ok {
		t.Fatal("vector with a partial element decoded")
	}
	// Length beyond the input.
	var o []byte
	if NewReader([]byte{0x05, 1, 2}).ReadOpaque(&o) {
		t.Fatal("truncated opaque decoded")
	}
}

func TestAddVectorLongHeader(t *testing.T) {
	for _, n := range []int{0, 63, 64, 16383, 16384, 70000} {
		payload := bytes.Repeat([]byte{0xab}, n)
		b := NewBuilder([]byte{0x99})
		b.AddVector(func(b *Builder) { b.AddBytes(payload) })
		enc, err := b.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		r := NewReader(enc[1:])
		var got []byte
		if enc[0] != 0x99 || !r.ReadOpaque(&got) || !r.Empty() || !bytes.Equal(got, payload) {
			t.Fatalf("n=%d: vector did not round-trip", n)
		}
		b2 := NewBuilder(nil)
		b2.AddOpaque(payload)
		enc2, _ := b2.Bytes()
		if !bytes.Equal(enc[1:], enc2) {
			t.Fatalf("n=%d: AddVector and AddOpaque disagree", n)
		}
	}
}

func TestReadOpaqueCopies(t *testing.T) {
	in := []byte{0x02, 0xaa, 0xbb}
	var got []byte
	if !NewReader(in).ReadOpaque(&got) {
		t.Fatal("decode failed")
	}
	in[1] = 0
	if got[0] != 0xaa {
		t.Fatal("ReadOpaque aliases the input")
	}
}

func FuzzReader(f *testing.F) {
	f.Add([]byte{0x40, 0x40})
	f.Add([]byte{0x03, 0x01, 0x02, 0x03})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(in)
		var v []byte
		if r.ReadOpaque(&v) {
			b := NewBuilder(nil)
			b.AddOpaque(v)
			enc, _ := b.Bytes()
			if !bytes.Equal(enc, in[:len(in)-r.Len()]) {
				t.Fatalf("re-encoding differs: %x vs %x", enc, in)
			}
		}
	})
}

// TestAddVectorNested: vectors nested three deep, with contents of every
// length class around the varint boundaries and no repeated octets to hide
// a misplaced move, encode as the same data written with AddOpaque.
func TestAddVectorNested(t *testing.T) {
	for _, n := range []int{0, 1, 59, 60, 63, 64, 16379, 16380, 16383, 16384, 70000} {
		payload := make([]byte, n)
		for i := range payload {
			payload[i] = byte(i*7 + i>>8)
		}
		b := NewBuilder(nil)
		b.AddUint8(1)
		b.AddVector(func(b *Builder) {
			b.AddUint16(2)
			b.AddVector(func(b *Builder) {
				b.AddVector(func(b *Builder) { b.AddBytes(payload) })
				b.AddUint8(3)
			})
		})
		got, err := b.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		inner := NewBuilder(nil)
		inner.AddOpaque(payload)
		inner.AddUint8(3)
		in, _ := inner.Bytes()
		mid := NewBuilder(nil)
		mid.AddUint16(2)
		mid.AddOpaque(in)
		m, _ := mid.Bytes()
		want := NewBuilder(nil)
		want.AddUint8(1)
		want.AddOpaque(m)
		w, _ := want.Bytes()
		if !bytes.Equal(got, w) {
			t.Fatalf("n=%d: nested AddVector differs from AddOpaque", n)
		}
	}
}

// TestParseVarintExhaustive: ParseVarint accepts exactly the shortest
// encoding of each value (RFC 9420, Section 2.1.2), read from the
// definition here, over every input of one and two bytes and the 4-byte
// inputs around each boundary and a spread between them.
func TestParseVarintExhaustive(t *testing.T) {
	want := func(b []byte) (uint32, int, bool) {
		if len(b) == 0 || b[0]>>6 == 3 {
			return 0, 0, false
		}
		n := 1 << (b[0] >> 6)
		if len(b) < n {
			return 0, 0, false
		}
		var x uint32
		for i, c := range b[:n] {
			if i == 0 {
				c &= 0x3f
			}
			x = x<<8 | uint32(c)
		}
		// The shortest encoding of x has this length.
		short := 4
		switch {
		case x < 1<<6:
			short = 1
		case x < 1<<14:
			short = 2
		}
		if n != short {
			return 0, 0, false
		}
		return x, n, true
	}
	check := func(b []byte) {
		x, n, ok := ParseVarint(b)
		wx, wn, wok := want(b)
		if x != wx || n != wn || ok != wok {
			t.Fatalf("ParseVarint(%x) = %d, %d, %v; want %d, %d, %v", b, x, n, ok, wx, wn, wok)
		}
		var r uint32
		rd := NewReader(b)
		if rd.ReadVarint(&r) != wok || (wok && (r != wx || rd.Offset() != wn)) {
			t.Fatalf("ReadVarint(%x) disagrees", b)
		}
	}
	check(nil)
	for v := range 1 << 16 {
		check([]byte{byte(v >> 8)})
		check([]byte{byte(v >> 8), byte(v)})
	}
	for v := uint32(0); v < 1<<30; v += 65521 {
		for _, x := range []uint32{v, 0x3fff, 0x4000, 0x3fffffff} {
			check([]byte{0x80 | byte(x>>24), byte(x >> 16), byte(x >> 8), byte(x)})
			check([]byte{0x80 | byte(x>>24), byte(x >> 16), byte(x >> 8)}) // truncated
		}
	}
}
