package inspect

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/conformance/vectortest"
	"github.com/mlskit/mlskit/internal/wire"
)

// messagesField is one field of a messages.json case and the type that
// decodes it (interop-test-vectors, "Messages").
type messagesField struct {
	key, typ string
	wf       wire.WireFormat // for MLSMessage fields
}

var messagesFields = []messagesField{
	{"mls_welcome", "MLSMessage", wire.WireFormatWelcome},
	{"mls_group_info", "MLSMessage", wire.WireFormatGroupInfo},
	{"mls_key_package", "MLSMessage", wire.WireFormatKeyPackage},
	{"ratchet_tree", "RatchetTree", 0},
	{"group_secrets", "GroupSecrets", 0},
	{"add_proposal", "add_proposal", 0},
	{"update_proposal", "update_proposal", 0},
	{"remove_proposal", "remove_proposal", 0},
	{"pre_shared_key_proposal", "pre_shared_key_proposal", 0},
	{"re_init_proposal", "re_init_proposal", 0},
	{"external_init_proposal", "external_init_proposal", 0},
	{"group_context_extensions_proposal", "group_context_extensions_proposal", 0},
	{"commit", "Commit", 0},
	{"public_message_application", "MLSMessage", wire.WireFormatPublicMessage},
	{"public_message_proposal", "MLSMessage", wire.WireFormatPublicMessage},
	{"public_message_commit", "MLSMessage", wire.WireFormatPublicMessage},
	{"private_message", "MLSMessage", wire.WireFormatPrivateMessage},
}

// loadMessages reads the official messages.json through the shared vector
// loader (never a copy in this repository).
func loadMessages(t *testing.T) []map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(vectortest.Dir(t), "messages.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []map[string]string
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("messages.json has no cases")
	}
	return cases
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// vectorTime is inside the lifetimes of the messages.json KeyPackages
// (2023-03-08 to 2023-05-31), so checks run past the lifetime.
var vectorTime = time.Date(2023, 4, 1, 0, 0, 0, 0, time.UTC)

// TestMessagesVectors inspects every field of every messages.json case, in
// text and JSON. Beyond "it prints", it proves the description complete:
// re-encoding the Node tree from its field values alone gives back the input
// byte for byte (so no field is missing, misordered or mis-sized), the
// decoded form of every extension re-encodes to its extension_data, and the
// JSON is valid and carries the same value.
func TestMessagesVectors(t *testing.T) {
	cases := loadMessages(t)
	fields := 0
	for i, tc := range cases {
		gi := mustHex(t, tc["mls_group_info"])
		for _, f := range messagesFields {
			data := mustHex(t, tc[f.key])
			for _, ctx := range []Context{{}, {Now: vectorTime, GroupInfo: gi}} {
				rep, err := Inspect(data, f.typ, ctx)
				if err != nil {
					t.Fatalf("case %d %s: %v", i, f.key, err)
				}
				checkReport(t, fmt.Sprintf("case %d %s", i, f.key), rep, data, f)
			}
			fields++
		}
	}
	t.Logf("%d cases, %d fields inspected in text and JSON, with and without the group info", len(cases), fields)
}

func checkReport(t *testing.T, name string, rep *Report, data []byte, f messagesField) {
	t.Helper()
	got, err := encodeNode(rep.Root)
	if err != nil {
		t.Fatalf("%s: re-encoding the description: %v", name, err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("%s: the description re-encodes to\n%x\nnot the input\n%x", name, got, data)
	}
	if err := checkDecoded(rep.Root); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	text := rep.Text(false)
	full := rep.Text(true)
	if !strings.HasPrefix(text, rep.Type+" (") || len(full) < len(text) {
		t.Fatalf("%s: text output starts %q", name, text[:min(len(text), 40)])
	}
	for _, c := range rep.Checks {
		if !strings.Contains(text, c.line()) {
			t.Fatalf("%s: check %q not printed", name, c.line())
		}
	}
	js, err := rep.JSON()
	if err != nil {
		t.Fatalf("%s: JSON: %v", name, err)
	}
	if !json.Valid(js) {
		t.Fatalf("%s: invalid JSON: %s", name, js)
	}
	var v struct {
		Type   string
		Size   int
		Value  any
		Checks []map[string]any
	}
	if err := json.Unmarshal(js, &v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if v.Size != len(data) || len(v.Checks) != len(rep.Checks) {
		t.Fatalf("%s: JSON says size %d and %d checks, want %d and %d", name, v.Size, len(v.Checks), len(data), len(rep.Checks))
	}
	if f.wf != 0 {
		obj, _ := v.Value.(map[string]any)
		wf, _ := obj["wire_format"].(map[string]any)
		if want := lookupName(wireFormatNames, uint64(f.wf), true); wf["name"] != want {
			t.Fatalf("%s: JSON wire_format %v, want %s", name, wf, want)
		}
	}
	// Every byte string of the JSON is in full: the longest one must be in
	// the JSON as hex.
	if longest := longestBytes(rep.Root); longest != nil && !bytes.Contains(js, []byte(hex.EncodeToString(longest))) {
		t.Fatalf("%s: JSON abbreviates a byte string", name)
	}
}

func longestBytes(n *Node) []byte {
	var best []byte
	var walk func(*Node)
	walk = func(n *Node) {
		if n == nil {
			return
		}
		if n.Kind == KindBytes && len(n.Bytes) > len(best) {
			best = n.Bytes
		}
		for _, c := range n.Fields {
			walk(c)
		}
		for _, c := range n.Items {
			walk(c)
		}
	}
	walk(n)
	return best
}

// encodeNode re-encodes a description from its values and types alone: the
// uintN types by width, enums by width, byte strings as opaque<V> (or fixed
// for opaque[N]), vectors with their varint length, present optionals with
// their presence octet.
func encodeNode(n *Node) ([]byte, error) {
	b := codec.NewBuilder(nil)
	if err := appendNode(b, n); err != nil {
		return nil, err
	}
	return b.Bytes()
}

func appendNode(b *codec.Builder, n *Node) error {
	if n.Optional {
		b.AddUint8(1)
	}
	switch n.Kind {
	case KindSecret:
		return fmt.Errorf("secret %s cannot be re-encoded", n.Name)
	case KindAbsent:
		if !strings.HasPrefix(n.Type, "optional<") {
			return fmt.Errorf("absent %s is not an optional", n.Type)
		}
		b.AddUint8(0)
	case KindUint:
		switch n.Type {
		case "uint8":
			b.AddUint8(uint8(n.Uint))
		case "uint16":
			b.AddUint16(uint16(n.Uint))
		case "uint32":
			b.AddUint32(uint32(n.Uint))
		case "uint64":
			b.AddUint64(n.Uint)
		default:
			return fmt.Errorf("number %s has type %q", n.Name, n.Type)
		}
	case KindEnum:
		if n.Wide {
			b.AddUint16(uint16(n.Uint))
		} else {
			b.AddUint8(uint8(n.Uint))
		}
	case KindBytes:
		if strings.HasPrefix(n.Type, "opaque[") {
			b.AddBytes(n.Bytes)
		} else {
			b.AddOpaque(n.Bytes)
		}
	case KindStruct:
		for _, f := range n.Fields {
			if err := appendNode(b, f); err != nil {
				return err
			}
		}
	case KindVector:
		var err error
		b.AddVector(func(b *codec.Builder) {
			for _, it := range n.Items {
				if err == nil {
					err = appendNode(b, it)
				}
			}
		})
		return err
	}
	return nil
}

// checkDecoded: every decoded opaque value re-encodes to its bytes.
func checkDecoded(n *Node) error {
	if n == nil {
		return nil
	}
	if n.Kind == KindBytes && n.Decoded != nil {
		got, err := encodeNode(n.Decoded)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, n.Bytes) {
			return fmt.Errorf("%s decoded as %s re-encodes to %x, not %x", n.Name, n.Decoded.Type, got, n.Bytes)
		}
		if err := checkDecoded(n.Decoded); err != nil {
			return err
		}
	}
	for _, c := range append(append([]*Node{}, n.Fields...), n.Items...) {
		if err := checkDecoded(c); err != nil {
			return err
		}
	}
	return nil
}

// TestMessagesCorrupted: proper prefixes of every field of every case fail
// with a *wire.DecodeError naming the type asked for, reason "truncated"
// and an offset inside the input, and single bit flips either give such an error or an
// object that still prints in text and JSON. Nothing panics.
func TestMessagesCorrupted(t *testing.T) {
	cases := loadMessages(t)
	rng := rand.New(rand.NewPCG(1, 2))
	// Every proper prefix of the fields of every everyPrefix-th case, and
	// 16 random ones of the others: 1.3 million decodes of all of them
	// would take most of a minute on a small machine.
	flipsPerField, everyPrefix := 6, 10
	if testing.Short() || raceEnabled {
		// The race detector makes each decode ten times slower and finds
		// nothing in this single-goroutine sweep: the README's test
		// command runs the package again without it, at full size.
		flipsPerField, everyPrefix = 2, 50
	}
	var truncs, flips, flipErrs int
	for i, tc := range cases {
		gi := mustHex(t, tc["mls_group_info"])
		for _, f := range messagesFields {
			data := mustHex(t, tc[f.key])
			name := fmt.Sprintf("case %d %s", i, f.key)
			want, _ := findType(f.typ)
			for _, n := range prefixes(rng, len(data), i%everyPrefix == 0) {
				_, err := Inspect(data[:n], f.typ, Context{})
				de := checkDecodeError(t, fmt.Sprintf("%s truncated to %d bytes", name, n), err, want.name, n)
				if de.Reason != "truncated" {
					t.Fatalf("%s truncated to %d bytes: reason %q, want truncated", name, n, de.Reason)
				}
				truncs++
			}
			for k := 0; k < flipsPerField; k++ {
				pos, bit := rng.IntN(len(data)), rng.IntN(8)
				bad := bytes.Clone(data)
				bad[pos] ^= 1 << bit
				fname := fmt.Sprintf("%s bit %d of byte %d flipped", name, bit, pos)
				rep, err := Inspect(bad, f.typ, Context{Now: vectorTime, GroupInfo: gi})
				flips++
				if err != nil {
					if de := checkDecodeError(t, fname, err, want.name, len(bad)); de.Reason == "" {
						t.Fatalf("%s: %v says where but not why", fname, err)
					}
					flipErrs++
					continue
				}
				_ = rep.Text(false)
				js, err := rep.JSON()
				if err != nil || !json.Valid(js) {
					t.Fatalf("%s: JSON %v", fname, err)
				}
			}
		}
	}
	t.Logf("%d truncations rejected; %d bit flips, %d rejected as malformed", truncs, flips, flipErrs)
}

// prefixes returns the lengths of the proper prefixes to try: all of them,
// or 16 at random (always including 0 and size-1).
func prefixes(rng *rand.Rand, size int, all bool) []int {
	if all || size <= 16 {
		out := make([]int, size)
		for i := range out {
			out[i] = i
		}
		return out
	}
	out := []int{0, size - 1}
	for range 14 {
		out = append(out, rng.IntN(size))
	}
	return out
}

func checkDecodeError(t *testing.T, name string, err error, typ string, size int) *wire.DecodeError {
	t.Helper()
	var de *wire.DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("%s: got %v, want a *wire.DecodeError", name, err)
	}
	if de.Type != typ || de.Offset < 0 || de.Offset > size {
		t.Fatalf("%s: error %q: type %q offset %d, want type %q and an offset in [0, %d]", name, de, de.Type, de.Offset, typ, size)
	}
	if !errors.Is(err, codec.ErrMalformed) {
		t.Fatalf("%s: %v does not match codec.ErrMalformed", name, err)
	}
	return de
}

// FuzzInspect: for any input and type, Inspect never panics, fails only
// with a *wire.DecodeError, and whatever it decodes it describes completely:
// the description re-encodes to the input. Seeded with every field of
// messages.json.
func FuzzInspect(f *testing.F) {
	dir := vectortest.Dir(f)
	data, err := os.ReadFile(filepath.Join(dir, "messages.json"))
	if err != nil {
		f.Fatal(err)
	}
	var cases []map[string]string
	if err := json.Unmarshal(data, &cases); err != nil {
		f.Fatal(err)
	}
	for i, tc := range cases {
		if i%10 != 0 { // a sample keeps the seed corpus run short
			continue
		}
		for k, fl := range messagesFields {
			b, err := hex.DecodeString(tc[fl.key])
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b, uint8(k))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, k uint8) {
		fl := messagesFields[int(k)%len(messagesFields)]
		rep, err := Inspect(b, fl.typ, Context{Now: vectorTime})
		if err != nil {
			want, _ := findType(fl.typ)
			checkDecodeError(t, "input", err, want.name, len(b))
			return
		}
		got, err := encodeNode(rep.Root)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("the description re-encodes to %x (%v), not %x", got, err, b)
		}
		if err := checkDecoded(rep.Root); err != nil {
			t.Fatal(err)
		}
		_ = rep.Text(false)
		if js, err := rep.JSON(); err != nil || !json.Valid(js) {
			t.Fatalf("JSON: %v", err)
		}
	})
}
