package mls_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/mlskit/mlskit/mls"
)

// TestLateApplicationMessage: an application message of the previous epoch
// still decrypts after a commit (RFC 9420, Section 9.2 lets a member keep
// the secret tree of past epochs), and not once the epoch has left the
// retention window.
func TestLateApplicationMessage(t *testing.T) {
	seeded(t, 1)
	a := newGroupClient(t, "a", fastSuite, detConfig("late a", false), nil)
	b := newClient(t, "b", fastSuite, &mls.Config{Rand: seededRand("late b"), PastEpochs: 1})
	commit(t, a, &mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(b.keyPackage(t))}}, nil, b)
	late, err := a.g.Encrypt([]byte("late"), nil)
	if err != nil {
		t.Fatal(err)
	}
	tooLate, err := a.g.Encrypt([]byte("too late"), nil)
	if err != nil {
		t.Fatal(err)
	}
	commit(t, a, nil, []*client{b})
	r, err := b.g.Process(late)
	if err != nil {
		t.Fatalf("late message of the previous epoch: %v", err)
	}
	if !bytes.Equal(r.Application, []byte("late")) || r.Epoch != 1 {
		t.Fatalf("got %q of epoch %d", r.Application, r.Epoch)
	}
	commit(t, a, nil, []*client{b})
	if _, err := b.g.Process(tooLate); !errors.Is(err, mls.ErrWrongEpoch) {
		t.Fatalf("message of an epoch outside the window: got %v, want ErrWrongEpoch", err)
	}
}
