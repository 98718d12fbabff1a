package client

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"

	"connectrpc.com/connect"

	v1 "github.com/mlskit/mlskit/ds/api/mlsdv1"
	dsclient "github.com/mlskit/mlskit/ds/client"
)

// FollowOptions configures Follow.
type FollowOptions struct {
	// Group receives the lines of Input as messages. It may be empty when
	// Input is nil; every group is followed either way.
	Group string
	// Input carries lines to send; Follow ends when it is closed. Nil
	// means follow without sending.
	Input <-chan string
	// Command, if set, is offered each input line first and returns the
	// text to send, or send false for a line it handled itself (an in-band
	// command). It runs on Follow's goroutine, so it may call the Client's
	// methods (Status, Groups) while Follow runs. To stop, close Input or
	// cancel ctx.
	Command func(line string) (text string, send bool)
	// MaxBackoff caps the wait between reconnection attempts (default 5s).
	MaxBackoff time.Duration
}

// Status texts of EventStatus events, for applications that branch on
// them.
const (
	StatusReady        = "ready"
	StatusLost         = "connection lost"
	StatusReconnected  = "reconnected"
	minFollowBackoff   = 250 * time.Millisecond
	defaultMaxBackoff  = 5 * time.Second
	subscribeTimeout   = 10 * time.Second
	followCatchUpLimit = 15 * time.Second
)

// Follow reports events live until ctx ends or o.Input closes: first what
// was not shown yet, then an EventStatus "ready", then each record as the
// server streams it. Lines on o.Input are sent to o.Group, and each sent
// line is reported back as an Own EventMessage, so one process both reads
// and writes the state directory.
//
// When the connection to the server is lost, Follow says so (EventStatus
// StatusLost, with the wait), retries with exponential backoff, logs in
// again if the session is gone, catches up from the log, and says
// StatusReconnected; it never gives up while ctx lives. A commit removing
// this client is processed as it streams in, so removal is reported at
// once (EventRemovedSelf); Follow then ends with an error wrapping ErrRemoved
// if that was o.Group.
func (c *Client) Follow(ctx context.Context, o FollowOptions, out func(Event)) error {
	if o.Input != nil {
		if _, _, err := c.group(ctx, o.Group); err != nil {
			if err := c.connect(ctx); err != nil {
				return err
			}
			if err := c.joinNew(ctx); err != nil {
				return err
			}
			if _, _, err := c.group(ctx, o.Group); err != nil {
				return err
			}
		}
	}
	maxBackoff := o.MaxBackoff
	if maxBackoff <= 0 {
		maxBackoff = defaultMaxBackoff
	}
	evs, err := c.Read(ctx, "")
	if err != nil {
		return err
	}
	for _, e := range evs {
		out(e)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	type item struct {
		m   *v1.SubscribeResponse
		err error
	}
	var items chan item
	var streamCancel context.CancelFunc = func() {}
	defer func() { streamCancel() }()
	// subscribe opens the stream and starts reading it into items.
	subscribe := func() error {
		sctx, scancel := context.WithCancel(ctx)
		s, err := c.ds.Subscribe(sctx)
		if err != nil {
			scancel()
			return err
		}
		streamCancel = scancel
		ch := make(chan item)
		items = ch
		go func() {
			defer s.Close()
			for {
				m, err := s.Next()
				select {
				case ch <- item{m: m, err: err}:
				case <-sctx.Done():
					return
				}
				if err != nil {
					return
				}
			}
		}()
		return nil
	}
	if err := subscribe(); err != nil {
		return c.serverError("following", err)
	}
	status := func(text string) {
		out(Event{Group: o.Group, Time: c.now(), Kind: EventStatus, Text: text})
	}
	status(StatusReady)

	flush := func() error {
		evs, err := c.takeUnshown("")
		for _, e := range evs {
			out(e)
		}
		return err
	}
	// Reconnection state: retry fires when the next attempt is due.
	var retry <-chan time.Time
	backoff := time.Duration(0)
	lost := func(cause error) {
		streamCancel()
		items = nil
		if backoff == 0 {
			backoff = minFollowBackoff
			status(fmt.Sprintf("%s (%s); reconnecting", StatusLost, c.serverError("following", cause)))
		} else {
			backoff = min(2*backoff, maxBackoff)
		}
		retry = time.After(backoff)
	}
	reconnect := func() error {
		if err := subscribe(); err != nil {
			return err
		}
		// Catch up on what was sequenced while the stream was down; this is
		// also the first call that proves the server answers.
		cctx, ccancel := context.WithTimeout(ctx, followCatchUpLimit)
		defer ccancel()
		if err := c.syncAll(cctx); err != nil {
			streamCancel()
			items = nil
			return err
		}
		return nil
	}

	for {
		select {
		case <-ctx.Done():
			return nil
		case <-retry:
			retry = nil
			err := reconnect()
			if connect.CodeOf(err) == connect.CodeUnauthenticated {
				// The session expired (or the server forgot it): log in again.
				c.ds = nil
				if err = c.connect(ctx); err == nil {
					err = reconnect()
				}
			}
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				lost(err)
				continue
			}
			backoff = 0
			status(StatusReconnected)
			if err := flush(); err != nil {
				return err
			}
		case line, ok := <-o.Input:
			if !ok {
				return nil
			}
			line = strings.TrimRight(line, "\r\n")
			if strings.TrimSpace(line) == "" {
				continue
			}
			if o.Command != nil {
				var send bool
				if line, send = o.Command(line); !send {
					continue
				}
			}
			if err := c.Send(ctx, o.Group, line); err != nil {
				if errors.Is(err, ErrRemoved) {
					flush()
					return err
				}
				out(Event{Group: o.Group, Time: c.now(), Kind: EventError, Text: "not sent: " + err.Error()})
			} else {
				out(Event{Group: o.Group, Time: c.now(), Kind: EventMessage, From: c.id.Name, Text: line, Own: true})
			}
			if err := flush(); err != nil {
				return err
			}
		case it := <-items:
			if it.err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if errors.Is(it.err, dsclient.ErrChain) {
					return fmt.Errorf("following: %w", it.err)
				}
				lost(it.err)
				continue
			}
			if n := it.m.GetKeyPackageNotice(); n != nil {
				if _, err := c.replenish(ctx, false); err != nil {
					out(Event{Time: c.now(), Kind: EventError, Text: "replenishing KeyPackages: " + err.Error()})
				}
				continue
			}
			r := it.m.GetRecord()
			if r == nil {
				continue
			}
			err := c.onStreamRecord(ctx, r)
			if err != nil && !errors.Is(err, ErrRemoved) {
				out(Event{Group: string(r.GroupId), Time: c.now(), Kind: EventError, Text: err.Error()})
			}
			if err := flush(); err != nil {
				return err
			}
			if gm := c.meta.group([]byte(o.Group)); o.Input != nil && gm != nil && gm.Removed {
				return userErr(ErrRemoved, "you were removed from group %q", o.Group)
			}
		}
	}
}

// Events follows the server as Follow does and yields each event as it
// happens, so an application receives messages, membership changes,
// invitations it joined and its own removal without polling:
//
//	for e, err := range c.Events(ctx, client.FollowOptions{}) {
//		if err != nil { ... }            // Follow ended with an error
//		switch e.Kind { ... }
//	}
//
// The first events are those not shown before, then an EventStatus
// StatusReady; connection losses and reconnections are EventStatus events
// too. Breaking out of the loop stops following; so does cancelling ctx
// or closing o.Input, which ends the loop without an error. Events that
// were due after the one the loop stopped at are kept and come first from
// the next Read, Follow or Events. An error that ends Follow is yielded
// once, last, with a zero Event.
//
// Like every method, Events must not run concurrently with other calls on
// the same Client, except from o.Command (which runs on Follow's
// goroutine) and from the loop body, which also runs there.
func (c *Client) Events(ctx context.Context, o FollowOptions) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stopped := false
		var unseen []Event
		err := c.Follow(ctx, o, func(e Event) {
			if stopped {
				// The loop ended; Follow notices the cancellation next.
				// What it had already taken from the inbox is kept.
				if e.Kind != EventStatus {
					unseen = append(unseen, e)
				}
				return
			}
			if !yield(e, nil) {
				stopped = true
				cancel()
			}
		})
		if len(unseen) > 0 {
			c.meta.Notices = append(unseen, c.meta.Notices...)
			if serr := c.saveMeta(); err == nil {
				err = serr
			}
		}
		if err != nil && !stopped {
			yield(Event{}, err)
		}
	}
}

// onStreamRecord handles a record the stream delivered. The next record of
// a known group is processed as it came (the stream checked its place in
// the hash chain), so a commit that removes this client is seen even though
// the server will not deliver the group's log to it afterwards; anything
// else makes the group catch up from the log.
func (c *Client) onStreamRecord(ctx context.Context, r *v1.Record) error {
	gm := c.meta.group(r.GroupId)
	if gm == nil || gm.Removed {
		return c.joinNew(ctx)
	}
	if gm.Offline {
		return nil
	}
	group := string(r.GroupId)
	if r.Seq == gm.Cursor+1 {
		g, _, err := c.group(ctx, group)
		if err != nil {
			return err
		}
		if err := c.process(ctx, group, g, gm, []*v1.Record{r}); err != nil {
			return err
		}
		if gm.Removed {
			return userErr(ErrRemoved, "you were removed from group %q", group)
		}
	}
	return c.sync(ctx, group)
}
