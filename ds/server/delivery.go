package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"connectrpc.com/connect"

	v1 "github.com/mlskit/mlskit/ds/api/mlsdv1"
	"github.com/mlskit/mlskit/ds/dsproto"
	"github.com/mlskit/mlskit/ds/store"
)

const maxFetch = 1000

// Fetch returns records after a cursor, for clients that were offline.
func (s *Server) Fetch(ctx context.Context, req *connect.Request[v1.FetchRequest]) (*connect.Response[v1.FetchResponse], error) {
	sess, err := s.auth(ctx, req.Header())
	if err != nil {
		return nil, err
	}
	m := req.Msg
	if err := s.checkGroupID(m.GroupId); err != nil {
		return nil, err
	}
	mb, err := s.st.Membership(ctx, m.GroupId, sess.ClientID)
	if err != nil {
		return nil, s.storeError(err, false)
	}
	after := mb.AckedSeq
	if m.AfterSeq != nil {
		after = *m.AfterSeq
	}
	// A member reads from its own join on: nothing from before it was
	// added (issue 16, finding 7). The chain still verifies from there:
	// each record carries its predecessor's hash.
	after = max(after, mb.JoinedSeq)
	limit := int(m.Limit)
	if limit <= 0 || limit > maxFetch {
		limit = maxFetch
	}
	recs, err := s.records(ctx, m.GroupId, after, limit)
	if err != nil {
		return nil, s.storeError(err, false)
	}
	g, err := s.st.Head(ctx, m.GroupId)
	if err != nil {
		return nil, s.storeError(err, false)
	}
	if !mb.Active() {
		// A removed member gets the commit that removed it, then nothing.
		recs = upTo(recs, mb.LeftSeq)
		if g.HeadSeq > mb.LeftSeq {
			g.HeadSeq, g.HeadHash = mb.LeftSeq, nil
			if r, err := s.records(ctx, m.GroupId, mb.LeftSeq-1, 1); err == nil && len(r) == 1 {
				g.HeadHash = r[0].ChainHash
			}
		}
	}
	resp := &v1.FetchResponse{HeadSeq: g.HeadSeq, HeadHash: g.HeadHash}
	// Keep the answer well under the response size cap; the client fetches
	// again from the last record.
	budget := 4 * s.cfg.MaxMessageSize
	for i := range recs {
		p := dsproto.RecordToProto(&recs[i], sess.ClientID)
		budget -= len(p.Body) + 256
		if budget < 0 && i > 0 {
			break
		}
		resp.Records = append(resp.Records, p)
	}
	return connect.NewResponse(resp), nil
}

// removedAt checks, when recs hold a commit, whether the client was
// removed by one of them, and returns the commit's seq. Only commits change
// membership, so a batch without one needs no look-up.
func (s *Server) removedAt(ctx context.Context, groupID []byte, client string, recs []store.Record) (uint64, bool, error) {
	for i := range recs {
		if recs[i].Kind != store.KindCommit {
			continue
		}
		mb, err := s.st.Membership(ctx, groupID, client)
		switch {
		case errors.Is(err, store.ErrNotMember):
			return recs[0].Seq - 1, true, nil // gone altogether: nothing more
		case err != nil:
			return 0, false, err
		case mb.Active():
			return 0, false, nil
		}
		return mb.LeftSeq, true, nil
	}
	return 0, false, nil
}

// upTo drops the records after seq.
func upTo(recs []store.Record, seq uint64) []store.Record {
	for i := range recs {
		if recs[i].Seq > seq {
			return recs[:i]
		}
	}
	return recs
}

// Ack moves the client's cursor: what is acknowledged is not redelivered.
func (s *Server) Ack(ctx context.Context, req *connect.Request[v1.AckRequest]) (*connect.Response[v1.AckResponse], error) {
	sess, err := s.auth(ctx, req.Header())
	if err != nil {
		return nil, err
	}
	if err := s.checkGroupID(req.Msg.GroupId); err != nil {
		return nil, err
	}
	if err := s.st.Ack(ctx, req.Msg.GroupId, sess.ClientID, req.Msg.Seq); err != nil {
		return nil, s.storeError(err, false)
	}
	return connect.NewResponse(&v1.AckResponse{}), nil
}

// records reads from the cache of recent records, else the store.
func (s *Server) records(ctx context.Context, groupID []byte, after uint64, limit int) ([]store.Record, error) {
	if recs := s.cache.after(groupID, after, limit); recs != nil {
		return recs, nil
	}
	// Subscribers woken by one append all miss the cache at once (the
	// store notifies before the appender fills it): one query serves them.
	key := fmt.Sprintf("%x/%d/%d", groupID, after, limit)
	s.flightMu.Lock()
	if c, ok := s.flights[key]; ok {
		s.flightMu.Unlock()
		<-c.done
		return c.recs, c.err
	}
	c := &flight{done: make(chan struct{})}
	s.flights[key] = c
	s.flightMu.Unlock()
	s.metrics.inc("mlsd_store_reads_total")
	c.recs, c.err = s.st.Records(ctx, groupID, after, limit)
	if c.err == nil {
		s.cache.add(c.recs)
	}
	s.flightMu.Lock()
	delete(s.flights, key)
	s.flightMu.Unlock()
	close(c.done)
	return c.recs, c.err
}

type flight struct {
	done chan struct{}
	recs []store.Record
	err  error
}

const streamBatch = 256

// Subscribe streams every record of every group the client belongs to,
// starting after its acknowledged cursors, then live; and KeyPackage notices
// when its stock runs low or its last resort was used. A client that falls
// more than QueueDepth records behind live traffic, or whose stream does not
// accept a write within SendTimeout, is disconnected (ResourceExhausted) and
// catches up with Fetch.
func (s *Server) Subscribe(ctx context.Context, req *connect.Request[v1.SubscribeRequest], stream *connect.ServerStream[v1.SubscribeResponse]) error {
	sess, err := s.auth(ctx, req.Header())
	if err != nil {
		return err
	}
	rc, _ := ctx.Value(rcKey{}).(*http.ResponseController)
	shared := binaryCodec(req.Header().Get("Content-Type")) // fan-out: one encoding per record (fanout.go)
	sub := s.hub.add(sess.ClientID)
	defer s.hub.remove(sub)
	// Send the response headers now, so the client's call returns before
	// the first event.
	if err := stream.Send(nil); err != nil {
		return err
	}
	delivered := map[string]uint64{}
	left := map[string]uint64{} // removed: deliver up to their removal only
	var lastNotice *v1.KeyPackageNotice

	send := func(resp *v1.SubscribeResponse) error {
		if rc != nil {
			rc.SetWriteDeadline(time.Now().Add(s.cfg.SendTimeout))
		}
		start := time.Now()
		err := stream.Send(resp)
		if rc != nil {
			rc.SetWriteDeadline(time.Time{})
		}
		if err != nil && time.Since(start) >= s.cfg.SendTimeout {
			// The write deadline reset the stream: the client stopped
			// reading.
			s.metrics.inc("mlsd_slow_consumers_total")
			s.log.Info("slow consumer disconnected", "client", sess.ClientID, "reason", "write timeout")
		}
		return err
	}
	refresh := func() error {
		ms, err := s.st.Memberships(ctx, sess.ClientID)
		if err != nil {
			return s.storeError(err, false)
		}
		keep := map[string]uint64{}
		clear(left)
		for _, m := range ms {
			k := string(m.GroupID)
			if d, ok := delivered[k]; ok && d > m.AckedSeq {
				keep[k] = d
			} else {
				keep[k] = max(m.AckedSeq, m.JoinedSeq)
			}
			if !m.Active() {
				left[k] = m.LeftSeq
			}
		}
		delivered = keep
		groups := make([]string, 0, len(keep))
		for k := range keep {
			groups = append(groups, k)
		}
		s.hub.setGroups(sub, groups)
		// Whatever arrived before the hub knew our groups is read now.
		sub.markAll(groups)
		st, err := s.st.KeyPackageStock(ctx, sess.ClientID, s.cfg.Now())
		if err != nil {
			return s.storeError(err, false)
		}
		for _, x := range st {
			if x.Count < lowStock || x.LastResortUsed {
				n := &v1.KeyPackageNotice{CipherSuite: uint32(x.Suite), Remaining: uint32(x.Count), LastResortUsed: x.LastResortUsed}
				if lastNotice == nil || lastNotice.CipherSuite != n.CipherSuite || lastNotice.Remaining != n.Remaining || lastNotice.LastResortUsed != n.LastResortUsed {
					if err := send(&v1.SubscribeResponse{Event: &v1.SubscribeResponse_KeyPackageNotice{KeyPackageNotice: n}}); err != nil {
						return err
					}
					lastNotice = n
				}
			}
		}
		return nil
	}
	if err := refresh(); err != nil {
		return err
	}
	for {
		doRefresh, dirty := sub.take()
		if doRefresh {
			if err := refresh(); err != nil {
				return err
			}
			_, more := sub.take()
			for k, v := range more {
				dirty[k] = max(dirty[k], v)
			}
		}
		for g, head := range dirty {
			d, ok := delivered[g]
			if !ok {
				continue
			}
			if head != math.MaxUint64 && head > d && head-d > uint64(s.cfg.QueueDepth) {
				s.metrics.inc("mlsd_slow_consumers_total")
				s.log.Info("slow consumer disconnected", "client", sess.ClientID, "behind", head-d)
				return connect.NewError(connect.CodeResourceExhausted, errors.New("slow consumer: too far behind; fetch from your cursor and resubscribe"))
			}
			end, removed := left[g]
			if removed {
				head = min(head, end)
			}
			for d < head {
				recs, err := s.records(ctx, []byte(g), d, streamBatch)
				if err != nil {
					return s.storeError(err, false)
				}
				if removed {
					recs = upTo(recs, end)
				} else if end, ok, err := s.removedAt(ctx, []byte(g), sess.ClientID, recs); err != nil {
					return s.storeError(err, false)
				} else if ok {
					// Removed since the last refresh: stop at the
					// commit that removed it.
					removed, left[g] = true, end
					head = min(head, end)
					recs = upTo(recs, end)
				}
				for i := range recs {
					if err := send(s.recordEvent(&recs[i], sess.ClientID, shared)); err != nil {
						return err
					}
					d = recs[i].Seq
					delivered[g] = d
				}
				s.metrics.add("mlsd_records_delivered_total", uint64(len(recs)))
				if len(recs) < streamBatch {
					break
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-sub.wake:
		}
	}
}

const lowStock = 3

// hub routes store notifications to the subscriptions they concern.
type hub struct {
	mu       sync.Mutex
	byClient map[string]map[*sub]struct{}
	byGroup  map[string]map[*sub]struct{}
	n        int
}

type sub struct {
	client string
	wake   chan struct{}

	mu      sync.Mutex
	groups  []string
	dirty   map[string]uint64
	refresh bool
}

func newHub() *hub {
	return &hub{byClient: map[string]map[*sub]struct{}{}, byGroup: map[string]map[*sub]struct{}{}}
}

func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

func (h *hub) add(client string) *sub {
	s := &sub{client: client, wake: make(chan struct{}, 1), dirty: map[string]uint64{}}
	h.mu.Lock()
	if h.byClient[client] == nil {
		h.byClient[client] = map[*sub]struct{}{}
	}
	h.byClient[client][s] = struct{}{}
	h.n++
	h.mu.Unlock()
	return s
}

func (h *hub) remove(s *sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.byClient[s.client], s)
	if len(h.byClient[s.client]) == 0 {
		delete(h.byClient, s.client)
	}
	for _, g := range s.groups {
		delete(h.byGroup[g], s)
		if len(h.byGroup[g]) == 0 {
			delete(h.byGroup, g)
		}
	}
	h.n--
}

func (h *hub) setGroups(s *sub, groups []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, g := range s.groups {
		delete(h.byGroup[g], s)
		if len(h.byGroup[g]) == 0 {
			delete(h.byGroup, g)
		}
	}
	for _, g := range groups {
		if h.byGroup[g] == nil {
			h.byGroup[g] = map[*sub]struct{}{}
		}
		h.byGroup[g][s] = struct{}{}
	}
	s.groups = groups
}

// notify never blocks: it marks subscriptions and pokes their wake channel.
func (h *hub) notify(n store.Notification) {
	h.mu.Lock()
	var subs []*sub
	switch {
	case n.All:
		for _, cs := range h.byClient {
			for s := range cs {
				subs = append(subs, s)
			}
		}
	case n.GroupID != nil:
		for s := range h.byGroup[string(n.GroupID)] {
			subs = append(subs, s)
		}
	default:
		for s := range h.byClient[n.ClientID] {
			subs = append(subs, s)
		}
	}
	h.mu.Unlock()
	for _, s := range subs {
		s.mu.Lock()
		if n.GroupID != nil && !n.All {
			k := string(n.GroupID)
			s.dirty[k] = max(s.dirty[k], n.Seq)
		} else {
			s.refresh = true
		}
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

func (s *sub) markAll(groups []string) {
	s.mu.Lock()
	for _, g := range groups {
		s.dirty[g] = math.MaxUint64
	}
	s.mu.Unlock()
}

func (s *sub) take() (bool, map[string]uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, d := s.refresh, s.dirty
	s.refresh, s.dirty = false, map[string]uint64{}
	return r, d
}
