package storage_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/storage"
	"github.com/mlskit/mlskit/storage/storagetest"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	for _, e := range []storage.Envelope{
		{Kind: 1, Version: 0, Payload: nil},
		{Kind: 0xffff, Version: 0xffff, Payload: []byte{0}},
		{Kind: 7, Version: 3, Payload: bytes.Repeat([]byte{0xab}, 64)},    // 2-byte length
		{Kind: 7, Version: 3, Payload: bytes.Repeat([]byte{0xcd}, 20000)}, // 4-byte length
	} {
		b, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := storage.ParseEnvelope(b)
		if err != nil {
			t.Fatalf("ParseEnvelope(Marshal(%d/%d, %d bytes)): %v", e.Kind, e.Version, len(e.Payload), err)
		}
		if got.Kind != e.Kind || got.Version != e.Version || !bytes.Equal(got.Payload, e.Payload) {
			t.Fatalf("round trip changed the envelope")
		}
		// No proper prefix decodes, and no extension does.
		for i := range len(b) {
			if _, err := storage.ParseEnvelope(b[:i]); !errors.Is(err, storage.ErrCorrupt) || !errors.Is(err, codec.ErrMalformed) {
				t.Fatalf("prefix of %d/%d bytes: err = %v, want ErrCorrupt wrapping ErrMalformed", i, len(b), err)
			}
		}
		if _, err := storage.ParseEnvelope(append(b, 0)); !errors.Is(err, storage.ErrCorrupt) {
			t.Fatalf("trailing byte: err = %v, want ErrCorrupt", err)
		}
	}
}

func TestEnvelopeRejects(t *testing.T) {
	if _, err := (storage.Envelope{Kind: 0}).Marshal(); err == nil {
		t.Error("Marshal accepted kind 0")
	}
	for name, b := range map[string][]byte{
		"kind 0":                 {0, 0, 0, 1, 0},
		"zeroed":                 make([]byte, 16),
		"non-minimal length":     {0, 1, 0, 1, 0x40, 0x01, 0xaa},
		"length prefix 0b11":     {0, 1, 0, 1, 0xc0, 0, 0, 0, 0, 0, 0, 1, 0xaa},
		"length past the end":    {0, 1, 0, 1, 0x05, 1, 2},
		"empty":                  {},
		"kind and version only":  {0, 1, 0, 1},
		"trailing after payload": {0, 1, 0, 1, 0x01, 0xaa, 0xbb},
	} {
		if _, err := storage.ParseEnvelope(b); !errors.Is(err, storage.ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
}

func TestOpenEnvelope(t *testing.T) {
	b, err := storage.Envelope{Kind: 2, Version: 5, Payload: []byte("group state")}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	v, p, err := storage.OpenEnvelope(b, 2)
	if err != nil || v != 5 || string(p) != "group state" {
		t.Fatalf("OpenEnvelope = %d, %q, %v", v, p, err)
	}
	// The payload is a copy.
	clear(b)
	if string(p) != "group state" {
		t.Fatal("payload aliases the input")
	}
	b, _ = storage.Envelope{Kind: 3, Version: 5, Payload: []byte("x")}.Marshal()
	if _, _, err := storage.OpenEnvelope(b, 2); !errors.Is(err, storage.ErrWrongKind) {
		t.Fatalf("wrong kind: err = %v, want ErrWrongKind", err)
	}
	if _, _, err := storage.OpenEnvelope(b[:3], 3); !errors.Is(err, storage.ErrCorrupt) {
		t.Fatalf("truncated: err = %v, want ErrCorrupt", err)
	}
}

// TestEnvelopeGolden pins the envelope encoding: stored state written by an
// earlier build must stay readable.
func TestEnvelopeGolden(t *testing.T) {
	b, err := storage.Envelope{Kind: 0x0102, Version: 0x0304, Payload: []byte("payload")}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	storagetest.Golden(t, "envelope-v1", b)
	if _, err := storage.ParseEnvelope(b); err != nil {
		t.Fatal(err)
	}
}

func FuzzParseEnvelope(f *testing.F) {
	for _, e := range []storage.Envelope{{Kind: 1}, {Kind: 9, Version: 2, Payload: []byte("abc")}} {
		b, _ := e.Marshal()
		f.Add(b)
	}
	f.Add([]byte{0, 1, 0, 1, 0x40, 0x01, 0xaa})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := storage.ParseEnvelope(b)
		if err != nil {
			return
		}
		out, err := e.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed envelope: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("decode ok but re-encoding differs: %x vs %x", out, b)
		}
	})
}
