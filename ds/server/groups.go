package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"connectrpc.com/connect"

	v1 "github.com/mlskit/mlskit/ds/api/mlsdv1"
	"github.com/mlskit/mlskit/ds/store"
	"github.com/mlskit/mlskit/mls"
)

func (s *Server) checkGroupID(id []byte) error {
	if len(id) == 0 || len(id) > store.MaxGroupIDLen {
		return s.reject("malformed", invalid("group id must be 1 to %d bytes", store.MaxGroupIDLen))
	}
	return nil
}

// parse decodes an MLSMessage with the library's decoder (the one decoder
// of the project) after the size cap.
func (s *Server) parse(data []byte, what string) (*mls.MessageInfo, error) {
	if len(data) > s.cfg.MaxMessageSize {
		return nil, s.reject("oversized", connect.NewError(connect.CodeResourceExhausted, errors.New(what+": larger than the size cap")))
	}
	h, err := mls.InspectMessage(data)
	if err != nil {
		return nil, s.reject("malformed", invalid("%s: %v", what, err))
	}
	return h, nil
}

func (s *Server) checkGroupInfo(gi []byte, groupID []byte, epoch uint64) (*mls.MessageInfo, error) {
	if gi == nil {
		return nil, nil
	}
	h, err := s.parse(gi, "group_info")
	if err != nil {
		return nil, err
	}
	if h.WireFormat != mls.WireFormatGroupInfo || !bytes.Equal(h.GroupID, groupID) || h.Epoch != epoch {
		return nil, s.reject("malformed", invalid("group_info: must be a GroupInfo for this group at epoch %d", epoch))
	}
	return h, nil
}

// CreateGroup registers a group with its creator as the only member. The
// policy is fixed here. A group with public handshakes or external joins
// needs its epoch-0 GroupInfo (with the tree): the server checks it with
// PublicGroup, and that its one leaf is the caller's.
func (s *Server) CreateGroup(ctx context.Context, req *connect.Request[v1.CreateGroupRequest]) (*connect.Response[v1.CreateGroupResponse], error) {
	sess, err := s.auth(ctx, req.Header())
	if err != nil {
		return nil, err
	}
	m := req.Msg
	if err := s.checkGroupID(m.GroupId); err != nil {
		return nil, err
	}
	info, err := s.checkGroupInfo(m.GroupInfo, m.GroupId, 0)
	if err != nil {
		return nil, err
	}
	pol := store.Policy{PublicHandshakes: m.GetPolicy().GetPublicHandshakes(), ExternalJoins: m.GetPolicy().GetExternalJoins()}
	if pol.PublicHandshakes || pol.ExternalJoins {
		if info == nil {
			return nil, s.reject("malformed", invalid("group_info: required for public handshakes or external joins"))
		}
		pg, err := mls.NewPublicGroup(s.mlsConfig(ctx, info.CipherSuite), m.GroupInfo, nil)
		if err != nil {
			return nil, s.refused("group_info", err)
		}
		ms := pg.Members()
		if len(ms) != 1 {
			return nil, s.reject("policy", invalid("group_info: a new group has exactly one member, its creator"))
		}
		if err := s.checkOwnLeaf(ctx, sess, info.CipherSuite, ms[0].Credential, ms[0].SignatureKey); err != nil {
			return nil, err
		}
	}
	g, err := s.st.CreateGroup(ctx, m.GroupId, sess.ClientID, m.GroupInfo, pol, s.cfg.Now())
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
// Section 5.2), from current members only. In a group with public
// handshakes a proposal must be a PublicMessage for the current epoch that
// the group's PublicGroup validates, from the member's own leaf.
func (s *Server) SendMessage(ctx context.Context, req *connect.Request[v1.SendMessageRequest]) (*connect.Response[v1.SendMessageResponse], error) {
	sess, err := s.auth(ctx, req.Header())
	if err != nil {
		return nil, err
	}
	h, err := s.parse(req.Msg.Message, "message")
	if err != nil {
		return nil, err
	}
	if h.WireFormat != mls.WireFormatPublicMessage && h.WireFormat != mls.WireFormatPrivateMessage {
		return nil, s.reject("malformed", invalid("message: wire format %d is not a PublicMessage or PrivateMessage", h.WireFormat))
	}
	if h.ContentType == mls.ContentTypeCommit {
		return nil, s.reject("malformed", invalid("message: commits go through SendCommit"))
	}
	if h.ContentType == mls.ContentTypeApplication && h.WireFormat != mls.WireFormatPrivateMessage {
		// RFC 9420, Section 6: application messages MUST be PrivateMessage.
		return nil, s.reject("malformed", invalid("message: an application message must be a PrivateMessage (RFC 9420, Section 6)"))
	}
	if err := s.checkGroupID(h.GroupID); err != nil {
		return nil, err
	}
	if err := s.groupLimit(h.GroupID); err != nil {
		return nil, err
	}
	a := store.Append{
		GroupID: h.GroupID, Sender: sess.ClientID, Epoch: h.Epoch, Window: s.cfg.EpochWindow, Now: s.cfg.Now(),
		Entries: []store.Entry{{Kind: uint8(h.ContentType), WireFormat: uint16(h.WireFormat), Body: req.Msg.Message}},
	}
	var fl *follower
	if h.ContentType == mls.ContentTypeProposal {
		pol, err := s.policy(ctx, h.GroupID)
		if err != nil {
			return nil, s.storeError(err, false)
		}
		if pol.PublicHandshakes {
			unlock := s.epochs.lock(h.GroupID)
			defer unlock()
			if fl, err = s.checkPublicProposal(ctx, sess, h, req.Msg.Message); err != nil {
				return nil, err
			}
		}
	}
	t0 := time.Now()
	recs, err := s.st.Append(ctx, a)
	s.metrics.observe("mlsd_append_seconds", time.Since(t0))
	if fl != nil {
		s.followed(h.GroupID, fl, recs, err)
	}
	if err != nil {
		return nil, s.storeError(err, false)
	}
	s.appended(recs)
	return connect.NewResponse(&v1.SendMessageResponse{Seq: recs[0].Seq, ChainHash: recs[0].ChainHash}), nil
}

// followed keeps the follower only if the records just appended are the
// ones it validated and directly follow what it had seen; otherwise the next
// handshake rebuilds it from the log.
func (s *Server) followed(groupID []byte, fl *follower, recs []store.Record, err error) {
	if err != nil || len(recs) == 0 || recs[0].Seq != fl.seq+1 {
		s.follows.drop(groupID)
		return
	}
	for i := range recs {
		if recs[i].Kind == store.KindProposal {
			fl.proposals += int64(len(recs[i].Body))
		}
	}
	fl.seq = recs[len(recs)-1].Seq
	s.follows.put(groupID, fl) // its size changed
}

// checkPublicProposal validates a proposal of a group with public
// handshakes and caches it in the group's PublicGroup, so a commit can
// refer to it. The caller holds the group's lock.
func (s *Server) checkPublicProposal(ctx context.Context, sess store.Session, h *mls.MessageInfo, msg []byte) (*follower, error) {
	if h.WireFormat != mls.WireFormatPublicMessage {
		return nil, s.reject("policy", invalid("message: this group's proposals are PublicMessage (its policy)"))
	}
	if h.Sender.Type != mls.SenderMember {
		// Only current members may send; new members join by commit.
		return nil, s.reject("policy", connect.NewError(connect.CodePermissionDenied, errors.New("message: only members may propose in this group")))
	}
	if _, err := s.activeMember(ctx, h.GroupID, sess.ClientID); err != nil {
		return nil, err
	}
	fl, err := s.follow(ctx, h.GroupID)
	if err != nil {
		return nil, s.storeError(err, false)
	}
	if h.Epoch != fl.pg.Epoch() {
		return nil, s.storeError(s.staleAt(ctx, h.GroupID, h.Epoch, fl.pg.Epoch()), false)
	}
	if err := s.checkSenderLeaf(ctx, sess, fl.pg, h.Sender.Leaf); err != nil {
		return nil, err
	}
	if _, err := fl.pg.Process(msg); err != nil {
		s.follows.drop(h.GroupID) // nothing was cached, but be sure
		return nil, s.refused("proposal", err)
	}
	return fl, nil
}

// checkSenderLeaf checks that a member's handshake comes from its own leaf.
func (s *Server) checkSenderLeaf(ctx context.Context, sess store.Session, pg *mls.PublicGroup, leaf mls.LeafIndex) error {
	m, ok := pg.Member(leaf)
	if !ok {
		return s.reject("policy", connect.NewError(connect.CodePermissionDenied, errors.New("sender is not a member leaf")))
	}
	id, err := s.clientOf(ctx, pg.CipherSuite(), m.Credential, m.SignatureKey)
	if err != nil {
		return err
	}
	if id.ClientID != sess.ClientID {
		return s.reject("policy", connect.NewError(connect.CodePermissionDenied, errors.New("the sender leaf belongs to another client")))
	}
	return nil
}

// activeMember returns the caller's membership if it is a current member.
func (s *Server) activeMember(ctx context.Context, groupID []byte, client string) (store.Membership, error) {
	mb, err := s.st.Membership(ctx, groupID, client)
	if err == nil && !mb.Active() {
		err = store.ErrNotMember
	}
	if err != nil {
		if errors.Is(err, store.ErrNotMember) {
			if _, gerr := s.st.Head(ctx, groupID); errors.Is(gerr, store.ErrNotFound) {
				err = gerr
			}
		}
		return mb, s.storeError(err, false)
	}
	return mb, nil
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
// commit lost (RFC 9750, Section 5.2.3). Membership comes from what the
// server can check, never from the request alone (docs/SECURITY.md):
//   - an external commit is validated with PublicGroup against the group's
//     state, and admits only its signer;
//   - with public handshakes, every commit is validated and membership is
//     what it adds and removes;
//   - with encrypted handshakes, added members must be the owners of
//     KeyPackages the committer claimed and welcomed.
//
// Either way a Welcome reaches only the owners of KeyPackages claimed from
// the directory.
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
	if (h.WireFormat != mls.WireFormatPublicMessage && h.WireFormat != mls.WireFormatPrivateMessage) || h.ContentType != mls.ContentTypeCommit {
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
	welcomes := make([]*mls.MessageInfo, len(m.Welcomes))
	for i, w := range m.Welcomes {
		if welcomes[i], err = s.parse(w.Welcome, "welcome"); err != nil {
			return nil, err
		}
		if welcomes[i].WireFormat != mls.WireFormatWelcome || len(welcomes[i].KeyPackageRefs) == 0 {
			return nil, s.reject("malformed", invalid("welcome: not a Welcome, or addressed to no KeyPackage"))
		}
		if err := s.checkClientIDs(w.Recipients, "welcome recipients"); err != nil {
			return nil, err
		}
	}
	if _, err := s.checkGroupInfo(m.GroupInfo, h.GroupID, h.Epoch+1); err != nil {
		return nil, err
	}
	if err := s.groupLimit(h.GroupID); err != nil {
		return nil, err
	}
	pol, err := s.policy(ctx, h.GroupID)
	if err != nil {
		return nil, s.storeError(err, true)
	}
	a := store.Append{
		GroupID: h.GroupID, Sender: sess.ClientID, Epoch: h.Epoch, Commit: true, Now: s.cfg.Now(),
		Entries:   []store.Entry{{Kind: store.KindCommit, WireFormat: uint16(h.WireFormat), Body: m.Commit}},
		GroupInfo: m.GroupInfo,
	}
	// Commits to one group are serialised in this node, so the losers of a
	// race are answered from memory instead of each taking the database's
	// write lock. The database stays the arbiter between nodes.
	unlock := s.epochs.lock(h.GroupID)
	defer unlock()
	err = s.epochs.check(&a, s.cfg.Now())
	var fl *follower
	if err == nil {
		switch {
		case h.WireFormat == mls.WireFormatPublicMessage && h.Sender.Type == mls.SenderNewMemberCommit:
			fl, err = s.checkExternalCommit(ctx, sess, pol, h, m, welcomes, &a)
		case pol.PublicHandshakes:
			fl, err = s.checkPublicCommit(ctx, sess, h, m, welcomes, &a)
		default:
			err = s.checkPrivateCommit(ctx, sess, m, welcomes, &a)
		}
	}
	var recs []store.Record
	if err == nil {
		recs, err = s.st.Append(ctx, a)
		if fl != nil {
			s.followed(h.GroupID, fl, recs, err)
		}
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
		var ce *connect.Error
		if errors.As(err, &ce) {
			s.metrics.inc("mlsd_commits_total", "result", "refused")
			return nil, err
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

func permissionDenied(format string, args ...any) error {
	return connect.NewError(connect.CodePermissionDenied, fmt.Errorf(format, args...))
}

// routeWelcomes adds the bundle's Welcomes to a, each addressed to the
// owners of the KeyPackages it is encrypted to (RFC 9420, Section
// 12.4.3.1), found through the claims: every KeyPackageRef must be one a
// client in claimers claimed from the directory. It returns ref -> owner.
// The sender's claims are used up by the commit.
func (s *Server) routeWelcomes(ctx context.Context, claimers map[string]bool, ws []*v1.Welcome, infos []*mls.MessageInfo, a *store.Append) (map[string]string, error) {
	var refs [][]byte
	for _, in := range infos {
		refs = append(refs, in.KeyPackageRefs...)
	}
	owners := map[string]string{}
	if len(refs) == 0 {
		return owners, nil
	}
	claims, err := s.st.Claims(ctx, refs, s.cfg.Now())
	if err != nil {
		return nil, err
	}
	for _, c := range claims {
		if claimers[c.Claimer] {
			owners[string(c.Ref)] = c.Owner
			if c.Claimer == a.Sender {
				a.UseClaims = append(a.UseClaims, c.Ref)
			}
		}
	}
	for i, in := range infos {
		set := map[string]bool{}
		var recips []string
		for _, ref := range in.KeyPackageRefs {
			o, ok := owners[string(ref)]
			if !ok {
				return nil, s.reject("policy", permissionDenied("welcome: KeyPackageRef %x was not claimed from the directory by the sender; a Welcome goes only to a KeyPackage's owner", ref))
			}
			if !set[o] {
				set[o] = true
				recips = append(recips, o)
			}
		}
		sort.Strings(recips)
		if len(ws[i].Recipients) > 0 && !sameSet(ws[i].Recipients, set) {
			return nil, s.reject("malformed", invalid("welcome: recipients %v differ from the owners of its KeyPackages %v", ws[i].Recipients, recips))
		}
		a.Entries = append(a.Entries, store.Entry{Kind: store.KindWelcome, WireFormat: uint16(mls.WireFormatWelcome), Recipients: recips, Body: ws[i].Welcome})
	}
	return owners, nil
}

func sameSet(list []string, set map[string]bool) bool {
	if len(list) != len(set) {
		return false
	}
	for _, c := range list {
		if !set[c] {
			return false
		}
	}
	return true
}

// checkPrivateCommit: with encrypted handshakes the server cannot read the
// commit. It admits as new members only the owners of KeyPackages the
// committer claimed and sent a Welcome to, and each of them must be named
// (finding 13 of issue 16: naming anyone else is refused). Removals are
// the committer's word; the store checks the committer is a member.
func (s *Server) checkPrivateCommit(ctx context.Context, sess store.Session, m *v1.SendCommitRequest, infos []*mls.MessageInfo, a *store.Append) error {
	owners, err := s.routeWelcomes(ctx, map[string]bool{sess.ClientID: true}, m.Welcomes, infos, a)
	if err != nil {
		return err
	}
	welcomed := map[string]bool{}
	for _, o := range owners {
		welcomed[o] = true
	}
	for _, c := range m.AddMembers {
		if !welcomed[c] {
			return s.reject("policy", permissionDenied("add_members: %q is not the owner of a KeyPackage you claimed and welcomed in this commit", c))
		}
	}
	if !sameSet(m.AddMembers, welcomed) {
		return s.reject("malformed", invalid("add_members: must name every client this commit's Welcomes go to"))
	}
	a.AddMembers, a.RemoveMembers = m.AddMembers, m.RemoveMembers
	return nil
}

// checkPublicCommit validates a member's commit with the group's
// PublicGroup (RFC 9420, Section 12.4.2, all a party without secrets can
// check) and derives the membership change from it.
func (s *Server) checkPublicCommit(ctx context.Context, sess store.Session, h *mls.MessageInfo, m *v1.SendCommitRequest, infos []*mls.MessageInfo, a *store.Append) (*follower, error) {
	if h.WireFormat != mls.WireFormatPublicMessage {
		return nil, s.reject("policy", invalid("commit: this group's commits are PublicMessage (its policy)"))
	}
	if h.Sender.Type != mls.SenderMember {
		return nil, s.reject("policy", invalid("commit: from a %d sender", h.Sender.Type))
	}
	if m.GroupInfo == nil {
		return nil, s.reject("malformed", invalid("group_info: required with public handshakes, for the new epoch"))
	}
	if _, err := s.activeMember(ctx, h.GroupID, sess.ClientID); err != nil {
		return nil, err
	}
	fl, err := s.follow(ctx, h.GroupID)
	if err != nil {
		return nil, err
	}
	pg := fl.pg
	if h.Epoch != pg.Epoch() {
		return nil, s.staleAt(ctx, h.GroupID, h.Epoch, pg.Epoch())
	}
	if err := s.checkSenderLeaf(ctx, sess, pg, h.Sender.Leaf); err != nil {
		return nil, err
	}
	rcv, err := pg.Process(m.Commit)
	if err != nil {
		return nil, s.refused("commit", err)
	}
	sc := rcv.Commit
	if sc == nil || sc.External {
		return nil, s.reject("malformed", invalid("commit: not a member's commit"))
	}
	var removed []string
	for _, r := range sc.Removed {
		mb, ok := pg.Member(r.Leaf)
		if !ok {
			return nil, s.reject("invalid", invalid("commit: removes a blank leaf"))
		}
		id, err := s.clientOf(ctx, pg.CipherSuite(), mb.Credential, mb.SignatureKey)
		if err != nil {
			return nil, err
		}
		removed = append(removed, id.ClientID)
	}
	// Added members: each KeyPackage must have been claimed from the
	// directory by a member, and its owner is the added client.
	members, err := s.st.Members(ctx, h.GroupID)
	if err != nil {
		return nil, err
	}
	claimers := map[string]bool{sess.ClientID: true}
	for _, c := range members {
		claimers[c] = true
	}
	var addRefs [][]byte
	for _, ad := range sc.Added {
		addRefs = append(addRefs, ad.KeyPackage.Ref())
	}
	owners, err := s.routeWelcomes(ctx, claimers, m.Welcomes, infos, a)
	if err != nil {
		return nil, err
	}
	if missing := s.addOwners(ctx, claimers, addRefs, owners); missing != nil {
		return nil, missing
	}
	var added []string
	addSet := map[string]bool{}
	for i, ad := range sc.Added {
		o := owners[string(addRefs[i])]
		id, err := s.clientOf(ctx, pg.CipherSuite(), ad.KeyPackage.Credential(), ad.KeyPackage.SignatureKey())
		if err != nil {
			return nil, err
		}
		if id.ClientID != o {
			return nil, s.reject("policy", permissionDenied("commit: the KeyPackage added for %q names %q", o, id.ClientID))
		}
		added = append(added, o)
		addSet[string(addRefs[i])] = true
	}
	for _, in := range infos {
		for _, ref := range in.KeyPackageRefs {
			if !addSet[string(ref)] {
				return nil, s.reject("policy", permissionDenied("welcome: KeyPackageRef %x is not added by this commit", ref))
			}
		}
	}
	if err := s.matchStated(m, added, removed); err != nil {
		return nil, err
	}
	if err := pg.Merge(sc); err != nil {
		s.follows.drop(h.GroupID)
		return nil, err
	}
	if err := pg.CheckGroupInfo(m.GroupInfo); err != nil {
		s.follows.drop(h.GroupID)
		return nil, s.refused("group_info", err)
	}
	a.AddMembers, a.RemoveMembers = added, removed
	return fl, nil
}

// addOwners completes owners with the claims of KeyPackages a commit adds
// by value or reference without a Welcome in this bundle.
func (s *Server) addOwners(ctx context.Context, claimers map[string]bool, refs [][]byte, owners map[string]string) error {
	var need [][]byte
	for _, r := range refs {
		if _, ok := owners[string(r)]; !ok {
			need = append(need, r)
		}
	}
	if len(need) == 0 {
		return nil
	}
	claims, err := s.st.Claims(ctx, need, s.cfg.Now())
	if err != nil {
		return err
	}
	for _, c := range claims {
		if claimers[c.Claimer] {
			owners[string(c.Ref)] = c.Owner
		}
	}
	for _, r := range need {
		if _, ok := owners[string(r)]; !ok {
			return s.reject("policy", permissionDenied("commit: adds KeyPackage %x, which no member claimed from the directory", r))
		}
	}
	return nil
}

// matchStated: the stated membership, if any, must be what the server
// derived.
func (s *Server) matchStated(m *v1.SendCommitRequest, added, removed []string) error {
	set := func(l []string) map[string]bool {
		out := map[string]bool{}
		for _, c := range l {
			out[c] = true
		}
		return out
	}
	if len(m.AddMembers) > 0 && !sameSet(m.AddMembers, set(added)) {
		return s.reject("malformed", invalid("add_members: %v, but the commit adds %v", m.AddMembers, added))
	}
	if len(m.RemoveMembers) > 0 && !sameSet(m.RemoveMembers, set(removed)) {
		return s.reject("malformed", invalid("remove_members: %v, but the commit removes %v", m.RemoveMembers, removed))
	}
	return nil
}

// checkExternalCommit validates an external commit (RFC 9420, Section
// 12.4.3.2) against the group's current state: the follower with public
// handshakes, else the GroupInfo published for the current epoch. It must
// be signed by the joiner's new leaf, which must be the caller's; it may
// remove only the caller's own old leaf (resync). It admits its sender.
func (s *Server) checkExternalCommit(ctx context.Context, sess store.Session, pol store.Policy, h *mls.MessageInfo, m *v1.SendCommitRequest, infos []*mls.MessageInfo, a *store.Append) (*follower, error) {
	if !pol.ExternalJoins {
		return nil, s.reject("policy", permissionDenied("external commit: this group does not allow external joins"))
	}
	if len(infos) > 0 || len(m.AddMembers) > 0 {
		return nil, s.reject("malformed", invalid("external commit: adds only its sender, without Welcomes"))
	}
	if pol.PublicHandshakes && m.GroupInfo == nil {
		return nil, s.reject("malformed", invalid("group_info: required with public handshakes, for the new epoch"))
	}
	var fl *follower
	var pg *mls.PublicGroup
	if pol.PublicHandshakes {
		var err error
		if fl, err = s.follow(ctx, h.GroupID); err != nil {
			return nil, err
		}
		pg = fl.pg
	} else {
		g, err := s.st.Group(ctx, h.GroupID)
		if err != nil {
			return nil, err
		}
		if h.Epoch != g.Epoch {
			return nil, s.staleAt(ctx, h.GroupID, h.Epoch, g.Epoch)
		}
		info, err := mls.InspectMessage(g.GroupInfo)
		if g.GroupInfo == nil || err != nil || info.Epoch != g.Epoch {
			return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New("external commit: no GroupInfo is published for the current epoch"))
		}
		if pg, err = mls.NewPublicGroup(s.mlsConfig(ctx, info.CipherSuite), g.GroupInfo, nil); err != nil {
			return nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("external commit: the published GroupInfo does not verify: %w", err))
		}
	}
	if h.Epoch != pg.Epoch() {
		return nil, s.staleAt(ctx, h.GroupID, h.Epoch, pg.Epoch())
	}
	rcv, err := pg.Process(m.Commit)
	if err != nil {
		return nil, s.refused("external commit", err)
	}
	sc := rcv.Commit
	if sc == nil || !sc.External || h.PathLeaf == nil {
		return nil, s.reject("malformed", invalid("external commit: not an external commit with a path"))
	}
	// RFC 9420, Section 12.4.3.2: signed by the new member, whose leaf is
	// the path's; here it must also be the caller's.
	if err := s.checkOwnLeaf(ctx, sess, pg.CipherSuite(), h.PathLeaf.Credential, h.PathLeaf.SignatureKey); err != nil {
		return nil, err
	}
	for _, r := range sc.Removed {
		mb, ok := pg.Member(r.Leaf)
		if !ok {
			return nil, s.reject("invalid", invalid("external commit: removes a blank leaf"))
		}
		id, err := s.clientOf(ctx, pg.CipherSuite(), mb.Credential, mb.SignatureKey)
		if err != nil {
			return nil, err
		}
		if id.ClientID != sess.ClientID {
			return nil, s.reject("policy", permissionDenied("external commit: may remove only the joiner's own old leaf (resync, RFC 9420, Section 12.4.3.2)"))
		}
	}
	if len(m.RemoveMembers) > 0 {
		return nil, s.reject("malformed", invalid("remove_members: an external commit removes no one else"))
	}
	if m.GroupInfo != nil {
		if err := pg.Merge(sc); err != nil {
			s.follows.drop(h.GroupID)
			return nil, err
		}
		if err := pg.CheckGroupInfo(m.GroupInfo); err != nil {
			s.follows.drop(h.GroupID)
			return nil, s.refused("group_info", err)
		}
	}
	a.ExternalJoin = true
	return fl, nil
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

// GetGroupInfo returns the published GroupInfo to current members, and to
// anyone when the group allows external joins (RFC 9420, Section 12.4.3.2:
// GroupInfo is not public unless the application makes it so).
func (s *Server) GetGroupInfo(ctx context.Context, req *connect.Request[v1.GetGroupInfoRequest]) (*connect.Response[v1.GetGroupInfoResponse], error) {
	sess, err := s.auth(ctx, req.Header())
	if err != nil {
		return nil, err
	}
	if err := s.checkGroupID(req.Msg.GroupId); err != nil {
		return nil, err
	}
	g, err := s.st.Group(ctx, req.Msg.GroupId)
	if err != nil {
		return nil, s.storeError(err, false)
	}
	if !g.Policy.ExternalJoins {
		if _, err := s.activeMember(ctx, req.Msg.GroupId, sess.ClientID); err != nil {
			return nil, err
		}
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
		g, err := s.st.Head(ctx, m.GroupID)
		if err != nil {
			return nil, s.storeError(err, false)
		}
		resp.Groups = append(resp.Groups, &v1.GroupStatus{GroupId: m.GroupID, Epoch: g.Epoch, HeadSeq: g.HeadSeq, AckedSeq: m.AckedSeq})
	}
	return connect.NewResponse(resp), nil
}
