// Package fakemls is a TEST DOUBLE: a pretend MLS implementation behind the
// interop.Backend interface, for testing the interop plumbing (the gRPC
// server, the id tables, the config-script runner) before the real MLS group
// state machine exists. It must never be served as an MLS implementation:
// it does no cryptography at all, its "messages" are JSON, and nothing in it
// is secret. Being internal to interop/, nothing outside interop/ can import it.
//
// What it does do is keep the public bookkeeping of a group honestly, across
// separate Backend instances that share nothing but the bytes the runner
// carries between them: rosters, epochs, extensions, proposals by reference
// and by value, PSK references, welcomes with or without the tree, external
// joins, external senders, branches and reinits. Every message names its
// group, epoch and sender, and is checked on receipt, and the "epoch
// authenticator" is a hash of the resulting public state and of the commit
// that made it. So a runner that passes the wrong proposal, the wrong state
// id, the wrong welcome, the wrong tree or the wrong encrypt flag makes the
// fake fail, or makes two clients disagree, as a real implementation would.
package fakemls

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/mlskit/mlskit/interop"
)

// Fault makes a Backend misbehave in one way, so that tests can check that
// the runner notices.
type Fault int

const (
	NoFault                 Fault = iota
	FaultEpochAuthenticator       // every epoch authenticator reported is altered
	FaultStaleAuthenticator       // HandleCommit reports the previous epoch's authenticator
	FaultPlaintext                // Unprotect returns altered plaintext
)

// Options configures a Backend.
type Options struct {
	Name   string   // default "fakemls (test double)"
	Suites []uint16 // default 1, 2, 3
	Fault  Fault
}

// Backend is the fake's interop.Backend.
type Backend struct{ o Options }

// New returns a fake Backend.
func New(o Options) *Backend {
	if o.Name == "" {
		o.Name = "fakemls (test double)"
	}
	if o.Suites == nil {
		o.Suites = []uint16{1, 2, 3}
	}
	return &Backend{o: o}
}

var _ interop.Backend = (*Backend)(nil)

// externalSendersType is the external_senders extension (RFC 9420,
// Section 12.1.8.1); the fake keeps a JSON list of identities in it.
const externalSendersType = 2

// snapshot is a group's public state: what a GroupInfo or Welcome carries.
type snapshot struct {
	Suite  uint16
	Group  []byte
	Epoch  uint64
	Roster []string // identity per leaf, "" for a blank leaf; nil when the tree travels separately
	Exts   []interop.Extension
}

func (s snapshot) clone() snapshot {
	s.Roster = slices.Clone(s.Roster)
	s.Exts = slices.Clone(s.Exts)
	return s
}

// prop is a proposal body.
type prop struct {
	Kind    string
	KP      []byte              `json:",omitempty"`
	Removed string              `json:",omitempty"`
	PSKID   []byte              `json:",omitempty"`
	Epoch   uint64              `json:",omitempty"`
	Exts    []interop.Extension `json:",omitempty"`
	Group   []byte              `json:",omitempty"`
	Suite   uint16              `json:",omitempty"`
}

// pskRef names a PSK mixed into an epoch.
type pskRef struct {
	Kind  string // external, resumption, branch, reinit
	ID    []byte `json:",omitempty"`
	Group []byte `json:",omitempty"`
	Epoch uint64 `json:",omitempty"`
}

// msg is every fake wire message; T says which.
type msg struct {
	T       string // kp, proposal, commit, welcome, groupinfo, tree, app, extsender
	Group   []byte `json:",omitempty"`
	Epoch   uint64 `json:",omitempty"`
	Sender  string `json:",omitempty"` // identity, "external:<i>" or "new:<identity>"
	Private bool   `json:",omitempty"`

	Suite    uint16 `json:",omitempty"` // kp, extsender
	Identity string `json:",omitempty"` // kp, extsender
	Nonce    []byte `json:",omitempty"` // kp, commit

	Prop *prop `json:",omitempty"` // proposal

	ByRef       [][]byte `json:",omitempty"` // commit: proposal hashes
	ByValue     []prop   `json:",omitempty"`
	Path        bool     `json:",omitempty"`
	External    bool     `json:",omitempty"` // external commit from Sender
	RemovePrior bool     `json:",omitempty"`
	PSKs        []pskRef `json:",omitempty"` // commit (external), welcome

	State      *snapshot `json:",omitempty"` // welcome, groupinfo
	CommitHash []byte    `json:",omitempty"` // welcome
	Joiners    [][]byte  `json:",omitempty"` // welcome: KeyPackage hashes

	Roster []string `json:",omitempty"` // tree

	Gen uint32 `json:",omitempty"` // app
	AAD []byte `json:",omitempty"`
	PT  []byte `json:",omitempty"`
}

func encode(m msg) []byte {
	b, err := json.Marshal(m)
	if err != nil {
		panic(err) // only plain data: cannot happen
	}
	return b
}

func decode(b []byte, want string) (msg, error) {
	var m msg
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&m); err != nil {
		return msg{}, invalid("malformed %s: %v", want, err)
	}
	if m.T != want {
		return msg{}, invalid("got a %q message, want a %s", m.T, want)
	}
	return m, nil
}

func hash(b []byte) []byte { h := sha256.Sum256(b); return h[:] }

func invalid(format string, args ...any) error {
	return fmt.Errorf("fakemls: %w: "+format, append([]any{interop.ErrInvalidArgument}, args...)...)
}

func precondition(format string, args ...any) error {
	return fmt.Errorf("fakemls: %w: "+format, append([]any{interop.ErrFailedPrecondition}, args...)...)
}

func nonce() []byte {
	n := make([]byte, 16)
	rand.Read(n)
	return n
}

// authenticator is the fake epoch authenticator: a hash of the new public
// state, of the commit that made it and of the PSKs mixed in.
func authenticator(s snapshot, commitHash []byte, psks []pskRef) []byte {
	b, _ := json.Marshal(struct {
		S    snapshot
		C    []byte
		PSKs []pskRef
	}{s, commitHash, psks})
	return hash(append([]byte("fakemls epoch authenticator "), b...))
}

func (b *Backend) report(auth []byte) []byte {
	if b.o.Fault == FaultEpochAuthenticator {
		auth = slices.Clone(auth)
		auth[0] ^= 0xff
	}
	return auth
}

func (b *Backend) supports(cs uint16) error {
	if !slices.Contains(b.o.Suites, cs) {
		return invalid("cipher suite %d not supported", cs)
	}
	return nil
}

// Name implements interop.Backend.
func (b *Backend) Name() string { return b.o.Name }

// SupportedCiphersuites implements interop.Backend.
func (b *Backend) SupportedCiphersuites() []uint16 { return slices.Clone(b.o.Suites) }

// CreateGroup implements interop.Backend.
func (b *Backend) CreateGroup(_ context.Context, r interop.CreateGroupRequest) (interop.State, error) {
	if err := b.supports(r.CipherSuite); err != nil {
		return nil, err
	}
	if len(r.GroupID) == 0 || len(r.Identity) == 0 {
		return nil, invalid("empty group id or identity")
	}
	s := snapshot{Suite: r.CipherSuite, Group: slices.Clone(r.GroupID), Roster: []string{string(r.Identity)}}
	g := &group{b: b, identity: string(r.Identity), encrypt: r.EncryptHandshake, snap: s, psks: map[string]bool{}, seen: map[string]bool{}}
	g.auth = authenticator(s, nil, nil)
	return g, nil
}

// newKeyPackage makes a fake KeyPackage and the Transaction holding it.
func (b *Backend) newKeyPackage(cs uint16, identity string) (*transaction, error) {
	if err := b.supports(cs); err != nil {
		return nil, err
	}
	if identity == "" {
		return nil, invalid("empty identity")
	}
	kp := encode(msg{T: "kp", Suite: cs, Identity: identity, Nonce: nonce()})
	return &transaction{b: b, suite: cs, identity: identity, kp: kp, psks: map[string]bool{}}, nil
}

// CreateKeyPackage implements interop.Backend.
func (b *Backend) CreateKeyPackage(_ context.Context, r interop.CreateKeyPackageRequest) (interop.Transaction, interop.KeyPackageResult, error) {
	tx, err := b.newKeyPackage(r.CipherSuite, string(r.Identity))
	if err != nil {
		return nil, interop.KeyPackageResult{}, err
	}
	return tx, interop.KeyPackageResult{KeyPackage: tx.kp, InitPriv: []byte("i"), EncryptionPriv: []byte("e"), SignaturePriv: []byte("s")}, nil
}

// publicState reads a GroupInfo (and a separate tree if the GroupInfo has none).
func publicState(groupInfo, tree []byte) (snapshot, error) {
	gi, err := decode(groupInfo, "groupinfo")
	if err != nil {
		return snapshot{}, err
	}
	if gi.State == nil {
		return snapshot{}, invalid("group info without state")
	}
	return withTree(*gi.State, tree)
}

// withTree fills in the roster from a separate ratchet tree when s has none.
func withTree(s snapshot, tree []byte) (snapshot, error) {
	if s.Roster != nil {
		if len(tree) != 0 {
			return snapshot{}, invalid("a ratchet tree was given but the message carries one")
		}
		return s, nil
	}
	if len(tree) == 0 {
		return snapshot{}, invalid("the message has no ratchet tree and none was given")
	}
	t, err := decode(tree, "tree")
	if err != nil {
		return snapshot{}, err
	}
	s.Roster = t.Roster
	return s, nil
}

// ExternalJoin implements interop.Backend.
func (b *Backend) ExternalJoin(_ context.Context, r interop.ExternalJoinRequest) (interop.State, interop.ExternalJoinResult, error) {
	s, err := publicState(r.GroupInfo, r.RatchetTree)
	if err != nil {
		return nil, interop.ExternalJoinResult{}, err
	}
	id := string(r.Identity)
	g := &group{b: b, identity: id, encrypt: r.EncryptHandshake, psks: map[string]bool{}, seen: map[string]bool{}}
	var refs []pskRef
	for _, p := range r.PSKs {
		g.psks[string(p.ID)] = true
		refs = append(refs, pskRef{Kind: "external", ID: p.ID})
	}
	// RFC 9420, Section 12.4.3.2: an external Commit is always a PublicMessage.
	c := msg{T: "commit", Group: s.Group, Epoch: s.Epoch, Sender: id, External: true, RemovePrior: r.RemovePrior, PSKs: refs, Path: true, Nonce: nonce()}
	next, err := applyExternal(s, c)
	if err != nil {
		return nil, interop.ExternalJoinResult{}, err
	}
	commit := encode(c)
	g.snap = next
	g.joined = next.Epoch
	g.auth = authenticator(next, hash(commit), refs)
	return g, interop.ExternalJoinResult{Commit: commit, EpochAuthenticator: b.report(g.auth)}, nil
}

func applyExternal(s snapshot, c msg) (snapshot, error) {
	n := s.clone()
	if c.RemovePrior {
		i := slices.Index(n.Roster, c.Sender)
		if i < 0 {
			return snapshot{}, invalid("remove_prior, but %q is not in the group", c.Sender)
		}
		n.Roster[i] = ""
	} else if slices.Contains(n.Roster, c.Sender) {
		return snapshot{}, invalid("%q is already in the group", c.Sender)
	}
	n.Roster = addLeaf(n.Roster, c.Sender)
	n.Epoch++
	return n, nil
}

func addLeaf(roster []string, id string) []string {
	if i := slices.Index(roster, ""); i >= 0 {
		roster[i] = id
		return roster
	}
	return append(roster, id)
}

// NewMemberAddProposal implements interop.Backend.
func (b *Backend) NewMemberAddProposal(_ context.Context, r interop.NewMemberAddProposalRequest) (interop.Transaction, interop.NewMemberAddProposalResult, error) {
	s, err := publicState(r.GroupInfo, nil)
	if err != nil {
		return nil, interop.NewMemberAddProposalResult{}, err
	}
	tx, err := b.newKeyPackage(s.Suite, string(r.Identity))
	if err != nil {
		return nil, interop.NewMemberAddProposalResult{}, err
	}
	p := encode(msg{T: "proposal", Group: s.Group, Epoch: s.Epoch, Sender: "new:" + tx.identity, Prop: &prop{Kind: "add", KP: tx.kp}})
	return tx, interop.NewMemberAddProposalResult{Proposal: p, InitPriv: []byte("i"), EncryptionPriv: []byte("e"), SignaturePriv: []byte("s")}, nil
}

// CreateExternalSigner implements interop.Backend.
func (b *Backend) CreateExternalSigner(_ context.Context, r interop.CreateExternalSignerRequest) (interop.Signer, []byte, error) {
	if err := b.supports(r.CipherSuite); err != nil {
		return nil, nil, err
	}
	s := &signer{identity: string(r.Identity), suite: r.CipherSuite}
	return s, encode(msg{T: "extsender", Suite: r.CipherSuite, Identity: s.identity}), nil
}

func externalSenders(exts []interop.Extension) []string {
	for _, e := range exts {
		if e.Type == externalSendersType {
			var l []string
			if json.Unmarshal(e.Data, &l) == nil {
				return l
			}
		}
	}
	return nil
}

// signer is the fake interop.Signer.
type signer struct {
	identity string
	suite    uint16
}

// ExternalSignerProposal implements interop.Signer.
func (s *signer) ExternalSignerProposal(_ context.Context, r interop.ExternalSignerProposalRequest) ([]byte, error) {
	st, err := publicState(r.GroupInfo, nil)
	if err != nil {
		// The runner sends the tree separately (it asks for an external tree).
		if st, err = publicState(r.GroupInfo, r.RatchetTree); err != nil {
			return nil, err
		}
	}
	senders := externalSenders(st.Exts)
	if int(r.SignerIndex) >= len(senders) || senders[r.SignerIndex] != s.identity {
		return nil, invalid("signer %q is not external sender %d of the group (senders %q)", s.identity, r.SignerIndex, senders)
	}
	p, err := describe(r.Description)
	if err != nil {
		return nil, err
	}
	// External senders send only PublicMessage (RFC 9420, Section 12.1.8).
	return encode(msg{T: "proposal", Group: st.Group, Epoch: st.Epoch, Sender: "external:" + strconv.Itoa(int(r.SignerIndex)), Prop: &p}), nil
}

func describe(d interop.ProposalDescription) (prop, error) {
	switch d.Type {
	case interop.ProposalAdd:
		return prop{Kind: "add", KP: d.KeyPackage}, nil
	case interop.ProposalRemove:
		return prop{Kind: "remove", Removed: string(d.RemovedID)}, nil
	case interop.ProposalExternalPSK:
		return prop{Kind: "externalPSK", PSKID: d.PSKID}, nil
	case interop.ProposalResumptionPSK:
		return prop{Kind: "resumptionPSK", Epoch: d.EpochID}, nil
	case interop.ProposalGroupContextExtensions:
		return prop{Kind: "groupContextExtensions", Exts: d.Extensions}, nil
	case interop.ProposalReInit:
		return prop{Kind: "reinit", Group: d.GroupID, Suite: d.CipherSuite, Exts: d.Extensions}, nil
	}
	return prop{}, invalid("unknown proposal type %q", d.Type)
}

// transaction is the fake interop.Transaction.
type transaction struct {
	b        *Backend
	suite    uint16
	identity string
	kp       []byte
	psks     map[string]bool
}

// StorePSK implements interop.Transaction.
func (t *transaction) StorePSK(_ context.Context, id, _ []byte) error {
	t.psks[string(id)] = true
	return nil
}

// JoinGroup implements interop.Transaction.
func (t *transaction) JoinGroup(_ context.Context, r interop.JoinGroupRequest) (interop.State, []byte, error) {
	if string(r.Identity) != t.identity {
		return nil, nil, invalid("joining as %q with the key package of %q", r.Identity, t.identity)
	}
	g, err := t.join(r.Welcome, r.RatchetTree, r.EncryptHandshake, nil)
	if err != nil {
		return nil, nil, err
	}
	return g, t.b.report(g.auth), nil
}

// join processes a welcome; want is the branch or reinit PSK it must carry
// (nil for an ordinary join, which must carry none).
func (t *transaction) join(welcome, tree []byte, encrypt bool, want *pskRef) (*group, error) {
	w, err := decode(welcome, "welcome")
	if err != nil {
		return nil, err
	}
	if w.State == nil {
		return nil, invalid("welcome without state")
	}
	if !slices.ContainsFunc(w.Joiners, func(h []byte) bool { return bytes.Equal(h, hash(t.kp)) }) {
		return nil, invalid("the welcome is not for the key package of %q", t.identity)
	}
	s, err := withTree(*w.State, tree)
	if err != nil {
		return nil, err
	}
	if s.Suite != t.suite {
		return nil, invalid("welcome for suite %d, key package for suite %d", s.Suite, t.suite)
	}
	var special []pskRef
	for _, p := range w.PSKs {
		switch p.Kind {
		case "external":
			if !t.psks[string(p.ID)] {
				return nil, invalid("welcome uses external PSK %x, which %q does not have", p.ID, t.identity)
			}
		case "branch", "reinit":
			special = append(special, p)
		}
	}
	switch {
	case want == nil && len(special) != 0:
		return nil, invalid("welcome uses a %s PSK: not an ordinary join", special[0].Kind)
	case want != nil && (len(special) != 1 || special[0].Kind != want.Kind ||
		!bytes.Equal(special[0].Group, want.Group) || special[0].Epoch != want.Epoch):
		return nil, invalid("welcome does not carry the %s PSK of group %q epoch %d", want.Kind, want.Group, want.Epoch)
	}
	self := slices.Index(s.Roster, t.identity)
	if self < 0 {
		return nil, invalid("%q is not in the welcomed group", t.identity)
	}
	g := &group{b: t.b, identity: t.identity, encrypt: encrypt, snap: s, joined: s.Epoch, psks: map[string]bool{}, seen: map[string]bool{}}
	for id := range t.psks {
		g.psks[id] = true
	}
	g.auth = authenticator(s, w.CommitHash, w.PSKs)
	return g, nil
}

// cached is a proposal known to a member this epoch.
type cached struct {
	hash   []byte
	sender string
	p      prop
}

// pending is a Commit waiting for HandlePendingCommit.
type pending struct {
	commit []byte
	snap   snapshot
	psks   []pskRef
	reinit *prop
}

// group is the fake interop.State.
type group struct {
	b        *Backend
	identity string
	encrypt  bool
	snap     snapshot
	joined   uint64 // first epoch this member knows (for resumption PSKs)
	auth     []byte
	prevAuth []byte
	psks     map[string]bool
	cache    []cached
	pending  *pending
	ended    bool // the group was reinitialized
	gen      uint32
	seen     map[string]bool
}

func (g *group) live() error {
	if g.ended {
		return precondition("the group has been reinitialized")
	}
	return nil
}

// GroupInfo implements interop.State.
func (g *group) GroupInfo(_ context.Context, externalTree bool) (interop.GroupInfoResult, error) {
	s := g.snap.clone()
	var tree []byte
	if externalTree {
		tree = encode(msg{T: "tree", Roster: s.Roster})
		s.Roster = nil
	}
	return interop.GroupInfoResult{GroupInfo: encode(msg{T: "groupinfo", State: &s}), RatchetTree: tree}, nil
}

// StateAuth implements interop.State.
func (g *group) StateAuth(context.Context) ([]byte, error) { return g.b.report(g.auth), nil }

// Export implements interop.State.
func (g *group) Export(_ context.Context, label string, context []byte, length int) ([]byte, error) {
	var out []byte
	for i := 0; len(out) < length; i++ {
		out = append(out, hash(fmt.Appendf(nil, "%x|%s|%x|%d", g.auth, label, context, i))...)
	}
	return out[:length], nil
}

// Protect implements interop.State.
func (g *group) Protect(_ context.Context, aad, pt []byte) ([]byte, error) {
	if err := g.live(); err != nil {
		return nil, err
	}
	g.gen++
	return encode(msg{T: "app", Group: g.snap.Group, Epoch: g.snap.Epoch, Sender: g.identity, Gen: g.gen, AAD: aad, PT: pt}), nil
}

// Unprotect implements interop.State.
func (g *group) Unprotect(_ context.Context, ct []byte) ([]byte, []byte, error) {
	m, err := decode(ct, "app")
	if err != nil {
		return nil, nil, err
	}
	if !bytes.Equal(m.Group, g.snap.Group) || m.Epoch > g.snap.Epoch || m.Epoch < g.joined {
		return nil, nil, invalid("message for group %q epoch %d, member of %q at epochs %d..%d", m.Group, m.Epoch, g.snap.Group, g.joined, g.snap.Epoch)
	}
	if m.Sender == g.identity {
		return nil, nil, invalid("cannot decrypt one's own message")
	}
	key := fmt.Sprintf("%d/%s/%d", m.Epoch, m.Sender, m.Gen)
	if g.seen[key] {
		return nil, nil, invalid("replayed message")
	}
	g.seen[key] = true
	pt := m.PT
	if g.b.o.Fault == FaultPlaintext {
		pt = append(slices.Clone(pt), '!')
	}
	return m.AAD, pt, nil
}

// StorePSK implements interop.State.
func (g *group) StorePSK(_ context.Context, id, _ []byte) error {
	g.psks[string(id)] = true
	return nil
}

// propose makes a proposal from this member and caches it.
func (g *group) propose(p prop) ([]byte, error) {
	if err := g.live(); err != nil {
		return nil, err
	}
	b := encode(msg{T: "proposal", Group: g.snap.Group, Epoch: g.snap.Epoch, Sender: g.identity, Private: g.encrypt, Prop: &p})
	g.cache = append(g.cache, cached{hash: hash(b), sender: g.identity, p: p})
	return b, nil
}

func (g *group) AddProposal(_ context.Context, kp []byte) ([]byte, error) {
	return g.propose(prop{Kind: "add", KP: kp})
}

func (g *group) UpdateProposal(context.Context) ([]byte, error) {
	return g.propose(prop{Kind: "update"})
}

func (g *group) RemoveProposal(_ context.Context, removed []byte) ([]byte, error) {
	return g.propose(prop{Kind: "remove", Removed: string(removed)})
}

func (g *group) ExternalPSKProposal(_ context.Context, id []byte) ([]byte, error) {
	return g.propose(prop{Kind: "externalPSK", PSKID: id})
}

func (g *group) ResumptionPSKProposal(_ context.Context, epoch uint64) ([]byte, error) {
	return g.propose(prop{Kind: "resumptionPSK", Epoch: epoch})
}

func (g *group) GroupContextExtensionsProposal(_ context.Context, exts []interop.Extension) ([]byte, error) {
	return g.propose(prop{Kind: "groupContextExtensions", Exts: exts})
}

func (g *group) ReInitProposal(_ context.Context, r interop.ReInitProposalRequest) ([]byte, error) {
	return g.propose(prop{Kind: "reinit", Group: r.GroupID, Suite: r.CipherSuite, Exts: r.Extensions})
}

func (g *group) AddExternalSigner(_ context.Context, es []byte) ([]byte, error) {
	m, err := decode(es, "extsender")
	if err != nil {
		return nil, err
	}
	senders := append(externalSenders(g.snap.Exts), m.Identity)
	data, _ := json.Marshal(senders)
	exts := slices.DeleteFunc(slices.Clone(g.snap.Exts), func(e interop.Extension) bool { return e.Type == externalSendersType })
	exts = append(exts, interop.Extension{Type: externalSendersType, Data: data})
	return g.propose(prop{Kind: "groupContextExtensions", Exts: exts})
}

// receive checks and caches a proposal from someone else.
func (g *group) receive(b []byte) (cached, error) {
	m, err := decode(b, "proposal")
	if err != nil {
		return cached{}, err
	}
	if m.Prop == nil {
		return cached{}, invalid("proposal without body")
	}
	if !bytes.Equal(m.Group, g.snap.Group) || m.Epoch != g.snap.Epoch {
		return cached{}, invalid("proposal for group %q epoch %d, at group %q epoch %d", m.Group, m.Epoch, g.snap.Group, g.snap.Epoch)
	}
	switch {
	case strings.HasPrefix(m.Sender, "external:"):
		i, err := strconv.Atoi(strings.TrimPrefix(m.Sender, "external:"))
		if err != nil || i < 0 || i >= len(externalSenders(g.snap.Exts)) {
			return cached{}, invalid("proposal from unknown external sender %q", m.Sender)
		}
	case strings.HasPrefix(m.Sender, "new:"):
		if m.Prop.Kind != "add" {
			return cached{}, invalid("a new member can only propose to add itself")
		}
	default:
		if !slices.Contains(g.snap.Roster, m.Sender) {
			return cached{}, invalid("proposal from non-member %q", m.Sender)
		}
		if m.Private != g.encrypt {
			return cached{}, invalid("handshake encryption mismatch: proposal private=%v, group private=%v", m.Private, g.encrypt)
		}
	}
	return cached{hash: hash(b), sender: m.Sender, p: *m.Prop}, nil
}

// apply computes the next epoch's public state from a proposal list.
func (g *group) apply(props []cached) (snapshot, []pskRef, *prop, error) {
	n := g.snap.clone()
	var psks []pskRef
	var reinit *prop
	var adds []string
	for _, c := range props {
		p := c.p
		switch p.Kind {
		case "add":
			kp, err := decode(p.KP, "kp")
			if err != nil {
				return snapshot{}, nil, nil, err
			}
			if kp.Suite != n.Suite {
				return snapshot{}, nil, nil, invalid("key package of %q is for suite %d, group uses %d", kp.Identity, kp.Suite, n.Suite)
			}
			if strings.HasPrefix(c.sender, "new:") && kp.Identity != strings.TrimPrefix(c.sender, "new:") {
				return snapshot{}, nil, nil, invalid("new member %q proposes to add %q", c.sender, kp.Identity)
			}
			adds = append(adds, kp.Identity)
		case "update":
		case "remove":
			i := slices.Index(n.Roster, p.Removed)
			if i < 0 {
				return snapshot{}, nil, nil, invalid("cannot remove %q: not a member", p.Removed)
			}
			n.Roster[i] = ""
		case "externalPSK":
			if !g.psks[string(p.PSKID)] {
				return snapshot{}, nil, nil, invalid("%q does not have external PSK %x", g.identity, p.PSKID)
			}
			psks = append(psks, pskRef{Kind: "external", ID: p.PSKID})
		case "resumptionPSK":
			if p.Epoch < g.joined || p.Epoch > n.Epoch {
				return snapshot{}, nil, nil, invalid("%q has no resumption secret for epoch %d", g.identity, p.Epoch)
			}
			psks = append(psks, pskRef{Kind: "resumption", Group: n.Group, Epoch: p.Epoch})
		case "groupContextExtensions":
			n.Exts = p.Exts
			if len(n.Exts) == 0 {
				n.Exts = nil // the same state however the empty list travelled
			}
		case "reinit":
			rp := p
			reinit = &rp
		default:
			return snapshot{}, nil, nil, invalid("unknown proposal kind %q", p.Kind)
		}
	}
	for len(n.Roster) > 0 && n.Roster[len(n.Roster)-1] == "" {
		n.Roster = n.Roster[:len(n.Roster)-1]
	}
	for _, id := range adds {
		if slices.Contains(n.Roster, id) {
			return snapshot{}, nil, nil, invalid("%q is already a member", id)
		}
		n.Roster = addLeaf(n.Roster, id)
	}
	n.Epoch++
	return n, psks, reinit, nil
}

// commit builds a Commit; reinit says whether it must (true) or must not
// (false) hold a ReInit proposal.
func (g *group) commit(r interop.CommitRequest, reinit bool) (interop.CommitResult, error) {
	if err := g.live(); err != nil {
		return interop.CommitResult{}, err
	}
	props := slices.Clone(g.cache)
	for _, b := range r.ByReference {
		c, err := g.receive(b)
		if err != nil {
			return interop.CommitResult{}, err
		}
		if !slices.ContainsFunc(props, func(o cached) bool { return bytes.Equal(o.hash, c.hash) }) {
			props = append(props, c)
		}
	}
	refs := len(props)
	var byValue []prop
	for _, d := range r.ByValue {
		p, err := describe(d)
		if err != nil {
			return interop.CommitResult{}, err
		}
		byValue = append(byValue, p)
		props = append(props, cached{sender: g.identity, p: p})
	}
	next, psks, ri, err := g.apply(props)
	if err != nil {
		return interop.CommitResult{}, err
	}
	if (ri != nil) != reinit {
		return interop.CommitResult{}, invalid("ReInitCommit must commit a ReInit proposal, and Commit must not")
	}
	c := msg{T: "commit", Group: g.snap.Group, Epoch: g.snap.Epoch, Sender: g.identity, Private: g.encrypt, ByValue: byValue, Path: r.ForcePath, Nonce: nonce()}
	for _, p := range props[:refs] {
		c.ByRef = append(c.ByRef, p.hash)
	}
	commit := encode(c)
	res := interop.CommitResult{Commit: commit}
	var joiners [][]byte
	for _, p := range props {
		if p.p.Kind == "add" {
			joiners = append(joiners, hash(p.p.KP))
		}
	}
	if len(joiners) > 0 {
		res.Welcome, res.RatchetTree = welcome(next, hash(commit), psks, joiners, r.ExternalTree)
	}
	g.pending = &pending{commit: commit, snap: next, psks: psks, reinit: ri}
	return res, nil
}

// welcome encodes a Welcome, with the tree inside or returned apart.
func welcome(s snapshot, commitHash []byte, psks []pskRef, joiners [][]byte, externalTree bool) (w, tree []byte) {
	s = s.clone()
	if externalTree {
		tree = encode(msg{T: "tree", Roster: s.Roster})
		s.Roster = nil
	}
	return encode(msg{T: "welcome", State: &s, CommitHash: commitHash, PSKs: psks, Joiners: joiners}), tree
}

// Commit implements interop.State.
func (g *group) Commit(_ context.Context, r interop.CommitRequest) (interop.CommitResult, error) {
	return g.commit(r, false)
}

// ReInitCommit implements interop.State.
func (g *group) ReInitCommit(_ context.Context, r interop.CommitRequest) (interop.CommitResult, error) {
	return g.commit(r, true)
}

// advance moves to the next epoch.
func (g *group) advance(s snapshot, commit []byte, psks []pskRef) {
	prev := g.auth
	g.snap = s
	g.auth = authenticator(s, hash(commit), psks)
	g.cache = nil
	g.pending = nil
	g.prevAuth = prev
}

func (g *group) handlePending(reinit bool) ([]byte, *prop, error) {
	if err := g.live(); err != nil {
		return nil, nil, err
	}
	p := g.pending
	if p == nil {
		return nil, nil, precondition("no pending commit")
	}
	if (p.reinit != nil) != reinit {
		return nil, nil, precondition("the pending commit is of the other kind (reinit or not)")
	}
	g.advance(p.snap, p.commit, p.psks)
	return g.b.report(g.auth), p.reinit, nil
}

// HandlePendingCommit implements interop.State.
func (g *group) HandlePendingCommit(context.Context) ([]byte, error) {
	auth, _, err := g.handlePending(false)
	return auth, err
}

func (g *group) handle(proposals [][]byte, commit []byte, reinit bool) ([]byte, *prop, error) {
	if err := g.live(); err != nil {
		return nil, nil, err
	}
	c, err := decode(commit, "commit")
	if err != nil {
		return nil, nil, err
	}
	if !bytes.Equal(c.Group, g.snap.Group) || c.Epoch != g.snap.Epoch {
		return nil, nil, invalid("commit for group %q epoch %d, at group %q epoch %d", c.Group, c.Epoch, g.snap.Group, g.snap.Epoch)
	}
	if c.Sender == g.identity {
		return nil, nil, invalid("a member's own commit is applied with HandlePendingCommit")
	}
	if c.External {
		if reinit || len(proposals) != 0 {
			return nil, nil, invalid("an external commit carries no proposals by reference")
		}
		for _, p := range c.PSKs {
			if !g.psks[string(p.ID)] {
				return nil, nil, invalid("%q does not have external PSK %x", g.identity, p.ID)
			}
		}
		next, err := applyExternal(g.snap, c)
		if err != nil {
			return nil, nil, err
		}
		g.advance(next, commit, c.PSKs)
		return g.reportHandled(), nil, nil
	}
	if !slices.Contains(g.snap.Roster, c.Sender) {
		return nil, nil, invalid("commit from non-member %q", c.Sender)
	}
	if c.Private != g.encrypt {
		return nil, nil, invalid("handshake encryption mismatch: commit private=%v, group private=%v", c.Private, g.encrypt)
	}
	known := slices.Clone(g.cache)
	for _, b := range proposals {
		p, err := g.receive(b)
		if err != nil {
			return nil, nil, err
		}
		known = append(known, p)
	}
	var props []cached
	for _, h := range c.ByRef {
		i := slices.IndexFunc(known, func(k cached) bool { return bytes.Equal(k.hash, h) })
		if i < 0 {
			return nil, nil, invalid("commit references proposal %x, which was not given", h[:4])
		}
		props = append(props, known[i])
	}
	for _, p := range c.ByValue {
		props = append(props, cached{sender: c.Sender, p: p})
	}
	next, psks, ri, err := g.apply(props)
	if err != nil {
		return nil, nil, err
	}
	if (ri != nil) != reinit {
		return nil, nil, precondition("a ReInit commit is handled with HandleReInitCommit, any other with HandleCommit")
	}
	if !slices.Contains(next.Roster, g.identity) {
		return nil, nil, invalid("%q was removed by this commit", g.identity)
	}
	g.advance(next, commit, psks)
	return g.reportHandled(), ri, nil
}

func (g *group) reportHandled() []byte {
	if g.b.o.Fault == FaultStaleAuthenticator && g.prevAuth != nil {
		return g.prevAuth
	}
	return g.b.report(g.auth)
}

// HandleCommit implements interop.State.
func (g *group) HandleCommit(_ context.Context, proposals [][]byte, commit []byte) ([]byte, error) {
	auth, _, err := g.handle(proposals, commit, false)
	return auth, err
}

// endForReInit ends the group and makes the member's ReInit.
func (g *group) endForReInit(ri *prop, auth []byte) (interop.ReInit, interop.ReInitResult, error) {
	tx, err := g.b.newKeyPackage(ri.Suite, g.identity)
	if err != nil {
		return nil, interop.ReInitResult{}, err
	}
	g.ended = true
	r := &reinit{tx: tx, encrypt: g.encrypt, psk: pskRef{Kind: "reinit", Group: g.snap.Group, Epoch: g.snap.Epoch}, group: ri.Group, exts: ri.Exts}
	return r, interop.ReInitResult{KeyPackage: tx.kp, EpochAuthenticator: auth}, nil
}

// HandlePendingReInitCommit implements interop.State.
func (g *group) HandlePendingReInitCommit(context.Context) (interop.ReInit, interop.ReInitResult, error) {
	auth, ri, err := g.handlePending(true)
	if err != nil {
		return nil, interop.ReInitResult{}, err
	}
	return g.endForReInit(ri, auth)
}

// HandleReInitCommit implements interop.State.
func (g *group) HandleReInitCommit(_ context.Context, proposals [][]byte, commit []byte) (interop.ReInit, interop.ReInitResult, error) {
	auth, ri, err := g.handle(proposals, commit, true)
	if err != nil {
		return nil, interop.ReInitResult{}, err
	}
	return g.endForReInit(ri, auth)
}

// subgroup creates a new group (branch or reinit) led by identity.
func (b *Backend) subgroup(identity string, encrypt bool, suite uint16, groupID []byte, exts []interop.Extension, kps [][]byte, psk pskRef, externalTree bool) (*group, interop.SubgroupResult, error) {
	s := snapshot{Suite: suite, Group: slices.Clone(groupID), Epoch: 1, Roster: []string{identity}, Exts: exts}
	var joiners [][]byte
	for _, kp := range kps {
		m, err := decode(kp, "kp")
		if err != nil {
			return nil, interop.SubgroupResult{}, err
		}
		if m.Suite != suite {
			return nil, interop.SubgroupResult{}, invalid("key package of %q is for suite %d, new group uses %d", m.Identity, m.Suite, suite)
		}
		if slices.Contains(s.Roster, m.Identity) {
			return nil, interop.SubgroupResult{}, invalid("%q is already a member", m.Identity)
		}
		s.Roster = append(s.Roster, m.Identity)
		joiners = append(joiners, hash(kp))
	}
	commitHash := nonce() // stands for the new group's first commit
	psks := []pskRef{psk}
	w, tree := welcome(s, commitHash, psks, joiners, externalTree)
	g := &group{b: b, identity: identity, encrypt: encrypt, snap: s, joined: 1, psks: map[string]bool{}, seen: map[string]bool{}}
	g.auth = authenticator(s, commitHash, psks)
	return g, interop.SubgroupResult{Welcome: w, RatchetTree: tree, EpochAuthenticator: b.report(g.auth)}, nil
}

// CreateBranch implements interop.State.
func (g *group) CreateBranch(_ context.Context, r interop.CreateBranchRequest) (interop.State, interop.SubgroupResult, error) {
	if err := g.live(); err != nil {
		return nil, interop.SubgroupResult{}, err
	}
	psk := pskRef{Kind: "branch", Group: g.snap.Group, Epoch: g.snap.Epoch}
	ng, res, err := g.b.subgroup(g.identity, g.encrypt, g.snap.Suite, r.GroupID, r.Extensions, r.KeyPackages, psk, r.ExternalTree)
	if err != nil {
		return nil, interop.SubgroupResult{}, err
	}
	return ng, res, nil
}

// HandleBranch implements interop.State.
func (g *group) HandleBranch(_ context.Context, tx interop.Transaction, welcome, tree []byte) (interop.State, []byte, error) {
	t, ok := tx.(*transaction)
	if !ok || t.b != g.b {
		return nil, nil, invalid("transaction from another backend")
	}
	if t.identity != g.identity {
		return nil, nil, invalid("branching %q with the key package of %q", g.identity, t.identity)
	}
	want := pskRef{Kind: "branch", Group: g.snap.Group, Epoch: g.snap.Epoch}
	ng, err := t.join(welcome, tree, g.encrypt, &want)
	if err != nil {
		return nil, nil, err
	}
	return ng, g.b.report(ng.auth), nil
}

// reinit is the fake interop.ReInit.
type reinit struct {
	tx      *transaction
	encrypt bool
	psk     pskRef
	group   []byte
	exts    []interop.Extension
}

// ReInitWelcome implements interop.ReInit.
func (r *reinit) ReInitWelcome(_ context.Context, req interop.ReInitWelcomeRequest) (interop.State, interop.SubgroupResult, error) {
	g, res, err := r.tx.b.subgroup(r.tx.identity, r.encrypt, r.tx.suite, r.group, r.exts, req.KeyPackages, r.psk, req.ExternalTree)
	if err != nil {
		return nil, interop.SubgroupResult{}, err
	}
	return g, res, nil
}

// HandleReInitWelcome implements interop.ReInit.
func (r *reinit) HandleReInitWelcome(_ context.Context, welcome, tree []byte) (interop.State, []byte, error) {
	g, err := r.tx.join(welcome, tree, r.encrypt, &r.psk)
	if err != nil {
		return nil, nil, err
	}
	if !bytes.Equal(g.snap.Group, r.group) {
		return nil, nil, invalid("welcome to group %q, reinit asked for %q", g.snap.Group, r.group)
	}
	return g, r.tx.b.report(g.auth), nil
}
