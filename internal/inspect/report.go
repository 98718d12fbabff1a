package inspect

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"
)

// Status is the outcome of one check.
type Status string

// Check outcomes.
const (
	StatusOK          Status = "ok"
	StatusFailed      Status = "failed"
	StatusNotVerified Status = "not verified"
)

// Check is one verification made (or not made) on the object: what, where
// in the object, which RFC 9420 section requires it, and the outcome.
// Detail says why a check failed or could not be made.
type Check struct {
	Path    string // where in the object, e.g. "key_package.leaf_node"
	Name    string // e.g. "signature"
	Section string // RFC 9420 section, e.g. "10.1"
	Status  Status
	Detail  string
}

// Computed is a value derived from the object, such as a KeyPackageRef.
type Computed struct {
	Path    string
	Name    string // e.g. "key_package_ref"
	Section string
	Value   []byte
}

// Report is an inspected object: its decoded structure, values computed
// from it and the checks made on it.
type Report struct {
	Type     string // what the input was decoded as, e.g. "MLSMessage"
	Input    string // "hex" or "binary", when the caller says
	Size     int    // bytes decoded
	Root     *Node
	Computed []Computed
	Checks   []Check
}

// Failed reports whether any check failed.
func (r *Report) Failed() bool {
	for _, c := range r.Checks {
		if c.Status == StatusFailed {
			return true
		}
	}
	return false
}

func (c Check) line() string {
	var b strings.Builder
	if c.Path != "" {
		b.WriteString(c.Path + ": ")
	}
	b.WriteString(c.Name)
	if c.Section != "" {
		fmt.Fprintf(&b, " (RFC 9420, Section %s)", c.Section)
	}
	switch c.Status {
	case StatusOK:
		b.WriteString(": ok")
	case StatusFailed:
		b.WriteString(": FAILED")
	default:
		b.WriteString(": " + string(c.Status))
	}
	if c.Detail != "" {
		b.WriteString(": " + c.Detail)
	}
	return b.String()
}

// Text renders the report as indented text: the structure with RFC field
// names, enum values by name and number, byte strings as their length and
// hex (abbreviated beyond 32 bytes unless full), then the computed values
// and the checks.
func (r *Report) Text(full bool) string {
	var w strings.Builder
	head := fmt.Sprintf("%s (%d bytes", r.Type, r.Size)
	if r.Input != "" {
		head += ", " + r.Input + " input"
	}
	head += ")"
	if r.Root.Kind == KindStruct {
		root := *r.Root
		root.Type = head
		writeText(&w, &root, "", 0, full)
	} else {
		writeText(&w, r.Root, head+": ", 0, full)
	}
	if len(r.Computed) > 0 {
		w.WriteString("\ncomputed:\n")
		for _, c := range r.Computed {
			p := ""
			if c.Path != "" {
				p = c.Path + ": "
			}
			fmt.Fprintf(&w, "  %s%s (RFC 9420, Section %s): %s\n", p, c.Name, c.Section, hex.EncodeToString(c.Value))
		}
	}
	if len(r.Checks) > 0 {
		w.WriteString("\nchecks:\n")
		for _, c := range r.Checks {
			w.WriteString("  " + c.line() + "\n")
		}
	}
	return w.String()
}

// JSON renders the report as one JSON object:
//
//	{"type": ..., "input": ..., "size": n, "value": {...},
//	 "computed": [{"path", "name", "section", "hex"}],
//	 "checks": [{"path", "name", "section", "status", "detail"}]}
//
// with the value encoded as Node.MarshalJSON describes.
func (r *Report) JSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"type":`)
	writeJSONString(&b, r.Type)
	if r.Input != "" {
		b.WriteString(`,"input":`)
		writeJSONString(&b, r.Input)
	}
	fmt.Fprintf(&b, `,"size":%d,"value":`, r.Size)
	if err := r.Root.appendJSON(&b); err != nil {
		return nil, err
	}
	b.WriteString(`,"computed":[`)
	for i, c := range r.Computed {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"path":`)
		writeJSONString(&b, c.Path)
		b.WriteString(`,"name":`)
		writeJSONString(&b, c.Name)
		b.WriteString(`,"section":`)
		writeJSONString(&b, c.Section)
		fmt.Fprintf(&b, `,"hex":"%s"}`, hex.EncodeToString(c.Value))
	}
	b.WriteString(`],"checks":[`)
	for i, c := range r.Checks {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"path":`)
		writeJSONString(&b, c.Path)
		b.WriteString(`,"name":`)
		writeJSONString(&b, c.Name)
		b.WriteString(`,"section":`)
		writeJSONString(&b, c.Section)
		b.WriteString(`,"status":`)
		writeJSONString(&b, string(c.Status))
		if c.Detail != "" {
			b.WriteString(`,"detail":`)
			writeJSONString(&b, c.Detail)
		}
		b.WriteByte('}')
	}
	b.WriteString("]}")
	return b.Bytes(), nil
}
