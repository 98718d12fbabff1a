package server

import (
	"bytes"
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"

	"connectrpc.com/connect"

	"github.com/mlskit/mlskit/as"
	"github.com/mlskit/mlskit/ds/store"
	"github.com/mlskit/mlskit/mls"
)

// The server never takes membership from a client's word (RFC 9750, Section
// 8: a delivery service must hold up against malicious clients). What it
// can verify, it verifies with the library's own parsing and PublicGroup;
// docs/SECURITY.md says what that is in each handshake mode.

// policies caches each group's policy, which never changes after creation.
type policies struct {
	mu sync.Mutex
	m  map[string]store.Policy
}

func (s *Server) policy(ctx context.Context, groupID []byte) (store.Policy, error) {
	s.pols.mu.Lock()
	p, ok := s.pols.m[string(groupID)]
	s.pols.mu.Unlock()
	if ok {
		return p, nil
	}
	g, err := s.st.Head(ctx, groupID)
	if err != nil {
		return store.Policy{}, err
	}
	s.pols.mu.Lock()
	if s.pols.m == nil || len(s.pols.m) > 100000 {
		s.pols.m = map[string]store.Policy{}
	}
	s.pols.m[string(groupID)] = g.Policy
	s.pols.mu.Unlock()
	return g.Policy, nil
}

// credValidator lets the library ask mlsd's authentication service about
// the credentials it meets in a group's tree (RFC 9420, Section 5.3.1).
type credValidator struct {
	ctx   context.Context
	v     as.Validator
	suite uint16
}

func (c credValidator) ValidateCredential(cred mls.Credential, key []byte) error {
	_, err := c.v.Validate(c.ctx, cred.Bytes(), c.suite, key)
	return err
}

func (s *Server) mlsConfig(ctx context.Context, suite mls.CipherSuite) *mls.Config {
	return &mls.Config{Now: s.cfg.Now, CredentialValidator: credValidator{ctx: context.WithoutCancel(ctx), v: s.cfg.Validator, suite: uint16(suite)}}
}

// clientOf names the client a leaf's credential belongs to, as the
// authentication service reads it.
func (s *Server) clientOf(ctx context.Context, suite mls.CipherSuite, cred mls.Credential, key []byte) (as.Identity, error) {
	id, err := s.cfg.Validator.Validate(ctx, cred.Bytes(), uint16(suite), key)
	if err != nil {
		return id, s.reject("policy", connect.NewError(connect.CodePermissionDenied, fmt.Errorf("credential: %w", err)))
	}
	return id, nil
}

// checkOwnLeaf checks that a leaf the caller brings (its own leaf in a new
// group, or the new leaf of its external commit) is the caller's: its
// credential names the caller, and a credential no authority vouches for
// carries the key the caller logged in with.
func (s *Server) checkOwnLeaf(ctx context.Context, sess store.Session, suite mls.CipherSuite, cred mls.Credential, key []byte) error {
	id, err := s.clientOf(ctx, suite, cred, key)
	if err != nil {
		return err
	}
	if id.ClientID != sess.ClientID {
		return s.reject("policy", connect.NewError(connect.CodePermissionDenied, errors.New("the leaf's credential names another client")))
	}
	if !id.Vouched && !bytes.Equal(key, sess.SignatureKey) {
		return s.reject("policy", connect.NewError(connect.CodePermissionDenied, errors.New("the leaf's signature key differs from the logged-in key")))
	}
	return nil
}

// refused maps a validation failure of the library to the API: the
// message names the check and the RFC section, never a secret.
func (s *Server) refused(what string, err error) error {
	var ve *mls.ValidationError
	if errors.As(err, &ve) || errors.Is(err, mls.ErrMalformed) {
		return s.reject("invalid", connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("%s: %w", what, err)))
	}
	return s.reject("invalid", connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("%s: %v", what, err)))
}

// follower is the server's secret-free view of a group with public
// handshakes: the PublicGroup after every proposal and commit up to seq.
type follower struct {
	pg  *mls.PublicGroup
	seq uint64

	// For the cache's byte bound: the ratchet tree's encoded size at
	// epoch, and the proposal bytes followed since.
	epoch     uint64
	treeBytes int64
	proposals int64
	cost      int64 // as last counted by the cache
}

// size estimates the memory a follower holds: its ratchet tree decoded
// (public keys, credentials, cached hashes: about twice its encoding), the
// proposals it caches for the epoch's commit, and a fixed part.
func (fl *follower) size() int64 {
	if fl.treeBytes == 0 || fl.epoch != fl.pg.Epoch() {
		tree, err := fl.pg.RatchetTree()
		if err != nil {
			tree = nil
		}
		fl.epoch, fl.treeBytes, fl.proposals = fl.pg.Epoch(), int64(len(tree)), 0
	}
	return 2*fl.treeBytes + fl.proposals + 4<<10
}

// followers caches a follower per group, bounded in bytes (size): when
// full, the least recently used groups go; an evicted group is followed
// again from the store (its published GroupInfo and the records since) when
// it is next needed.
type followers struct {
	mu       sync.Mutex
	maxBytes int64
	used     int64
	m        map[string]*list.Element // of *followEntry; most recently used at the front
	lru      list.List
}

type followEntry struct {
	id string
	fl *follower
}

func (f *followers) get(groupID []byte) *follower {
	f.mu.Lock()
	defer f.mu.Unlock()
	el, ok := f.m[string(groupID)]
	if !ok {
		return nil
	}
	f.lru.MoveToFront(el)
	return el.Value.(*followEntry).fl
}

// put caches fl for groupID, or counts its size anew when it is cached
// already, and evicts the least recently used others while over the bound.
// The caller holds the group's lock (fl is not used concurrently).
func (f *followers) put(groupID []byte, fl *follower) {
	cost := fl.size()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]*list.Element{}
	}
	k := string(groupID)
	if el, ok := f.m[k]; ok {
		old := el.Value.(*followEntry)
		f.used -= old.fl.cost
		old.fl = fl
		f.lru.MoveToFront(el)
	} else {
		f.m[k] = f.lru.PushFront(&followEntry{id: k, fl: fl})
	}
	fl.cost = cost
	f.used += cost
	for f.maxBytes > 0 && f.used > f.maxBytes && f.lru.Len() > 1 {
		f.remove(f.lru.Back())
	}
}

func (f *followers) remove(el *list.Element) {
	e := el.Value.(*followEntry)
	f.used -= e.fl.cost
	delete(f.m, e.id)
	f.lru.Remove(el)
}

func (f *followers) drop(groupID []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if el, ok := f.m[string(groupID)]; ok {
		f.remove(el)
	}
}

func (f *followers) stats() (groups int, bytes int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.m), f.used
}

// follow returns the group's PublicGroup at the head of its log. The
// caller holds the group's commit lock. It starts from the GroupInfo the
// server published for the current epoch (which it checked against its own
// view when it accepted it) and replays the proposals since; then it
// follows each record appended, also those another node appended.
func (s *Server) follow(ctx context.Context, groupID []byte) (*follower, error) {
	fl := s.follows.get(groupID)
	g, err := s.st.Head(ctx, groupID)
	if err != nil {
		return nil, err
	}
	if fl == nil || fl.seq > g.HeadSeq {
		// Rebuilt from the published GroupInfo (the head read again with
		// it: another node may have appended since).
		if g, err = s.st.Group(ctx, groupID); err != nil {
			return nil, err
		}
		var base uint64
		if g.Epoch > 0 {
			r, err := s.st.CommitRecord(ctx, groupID, g.Epoch-1)
			if err != nil {
				return nil, fmt.Errorf("finding the commit of epoch %d: %w", g.Epoch-1, err)
			}
			base = r.Seq
		}
		info, err := mls.InspectMessage(g.GroupInfo)
		if err != nil {
			return nil, fmt.Errorf("the published GroupInfo: %w", err)
		}
		pg, err := mls.NewPublicGroup(s.mlsConfig(ctx, info.CipherSuite), g.GroupInfo, nil)
		if err != nil {
			return nil, fmt.Errorf("following the group from its GroupInfo: %w", err)
		}
		if pg.Epoch() != g.Epoch {
			return nil, fmt.Errorf("the published GroupInfo is for epoch %d, the group is at %d", pg.Epoch(), g.Epoch)
		}
		fl = &follower{pg: pg, seq: base}
		s.metrics.inc("mlsd_follower_loads_total")
	}
	for {
		recs, err := s.records(ctx, groupID, fl.seq, maxFetch)
		if err != nil {
			return nil, err
		}
		for i := range recs {
			if err := fl.apply(&recs[i]); err != nil {
				s.follows.drop(groupID)
				return nil, fmt.Errorf("replaying record %d: %w", recs[i].Seq, err)
			}
		}
		if len(recs) < maxFetch {
			break
		}
	}
	s.follows.put(groupID, fl)
	return fl, nil
}

// apply follows one record that is already in the log.
func (fl *follower) apply(r *store.Record) error {
	if r.WireFormat == uint16(mls.WireFormatPublicMessage) && (r.Kind == store.KindProposal || r.Kind == store.KindCommit) {
		rcv, err := fl.pg.Process(r.Body)
		if err != nil {
			return err
		}
		fl.proposals += int64(len(r.Body))
		if rcv.Commit != nil {
			if err := fl.pg.Merge(rcv.Commit); err != nil {
				return err
			}
		}
	}
	fl.seq = r.Seq
	return nil
}

// staleAt answers a handshake for an epoch other than the follower's
// without asking the store to sequence anything unvalidated.
func (s *Server) staleAt(ctx context.Context, groupID []byte, epoch, current uint64) error {
	se := &store.StaleEpochError{Epoch: epoch, CurrentEpoch: current}
	if epoch < current {
		r, err := s.st.CommitRecord(ctx, groupID, epoch)
		if err != nil {
			return err
		}
		se.WinningSeq, se.WinningHash = r.Seq, r.ChainHash
	}
	return se
}
