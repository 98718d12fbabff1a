package inspect

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/mlskit/mlskit/internal/ratchettree"
	"github.com/mlskit/mlskit/internal/wire"
)

// Context is what the caller knows besides the object itself. Every field is
// optional; a check that needs a missing one is reported as not verified.
type Context struct {
	// Now is the current time for lifetime checks. The zero time leaves
	// lifetimes unchecked.
	Now time.Time
	// Suite is the cipher suite for objects that do not carry one (a
	// LeafNode, a ratchet tree, a PublicMessage). 0 means unknown.
	Suite wire.CipherSuite
	// GroupInfo is an MLSMessage carrying the group's GroupInfo: its
	// GroupContext, cipher suite and (from its ratchet_tree extension or
	// Tree) its members' keys, against which messages are verified.
	GroupInfo []byte
	// Tree is the group's ratchet tree (the ratchet_tree extension's data),
	// for a GroupInfo without the extension.
	Tree []byte
	// Member is a client's state; with it Inspect also decrypts and
	// verifies what that client can (see Member).
	Member Member
}

// InputError reports a context input (the group info or the tree) that
// cannot be used. The object itself failing to decode is a
// *wire.DecodeError instead.
type InputError struct {
	Input string // "group info", "tree", "suite"
	Err   error
}

func (e *InputError) Error() string { return e.Input + ": " + errText(e.Err) }

// Unwrap returns the underlying error.
func (e *InputError) Unwrap() error { return e.Err }

// ErrUnknownType is returned by Inspect for a type name it does not know.
var ErrUnknownType = errors.New("inspect: unknown type")

// objType is one kind of object Inspect decodes.
type objType struct {
	name    string   // RFC 9420 struct name, as -type takes it
	path    string   // the root's path in checks: the RFC field name for the struct
	aliases []string // other accepted spellings (normalized)
	run     func(in *inspector, data []byte) (*Node, error)
}

// typed makes the objType of T: data is decoded as exactly one T
// (wire.Decode: strict, trailing bytes rejected), then described by f.
func typed[T any, P interface {
	*T
	wire.Unmarshaler
}](name, path string, f func(in *inspector, path string, x *T) *Node, aliases ...string) objType {
	return objType{name: name, path: path, aliases: aliases, run: func(in *inspector, data []byte) (*Node, error) {
		x, err := wire.Decode[T, P](data)
		if err != nil {
			return nil, err
		}
		return f(in, path, x), nil
	}}
}

// bareEnv returns the inspector's env for bare objects: the suite from
// the context, and the group id from the group info.
func (in *inspector) bareEnv() env {
	e := env{suite: in.ctxSuite}
	if in.gi != nil {
		e.groupID = in.gi.GroupContext.GroupID
	}
	return e
}

// types lists every object Inspect can decode, MLSMessage first.
var types = []objType{
	typed[wire.MLSMessage]("MLSMessage", "", (*inspector).mlsMessage, "message"),
	typed[wire.KeyPackage]("KeyPackage", "key_package", (*inspector).keyPackage),
	typed[wire.LeafNode]("LeafNode", "leaf_node", func(in *inspector, path string, l *wire.LeafNode) *Node {
		n := in.leafNode(path, l)
		in.checkLeaf(path, l, l.LeafNodeSource, in.bareEnv())
		return n
	}),
	typed[wire.RatchetTree]("RatchetTree", "ratchet_tree", func(in *inspector, path string, t *wire.RatchetTree) *Node {
		n := in.ratchetTree(path, *t)
		if in.ctxSuite == nil {
			in.notVerified(path, "tree hash, parent hashes and leaf signatures", "7.8", whyNoSuite)
			return n
		}
		var gc *wire.GroupContext
		if in.gi != nil {
			gc = &in.gi.GroupContext
		}
		in.checkTree(path, in.ctxSuite, *t, gc)
		return n
	}, "tree"),
	typed[wire.GroupSecrets]("GroupSecrets", "group_secrets", func(_ *inspector, _ string, gs *wire.GroupSecrets) *Node {
		return groupSecretsNode(gs)
	}),
	typed[wire.GroupInfo]("GroupInfo", "group_info", (*inspector).groupInfo),
	typed[wire.GroupContext]("GroupContext", "group_context", (*inspector).groupContext),
	typed[wire.Welcome]("Welcome", "welcome", (*inspector).welcome),
	typed[wire.PublicMessage]("PublicMessage", "public_message", (*inspector).publicMessage),
	typed[wire.PrivateMessage]("PrivateMessage", "private_message", (*inspector).privateMessage),
	typed[wire.AuthenticatedContent]("AuthenticatedContent", "authenticated_content", (*inspector).authenticatedContent),
	typed[wire.FramedContent]("FramedContent", "content", func(in *inspector, path string, fc *wire.FramedContent) *Node {
		return in.framedContent(path, fc, env{suite: in.ctxSuite})
	}),
	typed[wire.Proposal]("Proposal", "proposal", func(in *inspector, path string, p *wire.Proposal) *Node {
		return in.proposal(path, p, in.bareEnv())
	}),
	typed[wire.Add]("Add", "add", (*inspector).add, "add_proposal"),
	typed[wire.Update]("Update", "update", func(in *inspector, path string, u *wire.Update) *Node {
		return in.update(path, u, in.bareEnv())
	}, "update_proposal"),
	typed[wire.Remove]("Remove", "remove", func(_ *inspector, _ string, r *wire.Remove) *Node { return removeNode(r) }, "remove_proposal"),
	typed[wire.PreSharedKey]("PreSharedKey", "psk", func(_ *inspector, _ string, p *wire.PreSharedKey) *Node {
		return pskProposalNode(p)
	}, "pre_shared_key_proposal", "psk"),
	typed[wire.ReInit]("ReInit", "reinit", (*inspector).reInit, "re_init_proposal"),
	typed[wire.ExternalInit]("ExternalInit", "external_init", func(_ *inspector, _ string, x *wire.ExternalInit) *Node {
		return externalInitNode(x)
	}, "external_init_proposal"),
	typed[wire.GroupContextExtensions]("GroupContextExtensions", "group_context_extensions", (*inspector).groupContextExtensions,
		"group_context_extensions_proposal"),
	typed[wire.Commit]("Commit", "commit", func(in *inspector, path string, c *wire.Commit) *Node {
		return in.commit(path, c, in.bareEnv())
	}),
	typed[wire.UpdatePath]("UpdatePath", "path", func(in *inspector, path string, up *wire.UpdatePath) *Node {
		return in.updatePath(path, up, in.bareEnv())
	}),
	typed[wire.PreSharedKeyID]("PreSharedKeyID", "psk", func(_ *inspector, _ string, p *wire.PreSharedKeyID) *Node {
		return pskIDNode("", p)
	}),
	typed[wire.Credential]("Credential", "credential", func(_ *inspector, _ string, c *wire.Credential) *Node {
		return credentialNode("", c)
	}),
	typed[wire.Capabilities]("Capabilities", "capabilities", func(_ *inspector, _ string, c *wire.Capabilities) *Node {
		return capabilitiesNode("", c)
	}),
	typed[wire.ExternalSenders]("ExternalSenders", "external_senders", func(_ *inspector, _ string, v *wire.ExternalSenders) *Node {
		return externalSendersNode(*v)
	}),
	typed[wire.RequiredCapabilities]("RequiredCapabilities", "required_capabilities", func(_ *inspector, _ string, v *wire.RequiredCapabilities) *Node {
		return requiredCapabilitiesNode(v)
	}),
	typed[wire.HPKECiphertext]("HPKECiphertext", "hpke_ciphertext", func(_ *inspector, _ string, c *wire.HPKECiphertext) *Node {
		return hpkeCiphertextNode("", c)
	}),
	typed[wire.SenderData]("SenderData", "sender_data", func(_ *inspector, _ string, sd *wire.SenderData) *Node {
		return senderData(sd)
	}),
	typed[wire.ParentNode]("ParentNode", "parent_node", func(_ *inspector, _ string, p *wire.ParentNode) *Node {
		return parentNodeNode(p)
	}),
}

// normalize folds a type name for lookup: case and "_" / "-" do not matter.
func normalize(s string) string {
	return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(s))
}

// typeIndex maps normalized names and aliases to their index in types.
var typeIndex = func() map[string]int {
	m := make(map[string]int)
	for i := range types {
		for _, a := range append([]string{types[i].name}, types[i].aliases...) {
			if _, dup := m[normalize(a)]; !dup && a != "" {
				m[normalize(a)] = i
			}
		}
	}
	return m
}()

func findType(name string) (*objType, bool) {
	if name == "" {
		return &types[0], true
	}
	i, ok := typeIndex[normalize(name)]
	if !ok {
		return nil, false
	}
	return &types[i], true
}

// Types returns the names Inspect accepts as a type, MLSMessage first.
func Types() []string {
	out := make([]string, len(types))
	for i := range types {
		out[i] = types[i].name
	}
	sort.Strings(out[1:])
	return out
}

// Inspect decodes data as typ (a name from Types; "" means MLSMessage),
// describes it and makes every check the context allows. It only ever
// decodes as the one type asked for: an input that is not a typ is an
// error, never a guess at another type.
//
// A malformed input gives a *wire.DecodeError (type, byte offset, reason);
// an unusable context input gives an *InputError.
func Inspect(data []byte, typ string, ctx Context) (*Report, error) {
	t, ok := findType(typ)
	if !ok {
		return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownType, typ, strings.Join(Types(), ", "))
	}
	in := &inspector{rep: &Report{Type: t.name, Size: len(data)}, now: ctx.Now, member: ctx.Member}
	if t == &types[0] {
		in.input = data
	}
	if err := in.setContext(&ctx); err != nil {
		return nil, err
	}
	root, err := t.run(in, data)
	if err != nil {
		return nil, err
	}
	in.rep.Root = root
	return in.rep, nil
}

// setContext decodes the context inputs: the suite, the group info and the
// group's tree.
func (in *inspector) setContext(ctx *Context) error {
	if ctx.Suite != 0 {
		s, err := lookupSuite(ctx.Suite)
		if err != nil {
			return &InputError{Input: "suite", Err: err}
		}
		in.ctxSuite = s
	}
	if ctx.Tree != nil {
		if _, err := wire.UnmarshalRatchetTree(ctx.Tree); err != nil {
			return &InputError{Input: "tree", Err: err}
		}
		in.treeRaw = bytes.Clone(ctx.Tree)
	}
	in.treeWhy = whyNoTreeForMessage
	if ctx.GroupInfo == nil {
		return nil
	}
	return in.useGroupInfo(ctx.GroupInfo, ctx.Suite)
}

// useGroupInfo takes a group info (an MLSMessage) as the context of the
// messages inspected: their group's GroupContext, cipher suite and tree.
// suite is the cipher suite the caller named, or 0.
func (in *inspector) useGroupInfo(raw []byte, cs wire.CipherSuite) error {
	m, err := wire.UnmarshalMLSMessage(raw)
	if err != nil {
		return &InputError{Input: "group info", Err: err}
	}
	if m.WireFormat != wire.WireFormatGroupInfo {
		return &InputError{Input: "group info", Err: fmt.Errorf("the MLSMessage is a %s, not a GroupInfo", m.WireFormat)}
	}
	in.gi, in.giRaw = m.GroupInfo, bytes.Clone(raw)
	s, err := lookupSuite(in.gi.GroupContext.CipherSuite)
	if err != nil {
		return &InputError{Input: "group info", Err: err}
	}
	if in.ctxSuite != nil && in.ctxSuite != s {
		return &InputError{Input: "suite", Err: fmt.Errorf("cipher suite 0x%04x differs from the group info's 0x%04x",
			uint16(cs), uint16(in.gi.GroupContext.CipherSuite))}
	}
	in.ctxSuite = s
	treeBytes := in.treeRaw
	if x := findExtension(in.gi.Extensions, wire.ExtensionTypeRatchetTree); x != nil {
		treeBytes = x.ExtensionData
	}
	if treeBytes == nil {
		in.treeWhy = whyNoTreeForGroup
		return nil
	}
	t, err := ratchettree.Decode(s, treeBytes)
	if err != nil {
		in.treeWhy = "the group's ratchet tree is invalid: " + errText(err)
		return nil
	}
	in.tree = t
	return nil
}

// groupInfoFromState gives a message of a group the member is in, at the
// member's epoch, the context -group-info would: the group info the member
// would publish for that epoch, with its tree. The member's own state is
// what it checks against, so nothing from outside is trusted more for it.
func (in *inspector) groupInfoFromState(groupID []byte, epoch uint64) {
	if in.gi != nil || in.member == nil {
		return
	}
	g, err := in.member.Group(groupID)
	if err != nil || g == nil || g.Epoch() != epoch {
		return
	}
	raw, err := g.GroupInfo(true, false)
	if err != nil {
		return
	}
	if in.useGroupInfo(raw, 0) != nil {
		in.gi, in.giRaw, in.tree = nil, nil, nil
		return
	}
	in.giFromState = true
}

// Encoding says how input bytes are written.
type Encoding int

// Input encodings.
const (
	Auto   Encoding = iota // hex if the input is only hex digits and whitespace, else binary
	Hex                    // hex digits, whitespace allowed anywhere, optional 0x prefix
	Binary                 // the bytes themselves
)

// ParseInput turns input as read from a file into the bytes of an object,
// and says which encoding it used ("hex" or "binary"). In Auto mode, input
// made only of hex digits and whitespace (and an optional "0x") is hex: a
// binary MLS object almost never is, and an MLSMessage never (it starts with
// the bytes 00 01).
func ParseInput(data []byte, enc Encoding) ([]byte, string, error) {
	if enc == Binary {
		if len(data) == 0 {
			return nil, "", errors.New("empty input")
		}
		return data, "binary", nil
	}
	digits, badAt := hexDigits(data)
	if enc == Auto && (badAt >= 0 || len(digits) == 0) {
		if len(data) == 0 {
			return nil, "", errors.New("empty input")
		}
		if len(digits) == 0 && badAt < 0 {
			return nil, "", errors.New("input is only whitespace")
		}
		return data, "binary", nil
	}
	if badAt >= 0 {
		return nil, "", fmt.Errorf("not hex: byte %d of the input is %q", badAt, data[badAt])
	}
	if len(digits) == 0 {
		return nil, "", errors.New("empty input")
	}
	if len(digits)%2 != 0 {
		return nil, "", fmt.Errorf("hex input has an odd number of digits (%d)", len(digits))
	}
	out := make([]byte, len(digits)/2)
	if _, err := hex.Decode(out, digits); err != nil {
		return nil, "", err // unreachable: hexDigits let only hex digits through
	}
	return out, "hex", nil
}

// hexDigits returns the hex digits of data with whitespace (and one leading
// "0x") removed, and the offset of the first byte that is neither, or -1.
func hexDigits(data []byte) ([]byte, int) {
	start := 0
	for start < len(data) && isSpace(data[start]) {
		start++
	}
	if len(data)-start >= 2 && data[start] == '0' && (data[start+1] == 'x' || data[start+1] == 'X') {
		start += 2
	}
	out := make([]byte, 0, len(data))
	for i := start; i < len(data); i++ {
		c := data[i]
		switch {
		case isSpace(c):
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
			out = append(out, c)
		default:
			return out, i
		}
	}
	return out, -1
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}
