package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"connectrpc.com/connect"

	v1 "github.com/mlskit/mlskit/ds/api/mlsdv1"
	"github.com/mlskit/mlskit/ds/chain"
	"github.com/mlskit/mlskit/mls"
)

// Read brings every group (or only the named one) up to date with the
// server, joins groups this client was invited to, and returns the events
// not shown before, marking them shown.
func (c *Client) Read(ctx context.Context, group string) ([]Event, error) {
	if err := c.connect(ctx); err != nil {
		return nil, err
	}
	if group != "" {
		if gm := c.meta.group([]byte(group)); gm == nil {
			if err := c.joinNew(ctx); err != nil {
				return nil, err
			}
		}
		if _, _, err := c.group(ctx, group); err != nil && !errors.Is(err, ErrRemoved) {
			return nil, err
		}
		err := c.sync(ctx, group)
		if err != nil && !errors.Is(err, ErrRemoved) && !errors.Is(err, ErrNotDelivered) {
			return nil, err
		}
		if err != nil {
			// Show how it ended once; after that, say so.
			evs, serr := c.takeUnshown(group)
			if serr != nil || len(evs) > 0 {
				return evs, serr
			}
			return nil, err
		}
	} else if err := c.syncAll(ctx); err != nil {
		return nil, err
	}
	return c.takeUnshown(group)
}

// takeUnshown returns the inbox entries not yet shown and marks them shown.
func (c *Client) takeUnshown(group string) ([]Event, error) {
	out := c.meta.Notices
	c.meta.Notices = nil
	for _, gm := range c.meta.sorted() {
		if group != "" && string(gm.ID) != group {
			continue
		}
		for _, e := range gm.Inbox[gm.Shown:] {
			if !e.Own {
				out = append(out, e)
			}
		}
		gm.Shown = len(gm.Inbox)
	}
	slices.SortStableFunc(out, func(a, b Event) int { return a.Time.Compare(b.Time) })
	return out, c.saveMeta()
}

// syncAll joins new groups and brings every known group up to date.
func (c *Client) syncAll(ctx context.Context) error {
	if err := c.joinNew(ctx); err != nil {
		return err
	}
	for _, gm := range c.meta.sorted() {
		if gm.Removed || gm.Offline {
			continue
		}
		if err := c.sync(ctx, string(gm.ID)); err != nil && !errors.Is(err, ErrRemoved) && !errors.Is(err, ErrNotDelivered) {
			return err
		}
	}
	return nil
}

// joinNew looks for groups the server lists for this client that it does
// not know yet, i.e. groups it was added to, and joins them from the
// Welcome addressed to it (RFC 9420, Section 12.4.3.1). An invitation that
// cannot be used (a Welcome that does not decrypt, is for no KeyPackage of
// this client, or names another group) is skipped and reported once, as a
// notice; it never stops the other groups from being joined or read. A
// later Welcome in the same group's log is tried again.
func (c *Client) joinNew(ctx context.Context) error {
	groups, err := c.ds.ListGroups(ctx)
	if err != nil {
		return c.serverError("listing groups", err)
	}
	joined := false
	for _, st := range groups {
		if gm := c.meta.group(st.GroupId); gm != nil && !gm.Removed {
			continue
		}
		d := c.meta.declinedGroup(st.GroupId)
		if d != nil && (d.Ignored || st.HeadSeq <= d.Seq) {
			continue // nothing new since it was last skipped or left
		}
		ok, err := c.joinFromLog(ctx, st.GroupId, d)
		if err != nil {
			return err
		}
		joined = joined || ok
	}
	if joined {
		// A Welcome used up a KeyPackage.
		if _, err := c.replenish(ctx, false); err != nil {
			return err
		}
	}
	return nil
}

// joinFromLog reads the group's log from this client's server-side cursor
// (which starts at the commit that added it), or after the last record an
// earlier attempt looked at, joins from the newest Welcome addressed to it
// that works, and processes what follows. Errors from the server are
// returned; an unusable invitation is recorded as declined and noticed.
func (c *Client) joinFromLog(ctx context.Context, gid []byte, d *declined) (bool, error) {
	var recs []*v1.Record
	var after *uint64
	if d != nil {
		s := d.Seq
		after = &s
	}
	for {
		resp, err := c.ds.Fetch(ctx, gid, after, 500)
		if err != nil {
			if connect.CodeOf(err) == connect.CodePermissionDenied {
				return false, nil
			}
			return false, c.serverError("reading the log of a new group", err)
		}
		recs = append(recs, resp.Records...)
		if len(resp.Records) == 0 || recs[len(recs)-1].Seq >= resp.HeadSeq {
			break
		}
		s := recs[len(recs)-1].Seq
		after = &s
	}
	if len(recs) == 0 {
		return false, nil
	}
	name := string(gid)
	var joinErr error
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		if r.Kind != uint32(chain.KindWelcome) || !slices.Contains(r.Recipients, c.id.Name) || len(r.Body) == 0 {
			continue
		}
		g, err := c.adoptOrJoin(ctx, r, gid)
		if err != nil {
			if joinErr == nil {
				joinErr = err // the newest Welcome's reason
			}
			continue
		}
		gm := c.meta.add(gid)
		c.meta.undecline(gid)
		// The chain is checked from here on; the Welcome's own record is
		// trusted as the starting point (ds/client.Verify).
		if _, err := c.ds.Verify(r); err != nil {
			return false, fmt.Errorf("group %q: %w", name, err)
		}
		gm.Cursor, gm.ChainHash = r.Seq, r.ChainHash
		c.appendEvents(name, Event{Group: name, Seq: r.Seq, Epoch: g.Epoch(), Time: time.UnixMilli(r.TimeUnixMs), Kind: EventJoined, From: r.Sender, Members: memberNames(g),
			Text: fmt.Sprintf("%s added you; members: %s (epoch %d)", r.Sender, joinNames(memberNames(g)), g.Epoch())})
		if err := c.saveMeta(); err != nil {
			return false, err
		}
		if err := c.process(ctx, name, g, gm, recs[i+1:]); err != nil {
			return true, err
		}
		return true, c.ack(ctx, gm)
	}
	if joinErr == nil {
		return false, nil // no Welcome for this client after the cursor
	}
	// Skip it, say so once, and look again only at later records.
	last := recs[len(recs)-1].Seq
	c.meta.decline(gid, last, joinErr.Error())
	c.meta.Notices = append(c.meta.Notices, Event{Group: name, Seq: last, Time: c.now(), Kind: EventSkipped,
		Text: fmt.Sprintf("an invitation to group %q could not be used and was skipped: %v (\"mls leave %s\" ignores the group)", name, joinErr, name)})
	return false, c.saveMeta()
}

// adoptOrJoin joins from the Welcome in r, unless an earlier run died
// between storing the joined group and recording it in chat.json: then the
// stored group (whose KeyPackage is gone) is taken up where that run left
// it.
func (c *Client) adoptOrJoin(ctx context.Context, r *v1.Record, gid []byte) (*mls.Group, error) {
	if c.meta.group(gid) == nil {
		if g, err := c.store.LoadGroup(ctx, gid); err == nil && (g.Epoch() == r.Epoch || g.Epoch() == r.Epoch+1) {
			c.groups[string(gid)] = g
			return g, nil
		}
	}
	return c.joinChecked(ctx, r.Body, gid)
}

// joinChecked joins from a Welcome found in the log of group gid. The group
// the Welcome decrypts to must be gid, and must not be one this client is
// in: a hostile Welcome naming an existing group would otherwise replace its
// state. The Welcome is opened in memory first and stored only when it
// passes (RFC 9420, Section 12.4.3.1).
func (c *Client) joinChecked(ctx context.Context, welcome, gid []byte) (*mls.Group, error) {
	if _, err := mls.WelcomeKeyPackageRefs(welcome); err != nil {
		return nil, fmt.Errorf("not a Welcome: %v", err)
	}
	g, err := c.store.Join(ctx, welcome, func(got []byte) error {
		if gid != nil && !bytes.Equal(got, gid) {
			return fmt.Errorf("the Welcome in the log of group %q is for group %q", gid, got)
		}
		if gm := c.meta.group(got); gm != nil && !gm.Removed {
			return fmt.Errorf("the Welcome is for group %q, which you are already in", got)
		}
		return nil
	})
	if errors.Is(err, errNoKeyPackage) {
		return nil, userErr(ErrNoKeyPackages, "the Welcome is not for any KeyPackage of %s in %s (was it made for someone else, or already used?)", c.id.Name, c.home)
	}
	if err != nil {
		return nil, fmt.Errorf("joining from the Welcome: %w", err)
	}
	c.groups[string(g.GroupID())] = g
	return g, nil
}

// sync fetches the group's log after the local cursor and processes it.
func (c *Client) sync(ctx context.Context, group string) error {
	g, gm, err := c.group(ctx, group)
	if err != nil {
		return err
	}
	if gm.Offline {
		return nil
	}
	if err := c.connect(ctx); err != nil {
		return err
	}
	gid := []byte(group)
	if _, _, ok := c.ds.ChainPosition(gid); !ok && gm.ChainHash != nil {
		c.ds.SetChainPosition(gid, gm.Cursor, gm.ChainHash)
	}
	for {
		after := gm.Cursor
		resp, err := c.ds.Fetch(ctx, gid, &after, 500)
		if err != nil {
			if connect.CodeOf(err) == connect.CodePermissionDenied {
				return c.notDelivered(group, gm, err)
			}
			return c.serverError("reading group "+group, err)
		}
		if gm.Undelivered {
			gm.Undelivered = false
			if err := c.saveMeta(); err != nil {
				return err
			}
		}
		if err := c.process(ctx, group, g, gm, resp.Records); err != nil {
			return err
		}
		if gm.Removed || len(resp.Records) == 0 || gm.Cursor >= resp.HeadSeq {
			break
		}
	}
	if err := c.ack(ctx, gm); err != nil {
		return err
	}
	if gm.Removed {
		return userErr(ErrRemoved, "you were removed from group %q", group)
	}
	if err := c.resolvePending(ctx, group); err != nil {
		return err
	}
	return c.commitLeaveRequests(ctx, group)
}

func (c *Client) ack(ctx context.Context, gm *groupMeta) error {
	if gm.Cursor == 0 {
		return nil
	}
	if err := c.ds.Ack(ctx, gm.ID, gm.Cursor); err != nil && connect.CodeOf(err) != connect.CodePermissionDenied {
		return c.serverError("acknowledging", err)
	}
	return nil
}

// notDelivered handles the server refusing to deliver a group's log. The
// server's word is not an MLS commit: only a commit this client processed
// says it was removed (RFC 9420, Section 12.4.2), so the group is kept as
// it is and the refusal is noticed once.
func (c *Client) notDelivered(group string, gm *groupMeta, err error) error {
	if !gm.Undelivered {
		gm.Undelivered = true
		c.appendEvents(group, Event{Group: group, Time: c.now(), Kind: EventError,
			Text: "the server no longer delivers this group to you (it says you are not a member); no commit removing you could be read"})
		if err := c.saveMeta(); err != nil {
			return err
		}
	}
	return userErr(ErrNotDelivered, "the server refused to deliver group %q to you (%s): if a member removed you, the commit that did it was not delivered", group, connectMessage(err))
}

// process handles log records in order: each record continues the verified
// hash chain, then goes through the group (RFC 9420, Section 6: messages
// of the current epoch, or of a past epoch this client kept the keys of).
// A record that cannot be processed becomes an error event; the rest
// still go through.
func (c *Client) process(ctx context.Context, group string, g *mls.Group, gm *groupMeta, recs []*v1.Record) error {
	for _, r := range recs {
		if r.Seq <= gm.Cursor {
			continue
		}
		if _, err := c.ds.Verify(r); err != nil {
			return fmt.Errorf("group %q: the server's log does not continue what this client saw before: %w", group, err)
		}
		evs, removed := c.handle(g, group, r)
		if err := c.saveGroup(ctx, g); err != nil {
			return fmt.Errorf("saving the group: %w", err)
		}
		gm.Cursor, gm.ChainHash = r.Seq, r.ChainHash
		c.appendEvents(group, evs...)
		if err := c.saveMeta(); err != nil {
			return err
		}
		if removed {
			gm.Removed = true
			return c.saveMeta()
		}
	}
	return nil
}

// handle processes one record and describes what happened.
func (c *Client) handle(g *mls.Group, group string, r *v1.Record) (evs []Event, removed bool) {
	at := time.UnixMilli(r.TimeUnixMs)
	ev := func(kind EventKind, from, text string) Event {
		return Event{Group: group, Seq: r.Seq, Epoch: g.Epoch(), Time: at, Kind: kind, From: from, Text: text}
	}
	switch uint8(r.Kind) {
	case chain.KindWelcome:
		return nil, false // for new members; this client is in already
	case chain.KindApplication, chain.KindProposal, chain.KindCommit:
	default:
		return []Event{ev(EventError, r.Sender, fmt.Sprintf("record %d has unknown kind %d", r.Seq, r.Kind))}, false
	}
	if r.Sender == c.id.Name {
		// Own messages and commits are applied when sent; a member cannot
		// decrypt its own PrivateMessages (their keys are deleted on use,
		// RFC 9420, Section 9.2). The exception: an own commit the server
		// accepted while this client died before merging it.
		if uint8(r.Kind) == chain.KindCommit && g.HasPendingCommit() && r.Epoch == g.Epoch() {
			if err := g.MergePendingCommit(); err != nil {
				return []Event{ev(EventError, r.Sender, fmt.Sprintf("could not merge own commit in record %d: %v", r.Seq, err))}, false
			}
			return []Event{ev(EventUpdated, r.Sender, fmt.Sprintf("your commit was accepted (epoch %d)", g.Epoch()))}, false
		}
		return nil, false
	}
	if uint8(r.Kind) == chain.KindCommit && g.HasPendingCommit() {
		// Another member's commit won this epoch (RFC 9750, Section 5.2.1).
		g.DiscardPendingCommit()
	}
	res, err := g.Process(r.Body)
	if err != nil {
		return []Event{ev(EventError, r.Sender, fmt.Sprintf("could not process record %d from %s: %v", r.Seq, r.Sender, err))}, false
	}
	// The server's name for the sender is only a fallback: a member's
	// name comes from its credential, authenticated by the signature.
	from := senderName(g, res.Sender, r.Sender)
	switch {
	case res.Application != nil:
		return []Event{ev(EventMessage, from, string(res.Application))}, false
	case res.Proposal != nil:
		p := res.Proposal
		if p.Type == mls.ProposalRemove && res.Sender.Type == mls.SenderMember && p.Removed == res.Sender.Leaf {
			return []Event{ev(EventLeave, from, from+" asked to leave")}, false
		}
		return []Event{ev(EventUpdated, from, fmt.Sprintf("%s proposed a change (type %d)", from, p.Type))}, false
	case res.Commit != nil:
		evs, removed, err := applyCommit(g, res.Commit, from, func(kind EventKind, from, text string, members []string) Event {
			e := ev(kind, from, text)
			e.Epoch, e.Members = g.Epoch(), members
			return e
		})
		if err != nil {
			return []Event{ev(EventError, from, fmt.Sprintf("could not apply the commit in record %d: %v", r.Seq, err))}, false
		}
		return evs, removed
	}
	return nil, false
}

// resolvePending settles a commit an earlier run saved but did not see
// through (it died before sending, while the server held the request, or
// before it merged the server's acceptance). By now the log has been read
// to its head: had the server accepted the commit, it would have been found
// there and merged (handle); had another member's commit won the epoch,
// the pending one would have been discarded for it. A commit still pending
// was not accepted, so it is discarded and the epoch stays as it is
// (RFC 9420, Section 14: a commit takes effect only once the delivery
// service has sequenced it; RFC 9750, Section 5.2.1).
func (c *Client) resolvePending(ctx context.Context, group string) error {
	g, _, err := c.group(ctx, group)
	if err != nil || !g.HasPendingCommit() {
		return err
	}
	g.DiscardPendingCommit()
	if err := c.saveGroup(ctx, g); err != nil {
		return err
	}
	c.appendEvents(group, Event{Group: group, Epoch: g.Epoch(), Time: c.now(), Kind: EventUpdated,
		Text: fmt.Sprintf("a commit of yours from an earlier run never reached the group and was dropped (epoch %d)", g.Epoch())})
	return c.saveMeta()
}

// commitLeaveRequests commits pending Remove proposals members made for
// themselves (RFC 9420, Section 12.1.3), so a member who left is out once
// anyone reads.
func (c *Client) commitLeaveRequests(ctx context.Context, group string) error {
	want := func(g *mls.Group) bool {
		for _, p := range g.PendingProposals() {
			if p.Type == mls.ProposalRemove && p.Sender.Type == mls.SenderMember && p.Removed == p.Sender.Leaf && p.Removed != g.LeafIndex() {
				return true
			}
		}
		return false
	}
	g, _, err := c.group(ctx, group)
	if err != nil || !want(g) {
		return err
	}
	return c.commitRetry(ctx, group, func(g *mls.Group) (*mls.CommitOptions, bool, error) {
		return &mls.CommitOptions{}, want(g), nil
	})
}
