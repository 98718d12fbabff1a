package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"

	v1 "github.com/mlskit/mlskit/ds/api/mlsdv1"
	dsclient "github.com/mlskit/mlskit/ds/client"
	"github.com/mlskit/mlskit/mls"
)

// maxCommitAttempts bounds how often a commit is retried after losing its
// epoch to another member's commit.
const maxCommitAttempts = 8

// newKeyPackages makes n KeyPackages (and a last-resort one if lastResort)
// and keeps their private keys in the store.
func (c *Client) newKeyPackages(ctx context.Context, n int, lastResort bool) (kps [][]byte, last []byte, err error) {
	if err := c.needCertificate(); err != nil {
		return nil, nil, err
	}
	var bundles []*mls.KeyPackageBundle
	for i := 0; i < n+1; i++ {
		lr := i == n
		if lr && !lastResort {
			break
		}
		b, err := mls.NewKeyPackage(c.cfg, c.id.Credential(), c.sig, &mls.KeyPackageOptions{LastResort: lr})
		if err != nil {
			return nil, nil, fmt.Errorf("creating a KeyPackage: %w", err)
		}
		bundles = append(bundles, b)
		if lr {
			last = b.KeyPackage.Bytes()
		} else {
			kps = append(kps, b.KeyPackage.Bytes())
		}
	}
	if err := c.store.PutKeyPackages(ctx, bundles); err != nil {
		return nil, nil, fmt.Errorf("saving KeyPackage keys: %w", err)
	}
	return kps, last, nil
}

// Publish tops up this client's KeyPackages on the server: at least
// targetKeyPackages one-time KeyPackages and an unused last-resort one
// (RFC 9420, Section 16.8: one-time KeyPackages are not reused; the
// last-resort one keeps the client reachable when they run out). It returns
// how many it uploaded.
func (c *Client) Publish(ctx context.Context) (int, error) {
	if err := c.connect(ctx); err != nil {
		return 0, err
	}
	return c.replenish(ctx, true)
}

// replenish uploads KeyPackages when the stock is below minKeyPackages (or
// below the target when force), and a new last-resort KeyPackage when there
// is none or it was handed out.
func (c *Client) replenish(ctx context.Context, force bool) (int, error) {
	stock, err := c.ds.KeyPackageStock(ctx)
	if err != nil {
		return 0, c.serverError("reading the KeyPackage stock", err)
	}
	var have uint32
	needLast := true
	for _, s := range stock {
		if s.CipherSuite == uint32(c.id.Suite) {
			have = s.Count
			needLast = !s.HasLastResort || s.LastResortUsed
		}
	}
	n := 0
	if int(have) < minKeyPackages || force && int(have) < targetKeyPackages {
		n = targetKeyPackages - int(have)
	}
	if n == 0 && !needLast {
		return 0, nil
	}
	kps, last, err := c.newKeyPackages(ctx, n, needLast)
	if err != nil {
		return 0, err
	}
	if _, err := c.ds.UploadKeyPackages(ctx, kps, last); err != nil {
		return 0, c.serverError("uploading KeyPackages", err)
	}
	if last != nil {
		n++
	}
	return n, nil
}

// CreateGroup creates a group named name with this client as its only
// member and registers it with the delivery service. The name is the MLS
// group_id, so it must be unique on the server.
func (c *Client) CreateGroup(ctx context.Context, name string) error {
	if err := checkGroupName(name); err != nil {
		return err
	}
	if c.meta.group([]byte(name)) != nil {
		return userErr(ErrUsage, "you already have a group named %q", name)
	}
	if err := c.connect(ctx); err != nil {
		return err
	}
	g, err := mls.NewGroup(c.cfg, []byte(name), c.id.Credential(), c.sig, nil)
	if err != nil {
		return fmt.Errorf("creating the group: %w", err)
	}
	gi, err := g.GroupInfo(true, true)
	if err != nil {
		return err
	}
	if err := c.ds.CreateGroup(ctx, []byte(name), gi); err != nil {
		if connect.CodeOf(err) == connect.CodeAlreadyExists {
			return userErr(ErrUsage, "a group named %q already exists on the server: choose another name", name)
		}
		return c.serverError("creating the group", err)
	}
	if err := c.saveGroup(ctx, g); err != nil {
		return fmt.Errorf("saving the group: %w", err)
	}
	gm := c.meta.add([]byte(name))
	gm.Cursor, gm.ChainHash, _ = c.ds.ChainPosition([]byte(name))
	return c.saveMeta()
}

func checkGroupName(name string) error {
	if name == "" || len(name) > 255 {
		return userErr(ErrUsage, "a group name must be 1 to 255 bytes")
	}
	return nil
}

// Invite adds users to the group: it claims one KeyPackage of each from the
// server, commits Add proposals for them, and sends the commit, the Welcome
// and the new GroupInfo as one bundle. The group enters the new epoch only
// once the server accepted the bundle.
func (c *Client) Invite(ctx context.Context, group string, users ...string) error {
	if len(users) == 0 {
		return userErr(ErrUsage, "name at least one user to invite")
	}
	g, _, err := c.group(ctx, group)
	if err != nil {
		return err
	}
	for _, u := range users {
		if u == c.id.Name {
			return userErr(ErrUsage, "you are already in group %q", group)
		}
		if slices.Contains(memberNames(g), u) {
			return userErr(ErrUsage, "%s is already a member of group %q", u, group)
		}
	}
	if err := c.connect(ctx); err != nil {
		return err
	}
	if err := c.sync(ctx, group); err != nil {
		return err
	}
	claimed, err := c.ds.ClaimKeyPackages(ctx, uint16(c.id.Suite), users...)
	if err != nil {
		return c.serverError("claiming KeyPackages", err)
	}
	if len(claimed.Missing) > 0 {
		return userErr(ErrUnknownUser, "the server has no KeyPackage for %s: unknown user, or they never ran \"mls init\" and \"mls publish\" against %s", joinNames(claimed.Missing), c.id.Server)
	}
	var props []*mls.Proposal
	for _, ck := range claimed.KeyPackages {
		kp, err := mls.ParseKeyPackage(ck.KeyPackage)
		if err != nil {
			return fmt.Errorf("the KeyPackage the server gave for %s is invalid: %w", ck.ClientId, err)
		}
		if err := c.checkInvitee(ck.ClientId, kp); err != nil {
			return err
		}
		if got := NameOf(kp.Credential()); got != ck.ClientId {
			return fmt.Errorf("the server gave a KeyPackage of %q when asked for %q", got, ck.ClientId)
		}
		props = append(props, mls.AddProposal(kp))
	}
	return c.commitRetry(ctx, group, func(g *mls.Group) (*mls.CommitOptions, bool, error) {
		for _, u := range users {
			if slices.Contains(memberNames(g), u) {
				return nil, false, nil // someone else added them meanwhile
			}
		}
		return &mls.CommitOptions{Proposals: props}, true, nil
	})
}

func joinNames(ns []string) string {
	return strings.Join(ns, ", ")
}

// Remove removes a member from the group by name.
func (c *Client) Remove(ctx context.Context, group, user string) error {
	if user == c.id.Name {
		return userErr(ErrUsage, "to remove yourself use \"mls leave\"")
	}
	if _, _, err := c.group(ctx, group); err != nil {
		return err
	}
	if err := c.connect(ctx); err != nil {
		return err
	}
	if err := c.sync(ctx, group); err != nil {
		return err
	}
	first := true
	return c.commitRetry(ctx, group, func(g *mls.Group) (*mls.CommitOptions, bool, error) {
		leaf, ok := leafOf(g, user)
		if !ok {
			if first {
				return nil, false, userErr(ErrNotMember, "%s is not a member of group %q", user, group)
			}
			return nil, false, nil // a concurrent commit removed them
		}
		first = false
		return &mls.CommitOptions{Proposals: []*mls.Proposal{mls.RemoveProposal(leaf)}}, true, nil
	})
}

func leafOf(g *mls.Group, user string) (mls.LeafIndex, bool) {
	for _, m := range g.Members() {
		if NameOf(m.Credential) == user {
			return m.Index, true
		}
	}
	return 0, false
}

// SelfUpdate commits a fresh UpdatePath for this member (an empty Commit,
// RFC 9420, Section 12.4): new leaf and path keys, for post-compromise
// security.
func (c *Client) SelfUpdate(ctx context.Context, group string) error {
	if _, _, err := c.group(ctx, group); err != nil {
		return err
	}
	if err := c.connect(ctx); err != nil {
		return err
	}
	if err := c.sync(ctx, group); err != nil {
		return err
	}
	start := uint64(0)
	return c.commitRetry(ctx, group, func(g *mls.Group) (*mls.CommitOptions, bool, error) {
		if start == 0 {
			start = g.Epoch()
		}
		return &mls.CommitOptions{}, true, nil
	})
}

// Leave asks the group to remove this client: a Remove proposal for its own
// leaf, which the next member to read the group commits (RFC 9420, Section
// 12.1.3; a member cannot commit its own removal). The group is then
// forgotten here.
//
// For a group this client was invited to but did not join (the invitation
// could not be used), Leave is Ignore.
func (c *Client) Leave(ctx context.Context, group string) error {
	if c.meta.group([]byte(group)) == nil && c.meta.declinedGroup([]byte(group)) != nil {
		return c.Ignore(group)
	}
	_, _, err := c.group(ctx, group)
	if err != nil && !errors.Is(err, ErrRemoved) && !errors.Is(err, ErrNotDelivered) {
		return err
	}
	if err == nil {
		if err := c.connect(ctx); err != nil {
			return err
		}
		if err := c.sync(ctx, group); err != nil && !errors.Is(err, ErrRemoved) {
			return err
		}
		if gm := c.meta.group([]byte(group)); gm != nil && !gm.Removed {
			g, _, err := c.group(ctx, group)
			if err != nil {
				return err
			}
			if len(g.Members()) > 1 {
				msg, err := g.ProposeRemove(g.LeafIndex())
				if err != nil {
					return fmt.Errorf("proposing to leave: %w", err)
				}
				if _, err := c.ds.Send(ctx, msg); err != nil {
					return c.serverError("sending the request to leave", err)
				}
			}
		}
	}
	delete(c.groups, group)
	if err := c.store.DeleteGroup(ctx, []byte(group)); err != nil {
		return err
	}
	// Only a later Welcome (a new invitation) brings the group back.
	if gm := c.meta.group([]byte(group)); gm != nil {
		c.meta.decline([]byte(group), gm.Cursor, "left")
	}
	c.meta.remove([]byte(group))
	return c.saveMeta()
}

// Ignore stops looking at invitations to a group this client has not
// joined: a group it was added to with a Welcome it could not use, or one
// it does not want. The server may keep listing the group; this client no
// longer reads its log.
func (c *Client) Ignore(group string) error {
	if gm := c.meta.group([]byte(group)); gm != nil && !gm.Removed {
		return userErr(ErrUsage, "you are a member of group %q: use Leave", group)
	}
	d := c.meta.decline([]byte(group), 0, "ignored")
	d.Ignored = true
	return c.saveMeta()
}

// commitRetry builds a commit with build, sends it as one bundle, and
// merges it once the server accepts it. When another member's commit won
// the epoch, it discards its own, processes the winner and builds again
// (build returns false when there is nothing left to do).
func (c *Client) commitRetry(ctx context.Context, group string, build func(*mls.Group) (*mls.CommitOptions, bool, error)) error {
	for attempt := 0; ; attempt++ {
		g, _, err := c.group(ctx, group)
		if err != nil {
			return err
		}
		opts, ok, err := build(g)
		if err != nil || !ok {
			return err
		}
		err = c.sendCommit(ctx, g, opts)
		if err == nil {
			return nil
		}
		stale, isStale := dsclient.StaleEpoch(err)
		deferred, isDeferred := dsclient.Deferred(err)
		if !isStale && !isDeferred || attempt+1 >= maxCommitAttempts {
			if isStale || isDeferred {
				return fmt.Errorf("group %q: gave up after %d commits lost to other members' commits", group, attempt+1)
			}
			return c.serverError("sending the commit", err)
		}
		if isDeferred {
			d := time.Duration(deferred.RetryAfterMs) * time.Millisecond
			select {
			case <-time.After(min(max(d, 10*time.Millisecond), 5*time.Second)):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		_ = stale
		// Lost the race (RFC 9750, Section 5.2.1): fetch and process the
		// winner, then try again on the new epoch.
		if err := c.sync(ctx, group); err != nil {
			return err
		}
	}
}

// sendCommit commits opts (plus every cached proposal) and sends the bundle.
// The membership the server tracks comes from the staged commit itself, so
// it covers proposals committed by reference too.
func (c *Client) sendCommit(ctx context.Context, g *mls.Group, opts *mls.CommitOptions) error {
	// The server keeps each epoch's GroupInfo, with the tree, for
	// external joins.
	o := mls.CommitOptions{}
	if opts != nil {
		o = *opts
	}
	o.GroupInfo = true
	res, err := g.Commit(&o)
	if err != nil {
		return fmt.Errorf("creating the commit: %w", err)
	}
	// Save the pending commit before it leaves: if this process dies after
	// the server accepted it, the next run finds it in the log and merges
	// it (see handle).
	if err := c.saveGroup(ctx, g); err != nil {
		return err
	}
	req := &v1.SendCommitRequest{Commit: res.Commit, GroupInfo: res.GroupInfo}
	var added []string
	for _, a := range res.Staged.Added {
		added = append(added, NameOf(a.KeyPackage.Credential()))
	}
	for _, r := range res.Staged.Removed {
		req.RemoveMembers = append(req.RemoveMembers, NameOf(r.Credential))
	}
	if len(added) > 0 {
		req.AddMembers = added
		req.Welcomes = []*v1.Welcome{{Welcome: res.Welcome, Recipients: added}}
	}
	resp, err := c.ds.Commit(ctx, req)
	if err != nil {
		g.DiscardPendingCommit()
		if serr := c.saveGroup(ctx, g); serr != nil {
			return serr
		}
		return err
	}
	if err := g.MergePendingCommit(); err != nil {
		return fmt.Errorf("entering the new epoch: %w", err)
	}
	if err := c.saveGroup(ctx, g); err != nil {
		return fmt.Errorf("saving the group: %w", err)
	}
	name := string(g.GroupID())
	ev := Event{Group: name, Seq: resp.Seq, Epoch: g.Epoch(), Time: c.now(), Kind: EventUpdated, Own: true}
	switch {
	case len(added) > 0:
		ev.Kind, ev.Text, ev.Members = EventAdded, fmt.Sprintf("you added %s (epoch %d)", joinNames(added), g.Epoch()), added
	case len(req.RemoveMembers) > 0:
		ev.Kind, ev.Text, ev.Members = EventRemoved, fmt.Sprintf("you removed %s (epoch %d)", joinNames(req.RemoveMembers), g.Epoch()), req.RemoveMembers
	default:
		ev.Text = fmt.Sprintf("you updated your keys (epoch %d)", g.Epoch())
	}
	c.appendEvents(name, ev)
	return c.saveMeta()
}

// Send encrypts text for the group and sends it. It reads the group first,
// so the message goes out in the newest epoch this client can reach.
func (c *Client) Send(ctx context.Context, group, text string) error {
	if _, _, err := c.group(ctx, group); err != nil {
		return err
	}
	if err := c.connect(ctx); err != nil {
		return err
	}
	if err := c.sync(ctx, group); err != nil {
		return err
	}
	if err := c.maybeUpdate(ctx, group); err != nil {
		return err
	}
	g, _, err := c.group(ctx, group)
	if err != nil {
		return err
	}
	msg, err := g.Encrypt([]byte(text), nil)
	if err != nil {
		return fmt.Errorf("encrypting: %w", err)
	}
	// The sender's ratchet moved: record it before the message leaves, so
	// a crash cannot make this client reuse the key (RFC 9420, Section 9.2).
	if err := c.saveGroup(ctx, g); err != nil {
		return fmt.Errorf("saving the group: %w", err)
	}
	resp, err := c.ds.Send(ctx, msg)
	if err != nil {
		return c.serverError("sending the message", err)
	}
	c.appendEvents(group, Event{Group: group, Seq: resp.Seq, Epoch: g.Epoch(), Time: c.now(), Kind: EventMessage, From: c.id.Name, Text: text, Own: true})
	return c.saveMeta()
}

// maybeUpdate applies the key-update policy: when this member's leaf is due
// for a refresh, it commits an UpdatePath first.
func (c *Client) maybeUpdate(ctx context.Context, group string) error {
	g, _, err := c.group(ctx, group)
	if err != nil {
		return err
	}
	if !updateDue(g) {
		return nil
	}
	return c.commitRetry(ctx, group, func(g *mls.Group) (*mls.CommitOptions, bool, error) {
		return &mls.CommitOptions{}, updateDue(g), nil
	})
}

func (c *Client) appendEvents(group string, evs ...Event) {
	gm := c.meta.group([]byte(group))
	if gm == nil {
		return
	}
	gm.Inbox = append(gm.Inbox, evs...)
}
