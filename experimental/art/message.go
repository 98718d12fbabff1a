package art

import (
	"errors"
	"fmt"

	"github.com/mlskit/mlskit/internal/codec"
)

// Errors. Peer input that fails to parse is ErrMalformed; the others are
// well-formed messages this member refuses. A refused message changes
// nothing.
var (
	ErrMalformed        = errors.New("art: malformed message")
	ErrWrongStage       = errors.New("art: message for another stage")
	ErrInvalidSignature = errors.New("art: invalid signature")
	ErrUnknownSender    = errors.New("art: sender is not a member")
	ErrInvalidMessage   = errors.New("art: message breaks the protocol")
	ErrRemoved          = errors.New("art: this member was removed")
)

// Message kinds.
const (
	KindUpdate uint8 = 1
	KindAdd    uint8 = 2
	KindRemove uint8 = 3
)

// message is an update, add or remove. Path holds the new public keys of
// Leaf's path from the leaf up to, not including, the root (nobody needs
// the root's public key).
type message struct {
	Kind      uint8
	Stage     uint64 // the stage it was made in
	Sender    uint32
	Leaf      uint32 // the leaf whose path it replaces
	Leaves    uint32 // tree size after it
	Ephemeral []byte // add: the key the new leaf secret is derived from
	SigKey    []byte // add: the new member's signature key
	Path      [][]byte
	Signature []byte
}

func (m *message) tbs() []byte {
	b := codec.NewBuilder(nil)
	b.AddUint8(m.Kind)
	b.AddUint64(m.Stage)
	b.AddUint32(m.Sender)
	b.AddUint32(m.Leaf)
	b.AddUint32(m.Leaves)
	b.AddOpaque(m.Ephemeral)
	b.AddOpaque(m.SigKey)
	b.AddVector(func(b *codec.Builder) {
		for _, p := range m.Path {
			b.AddOpaque(p)
		}
	})
	out, _ := b.Bytes()
	return out
}

func (m *message) marshal() []byte {
	b := codec.NewBuilder(m.tbs())
	b.AddOpaque(m.Signature)
	out, _ := b.Bytes()
	return out
}

func parseMessage(data []byte) (*message, error) {
	m := &message{}
	r := codec.NewReader(data)
	ok := r.ReadUint8(&m.Kind) && r.ReadUint64(&m.Stage) && r.ReadUint32(&m.Sender) &&
		r.ReadUint32(&m.Leaf) && r.ReadUint32(&m.Leaves) && r.ReadOpaque(&m.Ephemeral) && r.ReadOpaque(&m.SigKey) &&
		r.ReadList(func(r *codec.Reader) bool {
			var p []byte
			if !r.ReadOpaque(&p) || len(p) != keySize {
				return false
			}
			m.Path = append(m.Path, p)
			return true
		}) && r.ReadOpaque(&m.Signature) && r.Empty()
	if !ok || m.Kind < KindUpdate || m.Kind > KindRemove {
		return nil, fmt.Errorf("%w: update message", ErrMalformed)
	}
	return m, nil
}

// setup is the initiator's message: the whole public tree and every
// member's signature key, signed by the initiator (leaf 0).
type setup struct {
	SetupKey  []byte
	SigKeys   [][]byte // per leaf
	Tree      [][]byte // public key per node, 2n-1 of them
	Signature []byte
}

func addList(b *codec.Builder, l [][]byte) {
	b.AddVector(func(b *codec.Builder) {
		for _, p := range l {
			b.AddOpaque(p)
		}
	})
}

func readList(r *codec.Reader, out *[][]byte, size int) bool {
	return r.ReadList(func(r *codec.Reader) bool {
		var p []byte
		// size > 0: each entry is empty (a vacant slot, or the root,
		// whose public key nobody needs) or exactly size bytes.
		if !r.ReadOpaque(&p) || size > 0 && len(p) != 0 && len(p) != size {
			return false
		}
		*out = append(*out, p)
		return true
	})
}

func (m *setup) tbs() []byte {
	b := codec.NewBuilder(nil)
	b.AddOpaque(m.SetupKey)
	addList(b, m.SigKeys)
	addList(b, m.Tree)
	out, _ := b.Bytes()
	return out
}

func (m *setup) marshal() []byte {
	b := codec.NewBuilder(m.tbs())
	b.AddOpaque(m.Signature)
	out, _ := b.Bytes()
	return out
}

func parseSetup(data []byte) (*setup, error) {
	m := &setup{}
	r := codec.NewReader(data)
	if !(r.ReadOpaque(&m.SetupKey) && readList(r, &m.SigKeys, 0) && readList(r, &m.Tree, keySize) &&
		r.ReadOpaque(&m.Signature) && r.Empty()) || len(m.SigKeys) == 0 || len(m.Tree) != 2*len(m.SigKeys)-1 {
		return nil, fmt.Errorf("%w: setup message", ErrMalformed)
	}
	return m, nil
}

// welcome lets a new member join: the public tree and roster before the
// add, the stage key before the add sealed to the new member, and the add
// message itself, which the new member processes as the owner of its leaf.
// The adder signs it.
type welcome struct {
	SigKeys   [][]byte // nil entries (empty) are vacant slots
	Tree      [][]byte
	Sealed    []byte
	Add       []byte
	Signature []byte
}

func (m *welcome) tbs() []byte {
	b := codec.NewBuilder(nil)
	addList(b, m.SigKeys)
	addList(b, m.Tree)
	b.AddOpaque(m.Sealed)
	b.AddOpaque(m.Add)
	out, _ := b.Bytes()
	return out
}

func (m *welcome) marshal() []byte {
	b := codec.NewBuilder(m.tbs())
	b.AddOpaque(m.Signature)
	out, _ := b.Bytes()
	return out
}

func parseWelcome(data []byte) (*welcome, error) {
	m := &welcome{}
	r := codec.NewReader(data)
	if !(readList(r, &m.SigKeys, 0) && readList(r, &m.Tree, keySize) && r.ReadOpaque(&m.Sealed) &&
		r.ReadOpaque(&m.Add) && r.ReadOpaque(&m.Signature) && r.Empty()) ||
		len(m.SigKeys) == 0 || len(m.Tree) != 2*len(m.SigKeys)-1 {
		return nil, fmt.Errorf("%w: welcome", ErrMalformed)
	}
	return m, nil
}
