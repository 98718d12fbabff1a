package memory_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/mlskit/mlskit/storage"
	"github.com/mlskit/mlskit/storage/memory"
)

// A group layer advancing a group to a new epoch: one batch stores the new
// state, keeps the old epoch's secrets for late messages, drops an epoch too
// old to keep, removes the message key it just used and the KeyPackage that
// the Welcome consumed, and clears the pending commit. All of it lands, or
// none of it.
func Example() {
	ctx := context.Background()
	var s storage.Store = memory.New()
	defer s.Close()

	group := []byte("group 1")
	state := func(epoch uint64) []byte {
		b, _ := storage.Envelope{Kind: 1, Version: 1, Payload: fmt.Appendf(nil, "state at epoch %d", epoch)}.Marshal()
		return b
	}
	err := s.Write(ctx, &storage.Batch{
		GroupID:       group,
		State:         state(4),
		Epoch:         4,
		Epochs:        []storage.EpochRecord{{Epoch: 3, Data: []byte("epoch 3 secrets")}},
		PendingCommit: []byte("commit for epoch 5"),
		KeyPackages:   []storage.Record{{Key: []byte("kp ref"), Value: []byte("init and leaf private keys")}},
	})
	if err != nil {
		panic(err)
	}

	err = s.Write(ctx, &storage.Batch{
		GroupID:            group,
		State:              state(5),
		Epoch:              5,
		Epochs:             []storage.EpochRecord{{Epoch: 4, Data: []byte("epoch 4 secrets")}},
		DeleteEpochs:       []uint64{3},
		DeleteMessageKeys:  []storage.MessageKeyID{{Epoch: 4, ID: []byte("leaf 2 generation 17")}},
		ClearPendingCommit: true,
		DeleteKeyPackages:  [][]byte{[]byte("kp ref")},
	})
	if err != nil {
		panic(err)
	}

	b, epoch, _ := s.LoadGroup(ctx, group)
	version, payload, _ := storage.OpenEnvelope(b, 1)
	fmt.Printf("epoch %d, format v%d: %s\n", epoch, version, payload)
	_, err = s.LoadEpoch(ctx, group, 3)
	fmt.Println("epoch 3 secrets deleted:", errors.Is(err, storage.ErrNotFound))
	// Output:
	// epoch 5, format v1: state at epoch 5
	// epoch 3 secrets deleted: true
}
