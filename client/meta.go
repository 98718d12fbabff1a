package client

import (
	"context"
	"encoding/hex"
	"sort"
	"time"
)

// metaFile is the CLI's own bookkeeping, apart from MLS state: for each
// group, how far this client has read the delivery service's log (and the
// chain value there, so the log's hash chain is checked across restarts),
// and the inbox of decrypted messages and events not yet shown.
const metaFile = "chat.json"

type meta struct {
	Groups map[string]*groupMeta `json:"groups"` // by hex group id
	// Declined holds invitations that were skipped (unusable Welcome) or
	// ignored, by hex group id.
	Declined map[string]*declined `json:"declined,omitempty"`
	// Notices are events outside any group this client is in (a skipped
	// invitation), shown once like the inbox.
	Notices []Event `json:"notices,omitempty"`

	existed bool // the file was there when loaded
}

// declined is an invitation this client did not take: only records after
// Seq are looked at again, and none when Ignored.
type declined struct {
	ID      []byte `json:"id"`
	Seq     uint64 `json:"seq"`
	Reason  string `json:"reason,omitempty"`
	Ignored bool   `json:"ignored,omitempty"`
}

func (m *meta) declinedGroup(id []byte) *declined { return m.Declined[hex.EncodeToString(id)] }

func (m *meta) decline(id []byte, seq uint64, reason string) *declined {
	if m.Declined == nil {
		m.Declined = map[string]*declined{}
	}
	d := m.Declined[hex.EncodeToString(id)]
	if d == nil {
		d = &declined{ID: id}
		m.Declined[hex.EncodeToString(id)] = d
	}
	d.Seq, d.Reason = max(d.Seq, seq), reason
	return d
}

func (m *meta) undecline(id []byte) { delete(m.Declined, hex.EncodeToString(id)) }

type groupMeta struct {
	ID []byte `json:"id"`
	// Cursor is the last log record processed; ChainHash is its chain value.
	Cursor    uint64 `json:"cursor"`
	ChainHash []byte `json:"chain_hash,omitempty"`
	// Offline groups are driven by files, not by a server.
	Offline bool `json:"offline,omitempty"`
	// Removed: a commit removed this client; the group is kept read-only.
	Removed bool `json:"removed,omitempty"`
	// Undelivered: the server refused to deliver the log (noticed once).
	Undelivered bool `json:"undelivered,omitempty"`
	// Inbox holds events; Shown counts those already printed.
	Inbox []Event `json:"inbox,omitempty"`
	Shown int     `json:"shown"`
}

func loadMeta(h home) (*meta, error) {
	m := &meta{}
	found, err := loadJSON(context.Background(), h, metaFile, m)
	if err != nil {
		return nil, err
	}
	if m.Groups == nil {
		m.Groups = map[string]*groupMeta{}
	}
	m.existed = found
	return m, nil
}

func (m *meta) save(h home) error {
	return saveJSON(context.Background(), h, metaFile, m, false)
}

func (m *meta) group(id []byte) *groupMeta { return m.Groups[hex.EncodeToString(id)] }

func (m *meta) add(id []byte) *groupMeta {
	gm := &groupMeta{ID: id}
	m.Groups[hex.EncodeToString(id)] = gm
	return gm
}

func (m *meta) remove(id []byte) { delete(m.Groups, hex.EncodeToString(id)) }

// sorted returns the groups in name order.
func (m *meta) sorted() []*groupMeta {
	out := make([]*groupMeta, 0, len(m.Groups))
	for _, g := range m.Groups {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return string(out[i].ID) < string(out[j].ID) })
	return out
}

// EventKind classifies an Event.
type EventKind string

// Event kinds.
const (
	EventMessage EventKind = "message" // an application message
	EventJoined  EventKind = "joined"  // this client joined from a Welcome (an invitation)
	EventAdded   EventKind = "added"   // a commit added members (Members)
	EventRemoved EventKind = "removed" // a commit removed other members (Members)
	// EventRemovedSelf: a commit removed this client; the group is kept,
	// read-only.
	EventRemovedSelf EventKind = "removed-self"
	// EventJoinedExternally: a new member joined by external commit
	// (RFC 9420, Section 12.4.3.2), named in Members when known.
	EventJoinedExternally EventKind = "joined-externally"
	EventUpdated          EventKind = "updated" // a commit refreshed keys (new epoch)
	EventLeave            EventKind = "leave"   // a member asked to leave (Remove proposal)
	EventError            EventKind = "error"   // a record that could not be processed
	EventSkipped          EventKind = "skipped" // an invitation that could not be used
	EventStatus           EventKind = "status"  // Follow's connection: StatusReady, StatusLost..., StatusReconnected
)

// Event is one thing that happened in a group, as this client saw it.
type Event struct {
	Group string    `json:"group"`
	Seq   uint64    `json:"seq,omitempty"`
	Epoch uint64    `json:"epoch"`
	Time  time.Time `json:"time"`
	Kind  EventKind `json:"kind"`
	// From is who did it: for a member, the identity in its credential,
	// authenticated by MLS.
	From string `json:"from,omitempty"`
	// Text describes the event for people; for EventMessage it is the
	// message. It is chosen by others: render it safely.
	Text string `json:"text"`
	// Members names the members an EventAdded, EventRemoved or
	// EventJoinedExternally is about.
	Members []string `json:"members,omitempty"`
	// Own marks what this client did itself; Read does not repeat it.
	Own bool `json:"own,omitempty"`
}
