// Package runner executes the MLS working group's interop config scripts
// (configs-*.json) against MLSClient gRPC servers: mlskit's own
// (cmd/mls-interop, or interop.Server in-process) or any other
// implementation's.
//
// A script is run once per Run: a cipher suite, a handshake encryption
// flag, and an assignment of each actor to a client. Plan builds the runs a
// test wants (every suite the clients support, both encryption flags, and
// the assignment modes asked for); Run.Execute performs the steps in order
// and fails at the first step whose RPC fails or whose outcome disagrees:
// every epoch authenticator a step implies must match (and change when the
// epoch does), and every unprotect must give back exactly what was
// protected.
//
// The step semantics follow the working group's interop-test-config
// document and, where that is silent, its test runner; the differences are
// documented on the step types in config.go.
package runner

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/mlskit/mlskit/interop/mlsclient"
)

// Client is a connected MLSClient server.
type Client struct {
	Name   string   // as the server reports it
	Suites []uint16 // as the server reports them
	Label  string   // names the client in errors and run names; Connect sets it to Name
	rpc    pb.MLSClientClient
}

// Connect asks the server behind conn for its name and cipher suites.
func Connect(ctx context.Context, conn grpc.ClientConnInterface) (*Client, error) {
	c := &Client{rpc: pb.NewMLSClientClient(conn)}
	n, err := c.rpc.Name(ctx, &pb.NameRequest{})
	if err != nil {
		return nil, fmt.Errorf("Name: %w", err)
	}
	cs, err := c.rpc.SupportedCiphersuites(ctx, &pb.SupportedCiphersuitesRequest{})
	if err != nil {
		return nil, fmt.Errorf("SupportedCiphersuites: %w", err)
	}
	c.Name = n.GetName()
	c.Label = c.Name
	for _, s := range cs.GetCiphersuites() {
		if s > 0xFFFF {
			return nil, fmt.Errorf("client %q reports cipher suite %d, which does not fit in 16 bits", c.Name, s)
		}
		c.Suites = append(c.Suites, uint16(s))
	}
	return c, nil
}

// RPC returns the client's gRPC stub, for probes outside scripts.
func (c *Client) RPC() pb.MLSClientClient { return c.rpc }

// Mode is a way of assigning actors to clients.
type Mode int

const (
	// AllOnOne puts every actor on the same client, once per client.
	AllOnOne Mode = iota
	// Alternating gives the actors, in order of first appearance, the
	// clients in turn, once per starting client.
	Alternating
	// AllCombinations tries every assignment: clients^actors runs.
	AllCombinations
)

func (m Mode) String() string {
	switch m {
	case AllOnOne:
		return "all-on-one"
	case Alternating:
		return "alternating"
	case AllCombinations:
		return "all-combinations"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Assignments returns, for each assignment the mode makes, the client index
// of each actor; no assignment appears twice.
func Assignments(mode Mode, actors, clients int) [][]int {
	if actors <= 0 || clients <= 0 {
		return nil
	}
	var out [][]int
	add := func(a []int) {
		if !slices.ContainsFunc(out, func(b []int) bool { return slices.Equal(a, b) }) {
			out = append(out, a)
		}
	}
	switch mode {
	case AllOnOne:
		for c := range clients {
			a := make([]int, actors)
			for i := range a {
				a[i] = c
			}
			add(a)
		}
	case Alternating:
		for start := range clients {
			a := make([]int, actors)
			for i := range a {
				a[i] = (start + i) % clients
			}
			add(a)
		}
	case AllCombinations:
		// Count in base `clients`; each assignment is a fresh slice (the
		// working group's runner shares one backing array between
		// assignments and so repeats some and misses others).
		a := make([]int, actors)
		for {
			add(slices.Clone(a))
			i := 0
			for ; i < actors; i++ {
				a[i]++
				if a[i] < clients {
					break
				}
				a[i] = 0
			}
			if i == actors {
				break
			}
		}
	}
	return out
}

// Run is one execution context for a script.
type Run struct {
	Suite            uint16
	EncryptHandshake bool
	Actors           map[string]*Client // every actor the script names

	RPCTimeout time.Duration // per RPC; 0 means 30s
	Rand       io.Reader     // for group ids and PSKs; nil means crypto/rand
}

// Name describes the run compactly, e.g. "cs1/private/alice=A,bob=B".
func (r *Run) Name(actors []string) string {
	hs := "public"
	if r.EncryptHandshake {
		hs = "private"
	}
	parts := make([]string, len(actors))
	for i, a := range actors {
		parts[i] = a + "=" + r.Actors[a].Label
	}
	return fmt.Sprintf("cs%d/%s/%s", r.Suite, hs, strings.Join(parts, ","))
}

// Plan returns the runs for a script: for every cipher suite some client
// supports, with the clients that support it, both handshake encryption
// flags, and every assignment of the given modes.
func Plan(s Script, clients []*Client, modes ...Mode) []*Run {
	actors := s.Actors()
	var suites []uint16
	for _, c := range clients {
		for _, cs := range c.Suites {
			if !slices.Contains(suites, cs) {
				suites = append(suites, cs)
			}
		}
	}
	slices.Sort(suites)
	var runs []*Run
	for _, cs := range suites {
		var able []*Client
		for _, c := range clients {
			if slices.Contains(c.Suites, cs) {
				able = append(able, c)
			}
		}
		var assigns [][]int
		for _, m := range modes {
			for _, a := range Assignments(m, len(actors), len(able)) {
				if !slices.ContainsFunc(assigns, func(b []int) bool { return slices.Equal(a, b) }) {
					assigns = append(assigns, a)
				}
			}
		}
		for _, enc := range []bool{false, true} {
			for _, a := range assigns {
				r := &Run{Suite: cs, EncryptHandshake: enc, Actors: map[string]*Client{}}
				for i, actor := range actors {
					r.Actors[actor] = able[a[i]]
				}
				runs = append(runs, r)
			}
		}
	}
	return runs
}

// StepError reports the step at which a script failed.
type StepError struct {
	Index  int
	Action string
	Err    error
}

func (e *StepError) Error() string { return fmt.Sprintf("step %d (%s): %v", e.Index, e.Action, e.Err) }
func (e *StepError) Unwrap() error { return e.Err }

// RPCError reports a failed RPC.
type RPCError struct {
	Actor, Client, RPC string
	Err                error
}

func (e *RPCError) Error() string {
	return fmt.Sprintf("%s on %s: %s: %v", e.Actor, e.Client, e.RPC, e.Err)
}
func (e *RPCError) Unwrap() error { return e.Err }

// ErrDisagree is wrapped by every error about an outcome that does not match:
// an epoch authenticator, a decrypted message, a missing output.
var ErrDisagree = errors.New("clients disagree")

// Execute runs the script. Whatever happens, it then frees what the script
// created on the clients; a failure to free the actors' states fails the run.
func (r *Run) Execute(ctx context.Context, s Script) (err error) {
	for _, a := range s.Actors() {
		if r.Actors[a] == nil {
			return fmt.Errorf("actor %q has no client", a)
		}
	}
	x := &execution{
		run:         r,
		suite:       r.Suite,
		msgs:        make([]map[string][]byte, len(s)),
		state:       map[string]uint32{},
		tx:          map[string]uint32{},
		signer:      map[string]uint32{},
		signerIndex: map[string]uint32{},
		lastEA:      map[string][]byte{},
		pending:     map[string]int{},
	}
	for i := range x.msgs {
		x.msgs[i] = map[string][]byte{}
	}
	defer func() {
		if ferr := x.cleanup(ctx); ferr != nil && err == nil {
			err = &StepError{Index: len(s), Action: "free", Err: ferr}
		}
	}()
	for i, st := range s {
		x.index = i
		if err := x.step(ctx, st); err != nil {
			return &StepError{Index: i, Action: st.Action, Err: err}
		}
	}
	return nil
}

// held is an id the run holds on a client.
type held struct {
	actor string
	id    uint32
}

// execution is the state of one Execute.
type execution struct {
	run   *Run
	suite uint16 // changes on a cipher-suite-changing reinit
	index int
	msgs  []map[string][]byte // outputs of each step, by name

	state  map[string]uint32 // actor -> current state id
	tx     map[string]uint32 // actor -> transaction id not yet used up
	signer map[string]uint32 // actor -> signer id
	// signerIndex is each signer's index in external_senders: the order in
	// which the script added signers.
	signerIndex map[string]uint32
	extra       []held            // superseded states, reinits: freed best-effort
	lastEA      map[string][]byte // actor -> epoch authenticator of its current epoch
	pending     map[string]int    // actor -> index of its last commit step
}

func (x *execution) client(actor string) *Client { return x.run.Actors[actor] }

// call makes one RPC for an actor.
func (x *execution) call(ctx context.Context, actor, rpc string, fn func(context.Context, pb.MLSClientClient) error) error {
	d := x.run.RPCTimeout
	if d == 0 {
		d = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	c := x.client(actor)
	if err := fn(ctx, c.rpc); err != nil {
		return &RPCError{Actor: actor, Client: c.Label, RPC: rpc, Err: err}
	}
	return nil
}

func (x *execution) put(key string, v []byte) { x.msgs[x.index][key] = v }

func (x *execution) get(index int, key string) ([]byte, error) {
	v, ok := x.msgs[index][key]
	if !ok {
		return nil, fmt.Errorf("%w: step %d has no %s", ErrDisagree, index, key)
	}
	return v, nil
}

func (x *execution) random(n int) ([]byte, error) {
	r := x.run.Rand
	if r == nil {
		r = rand.Reader
	}
	b := make([]byte, n)
	_, err := io.ReadFull(r, b)
	return b, err
}

// newGroupID makes a fresh printable group id, as the working group's runner does.
func (x *execution) newGroupID() ([]byte, error) {
	b, err := x.random(16)
	if err != nil {
		return nil, err
	}
	return []byte(hex.EncodeToString(b)), nil
}

func (x *execution) stateOf(actor string) (uint32, error) {
	id, ok := x.state[actor]
	if !ok {
		return 0, fmt.Errorf("actor %q has no group state", actor)
	}
	return id, nil
}

// setState records an actor's new state id; a different old one is freed
// later, best-effort.
func (x *execution) setState(actor string, id uint32) {
	if old, ok := x.state[actor]; ok && old != id {
		x.extra = append(x.extra, held{actor, old})
	}
	x.state[actor] = id
}

// setTx records an actor's new transaction; an unused old one is freed later.
func (x *execution) setTx(actor string, id uint32) {
	if old, ok := x.tx[actor]; ok && old != id {
		x.extra = append(x.extra, held{actor, old})
	}
	x.tx[actor] = id
}

func short(b []byte) string {
	if len(b) > 4 {
		return hex.EncodeToString(b[:4]) + "…"
	}
	return hex.EncodeToString(b)
}

// agree checks an epoch authenticator an actor reports for a new epoch:
// present, equal to want, and different from the actor's previous one.
func (x *execution) agree(actor string, got, want []byte, source string) error {
	if len(got) == 0 {
		return fmt.Errorf("%w: %s reported an empty epoch authenticator", ErrDisagree, actor)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%w: %s's epoch authenticator %s differs from %s's %s", ErrDisagree, actor, short(got), source, short(want))
	}
	if prev := x.lastEA[actor]; bytes.Equal(prev, got) {
		return fmt.Errorf("%w: %s's epoch authenticator did not change with the epoch", ErrDisagree, actor)
	}
	x.lastEA[actor] = got
	return nil
}

// setEA records the epoch authenticator of the first member to reach an
// epoch, checking only that it is present and new.
func (x *execution) setEA(actor string, ea []byte) error { return x.agree(actor, ea, ea, actor) }

// agreeAt checks an authenticator against the one recorded for the commit
// of step index, or records it there if it is the first.
func (x *execution) agreeAt(index int, actor string, got []byte) error {
	if want, ok := x.msgs[index]["epoch_authenticator"]; ok {
		return x.agree(actor, got, want, fmt.Sprintf("step %d", index))
	}
	if err := x.setEA(actor, got); err != nil {
		return err
	}
	x.msgs[index]["epoch_authenticator"] = got
	return nil
}

func protoExtensions(in []Extension) []*pb.Extension {
	out := make([]*pb.Extension, len(in))
	for i, e := range in {
		out[i] = &pb.Extension{ExtensionType: uint32(e.Type), ExtensionData: e.Data}
	}
	return out
}

// changeSuite moves the run to another cipher suite that every actor's
// client supports: the next one above the current, wrapping around.
func (x *execution) changeSuite() error {
	var common []uint16
	first := true
	for _, c := range x.run.Actors {
		if first {
			common = slices.Clone(c.Suites)
			first = false
			continue
		}
		common = slices.DeleteFunc(common, func(s uint16) bool { return !slices.Contains(c.Suites, s) })
	}
	common = slices.DeleteFunc(common, func(s uint16) bool { return s == x.suite })
	if len(common) == 0 {
		return fmt.Errorf("changing the cipher suite needs a second suite that every client supports; they share only %d", x.suite)
	}
	slices.Sort(common)
	next := common[0]
	for _, s := range common {
		if s > x.suite {
			next = s
			break
		}
	}
	x.suite = next
	return nil
}

// reinitGroupID returns the group id for a reinit: the script's group id
// (from its first step, a createGroup), changed if asked.
func (x *execution) reinitGroupID(change bool) ([]byte, error) {
	id, err := x.get(0, "group_id")
	if err != nil {
		return nil, err
	}
	if change {
		id = append(slices.Clone(id), "++"...)
	}
	return id, nil
}

// describe turns a ProposalSpec into the protocol's ProposalDescription.
func (x *execution) describe(p ProposalSpec) (*pb.ProposalDescription, error) {
	d := &pb.ProposalDescription{ProposalType: []byte(p.ProposalType)}
	var err error
	switch p.ProposalType {
	case "add":
		d.KeyPackage, err = x.get(p.KeyPackage, "key_package")
	case "remove":
		d.RemovedId = []byte(p.Removed)
	case "externalPSK":
		d.PskId, err = x.get(p.PSKID, "psk_id")
	case "resumptionPSK":
		d.EpochId = p.EpochID
	case "groupContextExtensions":
		d.Extensions = protoExtensions(p.Extensions)
	case "reinit":
		d.Extensions = protoExtensions(p.Extensions)
		if p.ChangeCipherSuite {
			if err = x.changeSuite(); err != nil {
				return nil, err
			}
		}
		d.CipherSuite = uint32(x.suite)
		d.GroupId, err = x.reinitGroupID(p.ChangeGroupID)
	default:
		err = fmt.Errorf("unknown proposalType %q", p.ProposalType)
	}
	return d, err
}

func (x *execution) proposals(refs []int) ([][]byte, error) {
	out := make([][]byte, len(refs))
	for i, r := range refs {
		var err error
		if out[i], err = x.get(r, "proposal"); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (x *execution) commitRequest(actor string, refs []int, specs []ProposalSpec, f commitFlags) (*pb.CommitRequest, error) {
	sid, err := x.stateOf(actor)
	if err != nil {
		return nil, err
	}
	byRef, err := x.proposals(refs)
	if err != nil {
		return nil, err
	}
	req := &pb.CommitRequest{StateId: sid, ByReference: byRef, ForcePath: f.forcePath(), ExternalTree: f.externalTree()}
	for _, s := range specs {
		d, err := x.describe(s)
		if err != nil {
			return nil, err
		}
		req.ByValue = append(req.ByValue, d)
	}
	return req, nil
}

// checkCommitResponse checks the harness contract on a CommitResponse: a
// commit, a welcome when someone joins, and a ratchet tree exactly when an
// external tree was asked for.
func checkCommitResponse(resp *pb.CommitResponse, externalTree, joiners bool) error {
	switch {
	case len(resp.GetCommit()) == 0:
		return fmt.Errorf("%w: empty commit", ErrDisagree)
	case joiners && len(resp.GetWelcome()) == 0:
		return fmt.Errorf("%w: no welcome for the joiners", ErrDisagree)
	case externalTree && len(resp.GetRatchetTree()) == 0:
		return fmt.Errorf("%w: external tree asked for but none returned", ErrDisagree)
	case !externalTree && len(resp.GetRatchetTree()) != 0:
		return fmt.Errorf("%w: a ratchet tree was returned though no external tree was asked for", ErrDisagree)
	}
	return nil
}

func (x *execution) createKeyPackage(ctx context.Context, actor string) (uint32, []byte, error) {
	req := &pb.CreateKeyPackageRequest{CipherSuite: uint32(x.suite), Identity: []byte(actor)}
	var resp *pb.CreateKeyPackageResponse
	err := x.call(ctx, actor, "CreateKeyPackage", func(ctx context.Context, c pb.MLSClientClient) (err error) {
		resp, err = c.CreateKeyPackage(ctx, req)
		return err
	})
	if err != nil {
		return 0, nil, err
	}
	if len(resp.GetKeyPackage()) == 0 {
		return 0, nil, fmt.Errorf("%w: %s returned an empty key package", ErrDisagree, actor)
	}
	x.setTx(actor, resp.GetTransactionId())
	return resp.GetTransactionId(), resp.GetKeyPackage(), nil
}

// join processes a Welcome at a joiner with its pending transaction.
func (x *execution) join(ctx context.Context, joiner string, welcome, tree []byte) ([]byte, error) {
	txID, ok := x.tx[joiner]
	if !ok {
		return nil, fmt.Errorf("%s has no key package waiting for a welcome", joiner)
	}
	req := &pb.JoinGroupRequest{TransactionId: txID, Welcome: welcome, EncryptHandshake: x.run.EncryptHandshake, Identity: []byte(joiner), RatchetTree: tree}
	var resp *pb.JoinGroupResponse
	err := x.call(ctx, joiner, "JoinGroup", func(ctx context.Context, c pb.MLSClientClient) (err error) {
		resp, err = c.JoinGroup(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	delete(x.tx, joiner) // used up
	delete(x.lastEA, joiner)
	x.setState(joiner, resp.GetStateId())
	return resp.GetEpochAuthenticator(), nil
}

func (x *execution) handlePending(ctx context.Context, actor string) ([]byte, error) {
	sid, err := x.stateOf(actor)
	if err != nil {
		return nil, err
	}
	var resp *pb.HandleCommitResponse
	err = x.call(ctx, actor, "HandlePendingCommit", func(ctx context.Context, c pb.MLSClientClient) (err error) {
		resp, err = c.HandlePendingCommit(ctx, &pb.HandlePendingCommitRequest{StateId: sid})
		return err
	})
	if err != nil {
		return nil, err
	}
	x.setState(actor, resp.GetStateId())
	return resp.GetEpochAuthenticator(), nil
}

func (x *execution) handleCommit(ctx context.Context, actor string, proposals [][]byte, commit []byte) ([]byte, error) {
	sid, err := x.stateOf(actor)
	if err != nil {
		return nil, err
	}
	var resp *pb.HandleCommitResponse
	err = x.call(ctx, actor, "HandleCommit", func(ctx context.Context, c pb.MLSClientClient) (err error) {
		resp, err = c.HandleCommit(ctx, &pb.HandleCommitRequest{StateId: sid, Proposal: proposals, Commit: commit})
		return err
	})
	if err != nil {
		return nil, err
	}
	x.setState(actor, resp.GetStateId())
	return resp.GetEpochAuthenticator(), nil
}

// groupInfo asks an actor for a GroupInfo.
func (x *execution) groupInfo(ctx context.Context, actor string, externalTree bool) (*pb.GroupInfoResponse, error) {
	sid, err := x.stateOf(actor)
	if err != nil {
		return nil, err
	}
	var resp *pb.GroupInfoResponse
	err = x.call(ctx, actor, "GroupInfo", func(ctx context.Context, c pb.MLSClientClient) (err error) {
		resp, err = c.GroupInfo(ctx, &pb.GroupInfoRequest{StateId: sid, ExternalTree: externalTree})
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(resp.GetGroupInfo()) == 0 {
		return nil, fmt.Errorf("%w: %s returned an empty group info", ErrDisagree, actor)
	}
	if externalTree != (len(resp.GetRatchetTree()) != 0) {
		return nil, fmt.Errorf("%w: %s returned a ratchet tree: %v, external tree asked for: %v", ErrDisagree, actor, len(resp.GetRatchetTree()) != 0, externalTree)
	}
	return resp, nil
}

// proposal runs one proposal RPC and stores its output.
func (x *execution) proposal(ctx context.Context, actor, rpc string, fn func(context.Context, pb.MLSClientClient, uint32) (*pb.ProposalResponse, error)) error {
	sid, err := x.stateOf(actor)
	if err != nil {
		return err
	}
	var resp *pb.ProposalResponse
	err = x.call(ctx, actor, rpc, func(ctx context.Context, c pb.MLSClientClient) (err error) {
		resp, err = fn(ctx, c, sid)
		return err
	})
	if err != nil {
		return err
	}
	if len(resp.GetProposal()) == 0 {
		return fmt.Errorf("%w: %s returned an empty proposal", ErrDisagree, actor)
	}
	x.put("proposal", resp.GetProposal())
	return nil
}

// cleanup frees what the run created: the actors' current states must free
// cleanly, as in the working group's runner; superseded states, unused
// transactions, reinits and signers are freed best-effort, since
// implementations differ on which of those ids outlive their use.
func (x *execution) cleanup(ctx context.Context) error {
	var errs []error
	free := func(h held) error {
		return x.call(ctx, h.actor, "Free", func(ctx context.Context, c pb.MLSClientClient) error {
			_, err := c.Free(ctx, &pb.FreeRequest{StateId: h.id})
			return err
		})
	}
	for _, a := range sortedKeys(x.state) {
		if err := free(held{a, x.state[a]}); err != nil {
			errs = append(errs, err)
		}
	}
	var rest []held
	rest = append(rest, x.extra...)
	for _, a := range sortedKeys(x.tx) {
		rest = append(rest, held{a, x.tx[a]})
	}
	for _, a := range sortedKeys(x.signer) {
		rest = append(rest, held{a, x.signer[a]})
	}
	for _, h := range rest {
		// Best-effort: the id may already be gone; only a broken connection counts.
		if err := free(h); err != nil && status.Code(errors.Unwrap(err)) == codes.Unavailable {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
