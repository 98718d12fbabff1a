package sqlite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/mlskit/mlskit/storage"
)

// secretFor returns a recognisable 32-byte secret, distinct per case, that
// nothing else in the files can contain by chance.
func secretFor(name string) []byte {
	h := sha256.Sum256([]byte("mlskit forward secrecy test: " + name))
	return h[:]
}

// filler returns n bytes of other data.
func filler(tag string, n int) []byte {
	return bytes.Repeat([]byte(tag+"."), n/(len(tag)+1)+1)[:n]
}

// embed puts secret in the middle of n bytes of filler, as a key would sit
// inside a serialised group state.
func embed(secret []byte, n int) []byte {
	b := filler("state", n)
	copy(b[n/2:], secret)
	return b
}

// scanFiles reports which of the database's files (the database, -wal and
// -shm) contain secret.
func scanFiles(t *testing.T, path string, secret []byte) []string {
	t.Helper()
	var found []string
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, secret) {
			found = append(found, p[len(path)-len("mls.db"):])
		}
	}
	return found
}

// secrecyCase writes a secret (setup) and then removes it (remove) with the
// store's public API.
type secrecyCase struct {
	name   string
	setup  func(secret []byte) *storage.Batch
	remove func(ctx context.Context, s *Store) error
}

var gid = []byte("group")

func writeBatch(b *storage.Batch) func(context.Context, *Store) error {
	return func(ctx context.Context, s *Store) error { return s.Write(ctx, b) }
}

var secrecyCases = []secrecyCase{
	{
		// The replacement is small enough that SQLite does not happen to
		// write it over the old cell's secret, so the negative control
		// without secure_delete sees the leftover bytes.
		name:   "small state replaced",
		setup:  func(k []byte) *storage.Batch { return &storage.Batch{GroupID: gid, State: embed(k, 400), Epoch: 1} },
		remove: writeBatch(&storage.Batch{GroupID: gid, State: filler("next", 60), Epoch: 2}),
	},
	{
		// 100 KB spills into overflow pages, which the replacement frees.
		name:   "large state replaced",
		setup:  func(k []byte) *storage.Batch { return &storage.Batch{GroupID: gid, State: embed(k, 100_000), Epoch: 1} },
		remove: writeBatch(&storage.Batch{GroupID: gid, State: filler("next", 60_000), Epoch: 2}),
	},
	{
		name: "past epoch deleted",
		setup: func(k []byte) *storage.Batch {
			return &storage.Batch{GroupID: gid, Epochs: []storage.EpochRecord{{Epoch: 1, Data: embed(k, 300)}, {Epoch: 2, Data: filler("e2", 300)}}}
		},
		remove: writeBatch(&storage.Batch{GroupID: gid, DeleteEpochs: []uint64{1}}),
	},
	{
		name: "message key consumed",
		setup: func(k []byte) *storage.Batch {
			return &storage.Batch{GroupID: gid, MessageKeys: []storage.MessageKeyRecord{
				{MessageKeyID: storage.MessageKeyID{Epoch: 1, ID: []byte("leaf 3 gen 7")}, Data: k},
				{MessageKeyID: storage.MessageKeyID{Epoch: 1, ID: []byte("leaf 3 gen 9")}, Data: filler("mk", 32)},
			}}
		},
		remove: writeBatch(&storage.Batch{GroupID: gid,
			DeleteMessageKeys: []storage.MessageKeyID{{Epoch: 1, ID: []byte("leaf 3 gen 7")}}}),
	},
	{
		name: "message keys dropped with their epoch",
		setup: func(k []byte) *storage.Batch {
			return &storage.Batch{GroupID: gid,
				Epochs:      []storage.EpochRecord{{Epoch: 1, Data: filler("e1", 64)}},
				MessageKeys: []storage.MessageKeyRecord{{MessageKeyID: storage.MessageKeyID{Epoch: 1, ID: []byte("k")}, Data: k}}}
		},
		remove: writeBatch(&storage.Batch{GroupID: gid, DeleteEpochs: []uint64{1}}),
	},
	{
		name: "KeyPackage private keys deleted after use",
		setup: func(k []byte) *storage.Batch {
			return &storage.Batch{KeyPackages: []storage.Record{{Key: []byte("ref1"), Value: embed(k, 180)}, {Key: []byte("ref2"), Value: filler("kp", 180)}}}
		},
		remove: writeBatch(&storage.Batch{DeleteKeyPackages: [][]byte{[]byte("ref1")}}),
	},
	{
		name: "PSK deleted",
		setup: func(k []byte) *storage.Batch {
			return &storage.Batch{PSKs: []storage.Record{{Key: []byte("psk"), Value: k}}}
		},
		remove: writeBatch(&storage.Batch{DeletePSKs: [][]byte{[]byte("psk")}}),
	},
	{
		name: "epoch record overwritten",
		setup: func(k []byte) *storage.Batch {
			return &storage.Batch{GroupID: gid, Epochs: []storage.EpochRecord{{Epoch: 1, Data: embed(k, 400)}}}
		},
		remove: writeBatch(&storage.Batch{GroupID: gid, Epochs: []storage.EpochRecord{{Epoch: 1, Data: filler("shorter", 100)}}}),
	},
	{
		name:   "pending commit cleared",
		setup:  func(k []byte) *storage.Batch { return &storage.Batch{GroupID: gid, PendingCommit: embed(k, 500)} },
		remove: writeBatch(&storage.Batch{GroupID: gid, ClearPendingCommit: true}),
	},
	{
		name: "group deleted",
		setup: func(k []byte) *storage.Batch {
			return &storage.Batch{GroupID: gid, State: embed(k, 20_000), Epoch: 5,
				Epochs: []storage.EpochRecord{{Epoch: 4, Data: embed(k, 100)}}}
		},
		remove: func(ctx context.Context, s *Store) error { return s.DeleteGroup(ctx, gid) },
	},
}

// runSecrecyCase writes and removes the case's secret in a fresh store opened
// with opts, and reports where the secret can be found after the removing
// Write returned (the store still open, as if the device were seized or the
// process crashed then) and after Close.
func runSecrecyCase(t *testing.T, c secrecyCase, opts *Options) (whileOpen, afterClose []string) {
	t.Helper()
	ctx := context.Background()
	s, path := openTemp(t, opts)
	secret := secretFor(c.name)

	// Surround the secret with other state, as in a real store, so it is not
	// alone on its pages.
	if err := s.Write(ctx, &storage.Batch{
		GroupID: gid, State: filler("initial", 1000), Epoch: 0,
		Epochs:      []storage.EpochRecord{{Epoch: 100, Data: filler("old", 500)}},
		KeyPackages: []storage.Record{{Key: []byte("other"), Value: filler("kp", 200)}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, c.setup(secret)); err != nil {
		t.Fatal(err)
	}
	if found := scanFiles(t, path, secret); len(found) == 0 {
		t.Fatal("the secret was written but is in none of the files: the scan cannot work")
	}
	if err := c.remove(ctx, s); err != nil {
		t.Fatal(err)
	}
	whileOpen = scanFiles(t, path, secret)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	afterClose = scanFiles(t, path, secret)
	return whileOpen, afterClose
}

// TestForwardSecrecyOnDisk checks that once a Write that deletes or replaces
// a secret has returned, the secret's bytes are in none of the database's
// files (RFC 9420, Section 9.2). It also runs each case with secure_delete
// off and with the checkpoint off, and requires the secret to be found then:
// otherwise the test could not fail and would prove nothing.
func TestForwardSecrecyOnDisk(t *testing.T) {
	for _, c := range secrecyCases {
		t.Run(c.name, func(t *testing.T) {
			open, closed := runSecrecyCase(t, c, nil)
			if len(open) > 0 || len(closed) > 0 {
				t.Errorf("deleted secret still on disk: after the Write in %v, after Close in %v", open, closed)
			}

			// Negative controls: each measure is needed.
			open, closed = runSecrecyCase(t, c, &Options{insecureDelete: true})
			if len(open) == 0 && len(closed) == 0 {
				t.Errorf("with secure_delete off the secret was not found: this case cannot detect a missing secure_delete")
			} else {
				t.Logf("secure_delete off: secret found after the Write in %v, after Close in %v", open, closed)
			}
			open, closed = runSecrecyCase(t, c, &Options{noCheckpoint: true})
			if len(open) == 0 {
				t.Errorf("without the checkpoint the secret was not found: this case cannot detect a missing checkpoint")
			} else {
				t.Logf("no checkpoint: secret found after the Write in %v, after Close in %v", open, closed)
			}
		})
	}
}

// TestDeferredCheckpoint covers a checkpoint that cannot complete because a
// reader holds an old snapshot: the deleted secret may stay in the -wal file
// until the reader finishes, and must be gone once Checkpoint (or the next
// Write, or Close) runs.
func TestDeferredCheckpoint(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t, &Options{BusyTimeout: 50 * time.Millisecond})
	secret := secretFor("deferred")
	if err := s.Write(ctx, &storage.Batch{GroupID: gid, State: embed(secret, 3000), Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	// A second handle stands for another process reading the file.
	other, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	reader, err := other.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var n int // the read starts the snapshot
	if err := reader.QueryRowContext(ctx, "SELECT count(*) FROM groups").Scan(&n); err != nil {
		t.Fatal(err)
	}

	if err := s.Write(ctx, &storage.Batch{GroupID: gid, State: filler("next", 2000), Epoch: 2}); err != nil {
		t.Fatalf("a Write whose checkpoint is blocked must still succeed: %v", err)
	}
	if found := scanFiles(t, path, secret); len(found) == 0 {
		t.Log("note: the blocked checkpoint still removed the secret")
	}
	if err := s.Checkpoint(ctx); !errors.Is(err, errCheckpointBusy) {
		t.Errorf("Checkpoint with a reader on an old snapshot: err = %v, want busy", err)
	}
	reader.Rollback()
	if err := s.Checkpoint(ctx); err != nil {
		t.Fatalf("Checkpoint after the reader finished: %v", err)
	}
	if found := scanFiles(t, path, secret); len(found) > 0 {
		t.Fatalf("secret still in %v after the deferred checkpoint", found)
	}
}
