package client

import (
	"context"
	"errors"
	"strings"
	"time"

	v1 "github.com/mlskit/mlskit/ds/api/mlsdv1"
)

// Follow prints events live until ctx ends or input closes: first what was
// not shown yet, then each record as the server streams it. Lines arriving
// on input are sent to group as messages, so one process both reads and
// writes the state directory. group may be empty when input is nil (all
// groups are followed either way).
func (c *Client) Follow(ctx context.Context, group string, input <-chan string, out func(Event)) error {
	if input != nil {
		if _, _, err := c.group(ctx, group); err != nil {
			if err := c.connect(ctx); err != nil {
				return err
			}
			if err := c.joinNew(ctx); err != nil {
				return err
			}
			if _, _, err := c.group(ctx, group); err != nil {
				return err
			}
		}
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
	items := make(chan item)
	go func() {
		defer close(items)
		failures := 0
		for ctx.Err() == nil {
			s, err := c.ds.Subscribe(ctx)
			if err == nil {
				for {
					m, err := s.Next()
					if err != nil {
						s.Close()
						break
					}
					failures = 0
					select {
					case items <- item{m: m}:
					case <-ctx.Done():
						s.Close()
						return
					}
				}
			}
			if ctx.Err() != nil {
				return
			}
			if failures++; failures > 5 {
				select {
				case items <- item{err: c.serverError("following", errors.Join(err, errStreamLost))}:
				case <-ctx.Done():
				}
				return
			}
			select {
			case <-time.After(time.Duration(failures) * 200 * time.Millisecond):
			case <-ctx.Done():
				return
			}
		}
	}()
	flush := func() error {
		evs, err := c.takeUnshown("")
		for _, e := range evs {
			out(e)
		}
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case line, ok := <-input:
			if !ok {
				return nil
			}
			line = strings.TrimRight(line, "\r\n")
			if strings.TrimSpace(line) == "" {
				continue
			}
			if err := c.Send(ctx, group, line); err != nil {
				if errors.Is(err, ErrRemoved) {
					flush()
					return err
				}
				out(Event{Group: group, Time: c.now(), Kind: EventError, Text: "not sent: " + err.Error()})
			}
			if err := flush(); err != nil {
				return err
			}
		case it, ok := <-items:
			if !ok {
				return nil
			}
			if it.err != nil {
				return it.err
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
			var err error
			if gm := c.meta.group(r.GroupId); gm == nil || gm.Removed {
				err = c.joinNew(ctx)
			} else {
				err = c.sync(ctx, string(r.GroupId))
			}
			if err != nil && !errors.Is(err, ErrRemoved) {
				out(Event{Group: string(r.GroupId), Time: c.now(), Kind: EventError, Text: err.Error()})
			}
			if err := flush(); err != nil {
				return err
			}
		}
	}
}

var errStreamLost = errors.New("the delivery stream ended")
