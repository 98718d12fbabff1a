package mls_test

import (
	"fmt"
	"testing"

	"github.com/mlskit/mlskit/mls"
)

// Out-of-order delivery (RFC 9420, Section 9.2): inside the window set by
// Config.OutOfOrderTolerance and MaxForwardDistance messages decrypt in any
// order; outside it they fail with ErrKeyUnavailable and change nothing.
// Late application messages of a previous epoch decrypt while the epoch is
// among the Config.PastEpochs kept, and fail with ErrWrongEpoch after.

// windowGroup is threeParty with cfg, moved to a fresh epoch so that every
// ratchet starts at generation 0 (threeParty's checkAgree used some).
func windowGroup(t *testing.T, cfg *mls.Config) []*client {
	t.Helper()
	all := threeParty(t, fastSuite, cfg)
	commit(t, all[2], nil, all)
	return all
}

// sendN has c encrypt n application messages, generations 0..n-1 of its
// application ratchet in the epoch.
func sendN(t *testing.T, c *client, n int) [][]byte {
	t.Helper()
	out := make([][]byte, n)
	for i := range out {
		var err error
		if out[i], err = c.g.Encrypt(fmt.Appendf(nil, "message %d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// readOK has c read msg, which must be application message i.
func readOK(t *testing.T, c *client, msg []byte, i int) {
	t.Helper()
	r, err := c.g.Process(msg)
	if err != nil {
		t.Fatalf("%s reading message %d: %v", c.name, i, err)
	}
	if want := fmt.Sprintf("message %d", i); string(r.Application) != want {
		t.Fatalf("%s read %q, want %q", c.name, r.Application, want)
	}
}

// readFails has c refuse msg with want, unchanged.
func readFails(t *testing.T, c *client, msg []byte, what string, want error) {
	t.Helper()
	before := fingerprint(t, c.g)
	_, err := c.g.Process(msg)
	wantErr(t, what, err, want)
	unchanged(t, what, c.g, before)
}

func TestOutOfOrderWindow(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			seeded(t, 40)
			cfg := detConfig("window "+m.name, m.pub)
			cfg.OutOfOrderTolerance = 3
			cfg.MaxForwardDistance = 10
			all := windowGroup(t, cfg)
			alice, bob := all[0], all[1]
			msgs := sendN(t, bob, 32)
			for i := range 4 {
				if _, _, gen, ok := mls.SenderDataOf(alice.g, msgs[i]); !ok || gen != uint32(i) {
					t.Fatalf("message %d has generation %d", i, gen)
				}
			}

			// Inside the window, in any order: 3 first, then 1, 2, 0
			// (each at most 3 behind the newest).
			for _, i := range []int{3, 1, 2, 0} {
				readOK(t, alice, msgs[i], i)
			}
			readFails(t, alice, msgs[2], "replayed message 2", mls.ErrKeyUnavailable)

			// Jump to 9 (5 ahead of the next, 4): 6, 7, 8 are kept, 4 and 5
			// fell out of the window.
			readOK(t, alice, msgs[9], 9)
			readFails(t, alice, msgs[5], "message 5, 4 behind the newest (9)", mls.ErrKeyUnavailable)
			readFails(t, alice, msgs[4], "message 4, 5 behind the newest (9)", mls.ErrKeyUnavailable)
			for _, i := range []int{8, 6, 7} {
				readOK(t, alice, msgs[i], i)
			}

			// Forward limit: the next generation is 10; 21 is 11 ahead.
			readFails(t, alice, msgs[21], "message 21, 11 ahead of the next (10)", mls.ErrKeyUnavailable)
			readOK(t, alice, msgs[20], 20)
			readOK(t, alice, msgs[21], 21)
			readOK(t, alice, msgs[18], 18)
			readFails(t, alice, msgs[17], "message 17, 4 behind the newest (21)", mls.ErrKeyUnavailable)

			// Other senders' ratchets are independent.
			carol := all[2]
			cm := sendN(t, carol, 3)
			readOK(t, alice, cm[2], 2)
			readOK(t, alice, cm[0], 0)
			readOK(t, alice, cm[1], 1)

			// Another receiver, in order, reads everything.
			for i, msg := range msgs {
				readOK(t, carol, msg, i)
			}
			checkAgree(t, all)
		})
	}
}

// TestOutOfOrderHandshakes: proposals out of order inside the window are
// all accepted (PrivateMessage handshakes use the handshake ratchet; a
// PublicMessage has no generation at all); a commit after them takes them
// all.
func TestOutOfOrderHandshakes(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			seeded(t, 41)
			cfg := detConfig("window handshakes "+m.name, m.pub)
			cfg.OutOfOrderTolerance = 2
			all := windowGroup(t, cfg)
			alice, bob, carol := all[0], all[1], all[2]
			dave, erin := newClient(t, "dave", fastSuite, cfg), newClient(t, "erin", fastSuite, cfg)
			var props [][]byte
			for _, c := range []*client{dave, erin} {
				p, err := bob.g.ProposeAdd(c.keyPackage(t))
				if err != nil {
					t.Fatal(err)
				}
				props = append(props, p)
			}
			p, err := bob.g.ProposeUpdate(nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			props = append(props, p)
			for _, i := range []int{2, 0, 1} {
				process(t, alice, props[i])
			}
			for _, i := range []int{0, 1, 2} {
				process(t, carol, props[i])
			}
			if !m.pub {
				readFails(t, alice, props[1], "replayed proposal", mls.ErrKeyUnavailable)
			}
			sc := commit(t, alice, nil, all, dave, erin).Staged
			if len(sc.Added) != 2 || len(sc.Updated) != 1 {
				t.Fatalf("commit added %d, updated %d", len(sc.Added), len(sc.Updated))
			}
			checkAgree(t, append(all, dave, erin))
		})
	}
}

// TestPastEpochs: application messages of an epoch that has ended decrypt
// while it is one of the PastEpochs kept, and fail with ErrWrongEpoch once
// it has been dropped; late handshakes never do.
func TestPastEpochs(t *testing.T) {
	for _, keep := range []int{2, -1} {
		for _, m := range modes() {
			t.Run(fmt.Sprintf("keep%d/%s", keep, m.name), func(t *testing.T) {
				seeded(t, 42)
				cfg := detConfig(fmt.Sprintf("past %d %s", keep, m.name), m.pub)
				cfg.PastEpochs = keep
				cfg.OutOfOrderTolerance = 3
				all := windowGroup(t, cfg)
				alice, bob, carol := all[0], all[1], all[2]
				epoch := alice.g.Epoch()
				late := sendN(t, bob, 6)
				lateProp, err := bob.g.ProposeRemove(carol.g.LeafIndex())
				if err != nil {
					t.Fatal(err)
				}
				process(t, carol, lateProp)
				readOK(t, alice, late[0], 0)
				commit(t, carol, &mls.CommitOptions{OnlyInline: true}, all) // epoch+1
				mls.DropOwnProposals(bob.g)

				readFails(t, alice, lateProp, "proposal of the previous epoch", mls.ErrWrongEpoch)
				if keep < 0 {
					readFails(t, alice, late[1], "message of an epoch not kept", mls.ErrWrongEpoch)
					checkAgree(t, all)
					return
				}
				// One epoch back: in order, out of order, replayed.
				readOK(t, alice, late[3], 3)
				readOK(t, alice, late[1], 1)
				readFails(t, alice, late[3], "replayed late message", mls.ErrKeyUnavailable)
				commit(t, bob, nil, all) // epoch+2: epoch is the oldest kept
				readOK(t, alice, late[2], 2)
				readOK(t, carol, late[4], 4)
				commit(t, alice, nil, all) // epoch+3: epoch is dropped
				if alice.g.Epoch() != epoch+3 {
					t.Fatalf("alice at epoch %d", alice.g.Epoch())
				}
				readFails(t, alice, late[4], "message of an epoch no longer kept", mls.ErrWrongEpoch)
				readFails(t, carol, late[5], "message of an epoch no longer kept", mls.ErrWrongEpoch)
				checkAgree(t, all)
			})
		}
	}
}
