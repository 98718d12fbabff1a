package inspect

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// NodeKind says what a Node holds.
type NodeKind uint8

// Node kinds.
const (
	KindStruct NodeKind = iota // Fields, in RFC order
	KindVector                 // Items, in wire order
	KindBytes                  // Bytes (and maybe Decoded)
	KindUint                   // Uint
	KindEnum                   // Uint, with its name in Enum
	KindAbsent                 // an optional<T> that is not present, or a blank tree node
	KindSecret                 // a secret byte string of Uint bytes, not shown
)

// Node is one element of a decoded MLS object: a struct, a vector, a byte
// string, a number or an absent optional. Names are the RFC 9420 field names.
type Node struct {
	Name string // field name ("init_key"); empty for a vector element
	Type string // RFC type name ("KeyPackage", "uint64", "HPKEPublicKey")
	Kind NodeKind

	Fields []*Node // KindStruct
	Items  []*Node // KindVector

	Bytes   []byte // KindBytes
	Text    string // KindBytes: the bytes as text, when they are printable UTF-8
	Decoded *Node  // KindBytes: what the opaque bytes hold (extension data)

	Uint uint64 // KindUint, KindEnum
	Enum string // KindEnum: the value's name, "GREASE" or "unknown"
	Wide bool   // KindEnum: a 16-bit code point, printed in hex

	// Optional marks the value of an optional<T> that is present (a
	// presence octet precedes it on the wire).
	Optional bool

	// Label annotates the node in text output (a tree node's position, a
	// decoding error of opaque data). It is not part of the wire value.
	Label string
}

func structNode(name, typ string, fields ...*Node) *Node {
	return &Node{Name: name, Type: typ, Kind: KindStruct, Fields: fields}
}

func vectorNode(name, typ string, items []*Node) *Node {
	return &Node{Name: name, Type: typ, Kind: KindVector, Items: items}
}

func bytesNode(name, typ string, b []byte) *Node {
	return &Node{Name: name, Type: typ, Kind: KindBytes, Bytes: b}
}

// textBytesNode is a byte string that is often text (an identity, a group
// id): the text is shown beside the hex when it is printable.
func textBytesNode(name, typ string, b []byte) *Node {
	n := bytesNode(name, typ, b)
	if printable(b) {
		n.Text = string(b)
	}
	return n
}

func uintNode(name, typ string, v uint64) *Node {
	return &Node{Name: name, Type: typ, Kind: KindUint, Uint: v}
}

func enumNode(name, typ string, v uint64, enumName string, wide bool) *Node {
	return &Node{Name: name, Type: typ, Kind: KindEnum, Uint: v, Enum: enumName, Wide: wide}
}

// secretNode stands for a secret the output must not show (a decrypted
// joiner_secret): only its length is kept.
func secretNode(name string, n int) *Node {
	return &Node{Name: name, Type: "opaque<V>", Kind: KindSecret, Uint: uint64(n)}
}

func absentNode(name, typ string) *Node {
	return &Node{Name: name, Type: typ, Kind: KindAbsent}
}

// present marks n as the value of a present optional<T>.
func present(n *Node) *Node {
	n.Optional = true
	return n
}

// named returns n with its field name set (for describers that build a node
// without knowing the field it fills).
func named(name string, n *Node) *Node {
	n.Name = name
	return n
}

// printable reports whether b is non-empty UTF-8 text without control
// characters, so that showing it as text helps rather than misleads.
func printable(b []byte) bool {
	if len(b) == 0 || !utf8.Valid(b) {
		return false
	}
	// Only text a terminal shows as it is: no controls, and no bidi
	// overrides or invisible format characters that would make an identity
	// read as another (the bytes are still shown in hex).
	for _, r := range string(b) {
		if !strconv.IsPrint(r) {
			return false
		}
	}
	return true
}

// --- text ---

// maxInline is the longest line on which a list of numbers is printed
// inline; a longer list gets one line per element.
const maxInline = 100

// abbrevOver is the length above which text output abbreviates byte strings.
const abbrevOver = 32

func hexText(b []byte, full bool) string {
	if full || len(b) <= abbrevOver {
		return hex.EncodeToString(b)
	}
	return hex.EncodeToString(b[:16]) + "..." + hex.EncodeToString(b[len(b)-4:])
}

func enumText(n *Node) string {
	if n.Wide {
		return fmt.Sprintf("%s (0x%04x)", n.Enum, n.Uint)
	}
	return fmt.Sprintf("%s (%d)", n.Enum, n.Uint)
}

func bytesText(n *Node, full bool) string {
	s := fmt.Sprintf("%d bytes", len(n.Bytes))
	if len(n.Bytes) > 0 {
		s += " " + hexText(n.Bytes, full)
	}
	if n.Text != "" {
		s += " " + strconv.Quote(n.Text)
	}
	return s
}

func scalarText(n *Node, full bool) string {
	switch n.Kind {
	case KindUint:
		return strconv.FormatUint(n.Uint, 10)
	case KindEnum:
		return enumText(n)
	case KindBytes:
		return bytesText(n, full)
	}
	return ""
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// writeText writes n at the given indent. head is what precedes the value
// on n's first line ("name: " or "[3] ").
func writeText(w *strings.Builder, n *Node, head string, indent int, full bool) {
	pad := strings.Repeat("  ", indent)
	label := ""
	if n.Label != "" {
		label = " (" + n.Label + ")"
	}
	switch n.Kind {
	case KindAbsent:
		fmt.Fprintf(w, "%s%sabsent%s\n", pad, head, label)
	case KindSecret:
		fmt.Fprintf(w, "%s%s%d bytes (secret, not shown)%s\n", pad, head, n.Uint, label)
	case KindUint, KindEnum:
		fmt.Fprintf(w, "%s%s%s%s\n", pad, head, scalarText(n, full), label)
	case KindBytes:
		fmt.Fprintf(w, "%s%s%s%s\n", pad, head, bytesText(n, full), label)
		if d := n.Decoded; d != nil && d.Kind == KindStruct {
			as := *d
			as.Type = "as " + d.Type
			writeText(w, &as, "", indent+1, full)
		} else if d != nil {
			writeText(w, d, "as "+d.Type+": ", indent+1, full)
		}
	case KindStruct:
		fmt.Fprintf(w, "%s%s%s%s\n", pad, head, n.Type, label)
		for _, f := range n.Fields {
			writeText(w, f, f.Name+": ", indent+1, full)
		}
	case KindVector:
		if len(n.Items) > 0 && allScalarNumbers(n.Items) {
			parts := make([]string, len(n.Items))
			for i, it := range n.Items {
				parts[i] = scalarText(it, full)
			}
			line := fmt.Sprintf("%s%s[%s]%s", pad, head, strings.Join(parts, ", "), label)
			if len(line) <= maxInline {
				w.WriteString(line + "\n")
				return
			}
		}
		fmt.Fprintf(w, "%s%s%s%s\n", pad, head, plural(len(n.Items), "item", "items"), label)
		for i, it := range n.Items {
			writeText(w, it, "["+strconv.Itoa(i)+"] ", indent+1, full)
		}
	}
}

func allScalarNumbers(items []*Node) bool {
	for _, it := range items {
		if it.Kind != KindUint && it.Kind != KindEnum {
			return false
		}
	}
	return true
}

// --- JSON ---

// MarshalJSON encodes n as plain JSON: a struct as an object with its
// fields in RFC order (preceded by "note" when the node has a Label), a vector as an array, an absent optional as null, a
// number as a number, an enum as {"value": v, "name": "..."} and a byte
// string as {"length": n, "hex": "..."} (with "text" when it is printable
// and "decoded" for opaque data this package understands), a secret as
// {"length": n, "redacted": true}. Byte strings are never abbreviated.
func (n *Node) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	if err := n.appendJSON(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func (n *Node) appendJSON(b *bytes.Buffer) error {
	switch n.Kind {
	case KindAbsent:
		b.WriteString("null")
	case KindSecret:
		fmt.Fprintf(b, `{"length":%d,"redacted":true}`, n.Uint)
	case KindUint:
		b.WriteString(strconv.FormatUint(n.Uint, 10))
	case KindEnum:
		fmt.Fprintf(b, `{"value":%d,"name":`, n.Uint)
		writeJSONString(b, n.Enum)
		b.WriteByte('}')
	case KindBytes:
		fmt.Fprintf(b, `{"length":%d,"hex":"%s"`, len(n.Bytes), hex.EncodeToString(n.Bytes))
		if n.Text != "" {
			b.WriteString(`,"text":`)
			writeJSONString(b, n.Text)
		}
		if n.Decoded != nil {
			b.WriteString(`,"decoded":`)
			if err := n.Decoded.appendJSON(b); err != nil {
				return err
			}
		}
		if n.Label != "" {
			b.WriteString(`,"note":`)
			writeJSONString(b, n.Label)
		}
		b.WriteByte('}')
	case KindStruct:
		b.WriteByte('{')
		if n.Label != "" {
			b.WriteString(`"note":`)
			writeJSONString(b, n.Label)
		}
		for i, f := range n.Fields {
			if i > 0 || n.Label != "" {
				b.WriteByte(',')
			}
			writeJSONString(b, f.Name)
			b.WriteByte(':')
			if err := f.appendJSON(b); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case KindVector:
		b.WriteByte('[')
		for i, it := range n.Items {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := it.appendJSON(b); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	default:
		return fmt.Errorf("inspect: node %q has unknown kind %d", n.Name, n.Kind)
	}
	return nil
}

func writeJSONString(b *bytes.Buffer, s string) {
	out, _ := json.Marshal(s) // a string always marshals
	b.Write(out)
}
