package memory

import (
	"bytes"
	"context"
	"testing"

	"github.com/mlskit/mlskit/storage"
)

// TestZeroesWhatItDrops checks, from inside, that the store overwrites the
// bytes of every value it deletes or replaces, so a stale internal copy
// cannot leak a consumed secret.
func TestZeroesWhatItDrops(t *testing.T) {
	ctx := context.Background()
	s := New()
	g := []byte("g")
	secret := bytes.Repeat([]byte{0x5a}, 32)
	if err := s.Write(ctx, &storage.Batch{
		GroupID: g, State: secret, Epoch: 1,
		Epochs:        []storage.EpochRecord{{Epoch: 1, Data: secret}, {Epoch: 2, Data: secret}},
		MessageKeys:   []storage.MessageKeyRecord{{MessageKeyID: storage.MessageKeyID{Epoch: 1, ID: []byte("k")}, Data: secret}, {MessageKeyID: storage.MessageKeyID{Epoch: 2, ID: []byte("k")}, Data: secret}},
		PendingCommit: secret,
		KeyPackages:   []storage.Record{{Key: []byte("r"), Value: secret}, {Key: []byte("r2"), Value: secret}},
		PSKs:          []storage.Record{{Key: []byte("p"), Value: secret}},
	}); err != nil {
		t.Fatal(err)
	}
	gr := s.groups["g"]
	held := map[string][]byte{
		"state":           gr.state,
		"epoch 1":         gr.epochs[1],
		"epoch 2":         gr.epochs[2],
		"key 1 (cascade)": gr.keys[keyName{1, "k"}],
		"key 2":           gr.keys[keyName{2, "k"}],
		"pending":         gr.pending,
		"key package":     s.keyPackages["r"],
		"psk":             s.psks["p"],
		"key package 2":   s.keyPackages["r2"],
	}
	if err := s.Write(ctx, &storage.Batch{
		GroupID: g, State: []byte("new"), Epoch: 2,
		Epochs:             []storage.EpochRecord{{Epoch: 2, Data: []byte("new")}},
		DeleteEpochs:       []uint64{1},
		DeleteMessageKeys:  []storage.MessageKeyID{{Epoch: 2, ID: []byte("k")}},
		ClearPendingCommit: true,
		DeleteKeyPackages:  [][]byte{[]byte("r")},
		DeletePSKs:         [][]byte{[]byte("p")},
	}); err != nil {
		t.Fatal(err)
	}
	for name, b := range held {
		if name == "key package 2" {
			if !bytes.Equal(b, secret) {
				t.Errorf("%s was not deleted but its bytes changed", name)
			}
			continue
		}
		if !bytes.Equal(b, make([]byte, len(b))) {
			t.Errorf("%s: deleted or replaced but not zeroed", name)
		}
	}
	// Close zeroes the rest.
	s.Close()
	if b := held["key package 2"]; !bytes.Equal(b, make([]byte, len(b))) {
		t.Error("Close did not zero a stored value")
	}
}
