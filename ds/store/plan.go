package store

import (
	"fmt"
	"time"
)

// GroupHead is the locked state an engine reads before an Append.
type GroupHead struct {
	Group
	PriorityClient string
	PriorityEpoch  uint64
	PriorityUntil  time.Time
}

// CheckEpoch applies Append's epoch rule (RFC 9750, Section 5.2.1): a commit
// must name the current epoch; other messages the current one or up to
// Window before it. winner looks up the commit that ended an epoch, to tell
// the loser which commit won.
func CheckEpoch(h *GroupHead, a *Append, winner func(epoch uint64) (Record, error)) error {
	ok := a.Epoch == h.Epoch
	if !a.Commit {
		ok = a.Epoch <= h.Epoch && h.Epoch-a.Epoch <= a.Window
	}
	if ok {
		return nil
	}
	e := &StaleEpochError{Epoch: a.Epoch, CurrentEpoch: h.Epoch}
	if a.Epoch < h.Epoch {
		rec, err := winner(a.Epoch)
		if err != nil {
			return fmt.Errorf("store: looking up the winner of epoch %d: %w", a.Epoch, err)
		}
		e.WinningSeq, e.WinningHash = rec.Seq, rec.ChainHash
	}
	return e
}

// CheckPriority applies commit fairness: while a starved member holds
// priority for the current epoch, other members' commits are deferred.
func CheckPriority(h *GroupHead, a *Append) error {
	if !a.Commit || h.PriorityClient == "" || h.PriorityClient == a.Sender ||
		h.PriorityEpoch != h.Epoch || !a.Now.Before(h.PriorityUntil) {
		return nil
	}
	return &DeferredError{Until: h.PriorityUntil}
}

// BuildRecords numbers and chains a.Entries after the head.
func BuildRecords(h *GroupHead, a *Append) []Record {
	out := make([]Record, len(a.Entries))
	prev, seq := h.HeadHash, h.HeadSeq
	for i, e := range a.Entries {
		seq++
		r := Record{
			GroupID:    a.GroupID,
			Seq:        seq,
			Epoch:      a.Epoch,
			Kind:       e.Kind,
			WireFormat: e.WireFormat,
			Sender:     a.Sender,
			Recipients: e.Recipients,
			BodyHash:   BodyHash(e.Body),
			PrevHash:   prev,
			Body:       e.Body,
			Time:       a.Now,
		}
		r.ChainHash = ChainHash(prev, &r)
		prev = r.ChainHash
		out[i] = r
	}
	return out
}

// ValidateAppend rejects requests no engine should see.
func ValidateAppend(a *Append) error {
	if len(a.GroupID) == 0 || len(a.GroupID) > MaxGroupIDLen || len(a.Entries) == 0 {
		return fmt.Errorf("store: invalid append")
	}
	if !a.Commit && (len(a.Entries) != 1 || len(a.AddMembers)+len(a.RemoveMembers)+len(a.UseClaims) > 0 || a.GroupInfo != nil || a.ExternalJoin) {
		return fmt.Errorf("store: only commits carry welcomes, membership changes and GroupInfo")
	}
	if len(a.Entries) == 1 {
		return nil // nothing to be a duplicate of (most appends: a message)
	}
	seen := map[string]bool{}
	for _, e := range a.Entries {
		k := string(BodyHash(e.Body))
		if seen[k] {
			return &DuplicateError{}
		}
		seen[k] = true
	}
	return nil
}
