package client

import (
	"fmt"

	"github.com/mlskit/mlskit/mls"
)

// senderName names the sender of a processed message for events: the
// identity in the member's credential, which the MLS signature
// authenticates (RFC 9420, Section 6.1). fallback names senders outside the
// tree (an external sender, or a new member whose external commit names it
// only once merged).
func senderName(g *mls.Group, s mls.Sender, fallback string) string {
	if s.Type == mls.SenderMember {
		if m, ok := g.Member(s.Leaf); ok {
			return NameOf(m.Credential)
		}
	}
	return fallback
}

// applyCommit merges a staged commit another member (or a new member, by
// external commit) made, and describes it as events: who was added, who
// joined from outside, who was removed, or a key update. removed reports
// that the commit removed this client (RFC 9420, Section 12.4.2). mk makes
// an event with the group, time and log position filled in.
func applyCommit(g *mls.Group, sc *mls.StagedCommit, from string, mk func(kind EventKind, from, text string, members []string) Event) (evs []Event, removed bool, err error) {
	var added, gone []string
	for _, a := range sc.Added {
		added = append(added, NameOf(a.KeyPackage.Credential()))
	}
	for _, rm := range sc.Removed {
		gone = append(gone, NameOf(rm.Credential))
	}
	// An external commit's new member has no leaf until it is merged: it
	// takes a blank leaf or one at the end (RFC 9420, Section 12.4.3.2), so
	// it is the member that was not there before, or that replaced a
	// removed one (a resync removes the old leaf).
	before := map[mls.LeafIndex]string{}
	if sc.External {
		for _, m := range g.Members() {
			before[m.Index] = NameOf(m.Credential)
		}
		for _, rm := range sc.Removed {
			delete(before, rm.Leaf)
		}
	}
	if err := g.MergeStagedCommit(sc); err != nil {
		return nil, false, err
	}
	if sc.SelfRemoved {
		return []Event{mk(EventRemovedSelf, from, fmt.Sprintf("%s removed you from the group", from), nil)}, true, nil
	}
	var joined []string
	if sc.External {
		for _, m := range g.Members() {
			if _, ok := before[m.Index]; !ok {
				joined = append(joined, NameOf(m.Credential))
			}
		}
		if len(joined) == 1 {
			from = joined[0] // the committer is the joiner
		}
	}
	switch {
	case len(joined) > 0 && len(gone) == 1 && gone[0] == joined[0]:
		evs = append(evs, mk(EventJoinedExternally, from, fmt.Sprintf("%s rejoined the group from outside (external commit replacing their old leaf, epoch %d)", joinNames(joined), g.Epoch()), joined))
		gone = nil
	case len(joined) > 0:
		evs = append(evs, mk(EventJoinedExternally, from, fmt.Sprintf("%s joined the group from outside (external commit, epoch %d)", joinNames(joined), g.Epoch()), joined))
	case sc.External:
		evs = append(evs, mk(EventJoinedExternally, from, fmt.Sprintf("a new member joined the group from outside (external commit, epoch %d)", g.Epoch()), nil))
	}
	if len(added) > 0 {
		evs = append(evs, mk(EventAdded, from, fmt.Sprintf("%s added %s (epoch %d)", from, joinNames(added), g.Epoch()), added))
	}
	if len(gone) > 0 {
		evs = append(evs, mk(EventRemoved, from, fmt.Sprintf("%s removed %s (epoch %d)", from, joinNames(gone), g.Epoch()), gone))
	}
	if len(evs) == 0 {
		evs = append(evs, mk(EventUpdated, from, fmt.Sprintf("%s updated their keys (epoch %d)", from, g.Epoch()), nil))
	}
	return evs, false, nil
}
