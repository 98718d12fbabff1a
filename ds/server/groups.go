package server

import (
	"bytes"
	"context"
	"errors"
	"time"

	"connectrpc.com/connect"

	v1 "github.com/mlskit/mlskit/ds/api/mlsdv1"
	"github.com/mlskit/mlskit/ds/mlsmsg"
	"github.com/mlskit/mlskit/ds/store"
)

func (s *Server) checkGroupID(id []byte) error {
	if len(id) == 0 || len(id) > store.MaxGroupIDLen {
		return s.reject("malformed", invalid("group id must be 1 to %d bytes", store.MaxGroupIDLen))
	}
	return nil
}

// parse reads an MLSMessage header after the size cap.
func (s *Server) parse(data []byte, what string) (*mlsmsg.Header, error) {
	if len(data) > s.cfg.MaxMessageSize {
		return nil, s.reject("oversized", connect.NewError(connect.CodeResourceExhausted, errors.New(what+": larger than the size cap")))
	}
	h, err := mlsmsg.ParseHeader(data)
	if err != nil {
		return nil, s.reject("malformed", invalid("%s: %v", what, err))
	}
	return h, nil
}

func (s *Server) checkGroupInfo(gi []byte, groupID []byte, epoch uint64) error {
	if gi == nil {
		return nil
	}
	h, err := s.parse(gi, "group_info")
	if err != nil {
		return err
	}
	if h.WireFormat != mlsmsg.WireFormatGroupInfo || !bytes.Equal(h.GroupID, groupID) || h.Epoch != epoch {
		return s.reject("malformed", invalid("group_info: must be a GroupInfo for this group at epoch %d", epoch))
	}
	return nil
}

func (s *Server) CreateGroup(ctx context.Context, req *connect.Request[v1.CreateGroupRequest]) (*connect.Response[v1.CreateGroupResponse], error) {
	sess, err := s.auth(ctx, req.Header())
	if err != nil {
		return nil, err
	}
	m := req.Msg
	if err := s.checkGroupID(m.GroupId); err != nil {
		return nil, err
	}
	if err := s.checkGroupInfo(m.GroupInfo, m.GroupId, 0); err != nil {
		return nil, err
	}
	g, err := s.st.CreateGroup(ctx, m.GroupId, sess.ClientID, m.GroupInfo, s.cfg.Now())
	if err != nil {
		return nil, s.storeError(err, false)
	}
	return connect.NewResponse(&v1.CreateGroupResponse{Epoch: g.Epoch, ChainHash: g.HeadHash}), nil
}

func (s *Server) groupLimit(groupID []byte) error {
	if !s.groupLim.allow(string(groupID), 1, s.cfg.Now()) {
		s.metrics.inc("mlsd_rate_limited_total", "limit", "group")
		return connect.NewError(connect.CodeResourceExhausted, errors.New("rate limited: group"))
	}
	return nil
}

// SendMessage appends a proposal or application message. It is accepted for
// the group's current epoch or up to EpochWindow epochs before it (RFC 9750,
// Section 5.2).
func (s *Server) SendMessage(ctx context.Context, req *connect.Request[v1.SendMessageRequest]) (*connect.Response[v1.SendMessageResponse], error) {
	sess, err := s.auth(ctx, req.Header())
	if err != nil {
		return nil, err
	}
	h, err := s.parse(req.Msg.Message, "message")
	if err != nil {
		return nil, err
	}
	if h.WireFormat != mlsmsg.WireFormatPublicMessage && h.WireFormat != mlsmsg.WireFormatPrivateMessage {
		return nil, s.reject("malformed", invalid("message: wire format %d is not a PublicMessage or PrivateMessage", h.WireFormat))
	}
	if h.ContentType == mlsmsg.ContentCommit {
		return nil, s.reject("malformed", invalid("message: commits go through SendCommit"))
	}
	if err := s.checkGroupID(h.GroupID); err != nil {
		return nil, err
	}
	if err := s.groupLimit(h.GroupID); err != nil {
		return nil, err
	}
	t0 := time.Now()
	recs, err := s.st.Append(ctx, store.Append{
		GroupID: h.GroupID, Sender: sess.ClientID, Epoch: h.Epoch, Window: s.cfg.EpochWindow, Now: s.cfg.Now(),
		Entries: []store.Entry{{Kind: h.ContentType, WireFormat: h.WireFormat, Body: req.Msg.Message}},
	})
	s.metrics.observe("mlsd_append_seconds", time.Since(t0))
	if err != nil {
		return nil, s.storeError(err, false)
	}
	s.appended(recs)
	return connect.NewResponse(&v1.SendMessageResponse{Seq: recs[0].Seq, ChainHash: recs[0].ChainHash}), nil
}

func (s *Server) appended(recs []store.Record) {
	s.cache.add(recs)
	for _, r := range recs {
		s.metrics.inc("mlsd_records_appended_total", "kind", kindName(r.Kind))
	}
}

func kindName(k uint8) string {
	switch k {
	case store.KindApplication:
		return "application"
	case store.KindProposal:
		return "proposal"
	case store.KindCommit:
		return "commit"
	case store.KindWelcome:
		return "welcome"
	}
	return "unknown"
}

func (s *Server) checkClientIDs(ids []string, what string) error {
	seen := map[string]bool{}
	for _, c := range ids {
		if c == "" || len(c) > store.MaxClientIDLen || seen[c] {
			return s.reject("malformed", invalid("%s: empty, too long or repeated client id", what))
		}
		seen[c] = true
	}
	return nil
}

// SendCommit accepts a commit bundle as one unit, only if the commit names
// the group's current epoch: exactly one commit wins each epoch. Its
// Welcomes enter the log right after it, so no joiner sees a Welcome whose
// commit lost (RFC 9750, Section 5.2.3).
func (s *Server) SendCommit(ctx context.Context, req *connect.Request[v1.SendCommitRequest]) (*connect.Response[v1.SendCommitResponse], error) {
	start := time.Now()
	sess, err := s.auth(ctx, req.Header())
	if err != nil {
		return nil, err
	}
	m := req.Msg
	h, err := s.parse(m.Commit, "commit")
	if err != nil {
		return nil, err
	}
	if (h.WireFormat != mlsmsg.WireFormatPublicMessage && h.WireFormat != mlsmsg.WireFormatPrivateMessage) || h.ContentType != mlsmsg.ContentCommit {
		return nil, s.reject("malformed", invalid("commit: not a PublicMessage or PrivateMessage commit"))
	}
	if err := s.checkGroupID(h.GroupID); err != nil {
		return nil, err
	}
	if len(m.Welcomes) > 100 || len(m.AddMembers) > 1000 || len(m.RemoveMembers) > 1000 {
		return nil, s.reject("malformed", invalid("commit: too many welcomes or membership changes"))
	}
	if err := s.checkClientIDs(m.AddMembers, "add_members"); err != nil {
		return nil, err
	}
	if err := s.checkClientIDs(m.RemoveMembers, "remove_members"); err != nil {
		return nil, err
	}
	a := store.Append{
		GroupID: h.GroupID, Sender: sess.ClientID, Epoch: h.Epoch, Commit: true, Now: s.cfg.Now(),
		Entries:    []store.Entry{{Kind: store.KindCommit, WireFormat: h.WireFormat, Body: m.Commit}},
		AddMembers: m.AddMembers, RemoveMembers: m.RemoveMembers, GroupInfo: m.GroupInfo,
		// An external commit (RFC 9420, Section 12.4.3.2) comes from a
		// client that is not yet a member; the members validate it.
		ExternalJoin: h.WireFormat == mlsmsg.WireFormatPublicMessage && h.SenderType == mlsmsg.SenderNewMemberCommit,
	}
	for _, w := range m.Welcomes {
		wh, err := s.parse(w.Welcome, "welcome")
		if err != nil {
			return nil, err
		}
		if wh.WireFormat != mlsmsg.WireFormatWelcome || len(w.Recipients) == 0 {
			return nil, s.reject("malformed", invalid("welcome: not a Welcome, or no recipients"))
		}
		if err := s.checkClientIDs(w.Recipients, "welcome recipients"); err != nil {
			return nil, err
		}
		a.Entries = append(a.Entries, store.Entry{Kind: store.KindWelcome, WireFormat: wh.WireFormat, Recipients: w.Recipients, Body: w.Welcome})
	}
	if err := s.checkGroupInfo(m.GroupInfo, h.GroupID, h.Epoch+1); err != nil {
		return nil, err
	}
	if err := s.groupLimit(h.GroupID); err != nil {
		return nil, err
	}
	// Commits to one group are serialised in this node, so the losers of a
	// race are answered from memory instead of each taking the database's
	// write lock. The database stays the arbiter between nodes.
	unlock := s.epochs.lock(h.GroupID)
	defer unlock()
	err = s.epochs.check(&a, s.cfg.Now())
	var recs []store.Record
	if err == nil {
		recs, err = s.st.Append(ctx, a)
	}
	if err != nil {
		var se *store.StaleEpochError
		switch {
		case errors.As(err, &se):
			s.metrics.inc("mlsd_commits_total", "result", "stale")
			s.epochs.learn(h.GroupID, se)
			s.lost(ctx, h.GroupID, sess.ClientID, se.CurrentEpoch)
		case errors.Is(err, store.ErrDeferred):
			s.metrics.inc("mlsd_commits_total", "result", "deferred")
		}
		return nil, s.storeError(err, true)
	}
	s.epochs.won(h.GroupID, h.Epoch, &recs[0])
	s.won(h.GroupID, sess.ClientID)
	s.appended(recs)
	s.metrics.inc("mlsd_commits_total", "result", "won")
	s.metrics.observe("mlsd_commit_accept_seconds", time.Since(start))
	return connect.NewResponse(&v1.SendCommitResponse{Seq: recs[0].Seq, ChainHash: recs[0].ChainHash, Epoch: h.Epoch + 1}), nil
}

// Commit fairness (RFC 9420, Section 14; Section 16.9 on suppressed
// commits): a member whose commits keep losing gets the next epoch to itself
// for a short hold. Loss counts live in this node's memory; with several
// nodes each counts what it sees, which only delays the priority.
func fairKey(groupID []byte, client string) string { return string(groupID) + "\x00" + client }

func (s *Server) lost(ctx context.Context, groupID []byte, client string, current uint64) {
	s.fairMu.Lock()
	k := fairKey(groupID, client)
	s.losses[k]++
	n := s.losses[k]
	s.fairMu.Unlock()
	if n < s.cfg.StarvationThreshold {
		return
	}
	// One holder per epoch: the first starved loser gets it; others keep
	// their count and get a later epoch.
	until := s.cfg.Now().Add(s.cfg.PriorityHold)
	if !s.epochs.grant(groupID, client, current, until) {
		return
	}
	if err := s.st.SetPriority(ctx, groupID, client, current, until); err != nil {
		s.log.Warn("setting commit priority", "err", err)
		return
	}
	s.log.Info("commit priority granted", "client", client, "epoch", current, "losses", n)
}

func (s *Server) won(groupID []byte, client string) {
	s.fairMu.Lock()
	delete(s.losses, fairKey(groupID, client))
	s.fairMu.Unlock()
}

func (s *Server) GetGroupInfo(ctx context.Context, req *connect.Request[v1.GetGroupInfoRequest]) (*connect.Response[v1.GetGroupInfoResponse], error) {
	if _, err := s.auth(ctx, req.Header()); err != nil {
		return nil, err
	}
	if err := s.checkGroupID(req.Msg.GroupId); err != nil {
		return nil, err
	}
	g, err := s.st.Group(ctx, req.Msg.GroupId)
	if err != nil {
		return nil, s.storeError(err, false)
	}
	if g.GroupInfo == nil {
		return nil, connect.NewError(connect.CodeNotFound, errors.New("no GroupInfo published for the group"))
	}
	return connect.NewResponse(&v1.GetGroupInfoResponse{GroupInfo: g.GroupInfo, Epoch: g.Epoch}), nil
}

func (s *Server) ListGroups(ctx context.Context, req *connect.Request[v1.ListGroupsRequest]) (*connect.Response[v1.ListGroupsResponse], error) {
	sess, err := s.auth(ctx, req.Header())
	if err != nil {
		return nil, err
	}
	ms, err := s.st.Memberships(ctx, sess.ClientID)
	if err != nil {
		return nil, s.storeError(err, false)
	}
	resp := &v1.ListGroupsResponse{}
	for _, m := range ms {
		g, err := s.st.Group(ctx, m.GroupID)
		if err != nil {
			return nil, s.storeError(err, false)
		}
		resp.Groups = append(resp.Groups, &v1.GroupStatus{GroupId: m.GroupID, Epoch: g.Epoch, HeadSeq: g.HeadSeq, AckedSeq: m.AckedSeq})
	}
	return connect.NewResponse(resp), nil
}
