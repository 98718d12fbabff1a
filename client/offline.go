package client

import (
	"context"
	"fmt"

	"github.com/mlskit/mlskit/mls"
)

// Offline operations exchange MLS objects as files instead of through a
// delivery service, for scripting and for testing against other
// implementations. Ordering is the caller's job: every member must process
// the commits of a group in the same order (RFC 9420, Section 14), and a
// commit made here is merged at once, since there is no server whose
// acceptance to wait for.

// NewKeyPackageFile creates a KeyPackage, keeps its private keys, and
// returns it as an MLSMessage (RFC 9420, Section 10).
func (c *Client) NewKeyPackageFile(ctx context.Context) ([]byte, error) {
	kps, _, err := c.newKeyPackages(ctx, 1, false)
	if err != nil {
		return nil, err
	}
	return kps[0], nil
}

// CreateOfflineGroup creates a group driven by files.
func (c *Client) CreateOfflineGroup(ctx context.Context, name string) error {
	if err := checkGroupName(name); err != nil {
		return err
	}
	if c.meta.group([]byte(name)) != nil {
		return userErr(ErrUsage, "you already have a group named %q", name)
	}
	g, err := mls.NewGroup(c.cfg, []byte(name), c.id.Credential(), c.sig, nil)
	if err != nil {
		return fmt.Errorf("creating the group: %w", err)
	}
	if err := c.saveGroup(ctx, g); err != nil {
		return err
	}
	c.meta.add([]byte(name)).Offline = true
	return c.saveMeta()
}

// OfflineCommit is what CommitFiles produces.
type OfflineCommit struct {
	Commit    []byte // MLSMessage for the existing members
	Welcome   []byte // MLSMessage for the added members; nil if none
	GroupInfo []byte
	Epoch     uint64
}

// CommitFilesOptions says what CommitFiles commits.
type CommitFilesOptions struct {
	// KeyPackages to add, as MLSMessages.
	KeyPackages [][]byte
	// Remove names members to remove.
	Remove []string
	// PublicMessage sends the commit as a PublicMessage instead of a
	// PrivateMessage (RFC 9420, Section 6.2), for implementations that
	// accept only PublicMessage handshakes.
	PublicMessage bool
}

// CommitFiles commits Adds of o.KeyPackages, Removes of the members named
// in o.Remove, and an UpdatePath (RFC 9420, Section 12.4), and merges it.
// The GroupInfo it returns carries the ratchet tree and external_pub, so
// others can inspect messages of the new epoch and join by external commit
// (Section 12.4.3.2).
func (c *Client) CommitFiles(ctx context.Context, group string, o CommitFilesOptions) (*OfflineCommit, error) {
	keyPackages, remove := o.KeyPackages, o.Remove
	g, _, err := c.group(ctx, group)
	if err != nil {
		return nil, err
	}
	var props []*mls.Proposal
	for i, data := range keyPackages {
		kp, err := mls.ParseKeyPackage(data)
		if err != nil {
			return nil, userErr(ErrUsage, "KeyPackage file %d: %v", i+1, err)
		}
		props = append(props, mls.AddProposal(kp))
	}
	for _, name := range remove {
		leaf, ok := leafOf(g, name)
		if !ok {
			return nil, userErr(ErrNotMember, "%s is not a member of group %q", name, group)
		}
		if leaf == g.LeafIndex() {
			return nil, userErr(ErrUsage, "a member cannot commit its own removal (RFC 9420, Section 12.2)")
		}
		props = append(props, mls.RemoveProposal(leaf))
	}
	pub := o.PublicMessage
	res, err := g.Commit(&mls.CommitOptions{Proposals: props, PublicMessage: &pub, ExternalPub: true, GroupInfo: true})
	if err != nil {
		return nil, fmt.Errorf("creating the commit: %w", err)
	}
	if err := g.MergePendingCommit(); err != nil {
		return nil, err
	}
	if err := c.saveGroup(ctx, g); err != nil {
		return nil, err
	}
	return &OfflineCommit{Commit: res.Commit, Welcome: res.Welcome, GroupInfo: res.GroupInfo, Epoch: g.Epoch()}, nil
}

// JoinWelcomeFile joins the group a Welcome (MLSMessage) invites this
// client to and returns its name.
func (c *Client) JoinWelcomeFile(ctx context.Context, welcome []byte) (string, error) {
	g, err := c.joinChecked(ctx, welcome, nil)
	if err != nil {
		return "", err
	}
	name := string(g.GroupID())
	c.meta.add(g.GroupID()).Offline = true
	return name, c.saveMeta()
}

// EncryptFile encrypts text as an application message (a PrivateMessage,
// RFC 9420, Section 6.3).
func (c *Client) EncryptFile(ctx context.Context, group, text string) ([]byte, error) {
	g, _, err := c.group(ctx, group)
	if err != nil {
		return nil, err
	}
	msg, err := g.Encrypt([]byte(text), nil)
	if err != nil {
		return nil, fmt.Errorf("encrypting: %w", err)
	}
	return msg, c.saveGroup(ctx, g)
}

// ProcessFile processes one MLSMessage of the group: it decrypts an
// application message, caches a proposal, or validates and merges a
// commit, and describes what happened.
func (c *Client) ProcessFile(ctx context.Context, group string, msg []byte) ([]Event, error) {
	g, gm, err := c.group(ctx, group)
	if err != nil {
		return nil, err
	}
	// handle reports failures as events, for a log that must go on; here
	// the caller wants an error.
	res, err := g.Process(msg)
	if err != nil {
		return nil, fmt.Errorf("processing: %w", err)
	}
	from := senderName(g, res.Sender, senderTypeName(res.Sender))
	ev := Event{Group: group, Epoch: g.Epoch(), Time: c.now(), From: from}
	evs := []Event{ev}
	switch {
	case res.Application != nil:
		evs[0].Kind, evs[0].Text = EventMessage, string(res.Application)
	case res.Proposal != nil:
		evs[0].Kind, evs[0].Text = EventUpdated, fmt.Sprintf("%s proposed a change (type %d), cached for the next commit", from, res.Proposal.Type)
	case res.Commit != nil:
		var removed bool
		evs, removed, err = applyCommit(g, res.Commit, from, func(kind EventKind, from, text string, members []string) Event {
			e := ev
			e.Epoch, e.Kind, e.From, e.Text, e.Members = g.Epoch(), kind, from, text, members
			return e
		})
		if err != nil {
			return nil, err
		}
		gm.Removed = removed
	}
	if err := c.saveGroup(ctx, g); err != nil {
		return nil, err
	}
	return evs, c.saveMeta()
}

// senderTypeName names a sender outside the tree, for events.
func senderTypeName(s mls.Sender) string {
	switch s.Type {
	case mls.SenderExternal:
		return fmt.Sprintf("external sender %d", s.Leaf)
	case mls.SenderNewMemberCommit, mls.SenderNewMemberProposal:
		return "a new member"
	}
	return "?"
}
