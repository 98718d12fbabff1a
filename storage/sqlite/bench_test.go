package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/mlskit/mlskit/storage"
)

// stateSize is a group state for about 10,000 members: the ratchet tree
// dominates, at roughly 300 bytes per leaf with its parent nodes.
const stateSize = 3 << 20

func randomBlob(seed uint64, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(b)
	return b
}

// diskBytes is the size of the database and its -wal file.
func diskBytes(b *testing.B, path string) int64 {
	var n int64
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if err == nil {
			n += fi.Size()
		} else if !os.IsNotExist(err) {
			b.Fatal(err)
		}
	}
	return n
}

// BenchmarkWriteState replaces a group's state, as every epoch change does,
// including the checkpoint that scrubs the old state from the -wal file.
// The unscrubbed variant skips that checkpoint (a test knob, not an option)
// to show what forward secrecy on disk costs.
func BenchmarkWriteState(b *testing.B) {
	for _, bc := range []struct {
		size  int
		scrub bool
	}{{10 << 10, true}, {stateSize, true}, {10 << 10, false}, {stateSize, false}} {
		name := fmt.Sprintf("%dKiB", bc.size>>10)
		if !bc.scrub {
			name += "-unscrubbed"
		}
		size := bc.size
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			s, path := openTemp(b, &Options{noCheckpoint: !bc.scrub})
			states := [2][]byte{randomBlob(1, size), randomBlob(2, size)}
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := range b.N {
				if err := s.Write(ctx, &storage.Batch{GroupID: gid, State: states[i%2], Epoch: uint64(i)}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			// One live state; the file also keeps the pages freed by the last
			// replacement, for the next one to reuse.
			b.ReportMetric(float64(diskBytes(b, path)), "disk-B")
		})
	}
}

// BenchmarkLoadGroup loads a 3 MiB state, as opening a group after a restart
// does.
func BenchmarkLoadGroup(b *testing.B) {
	ctx := context.Background()
	s, _ := openTemp(b, nil)
	if err := s.Write(ctx, &storage.Batch{GroupID: gid, State: randomBlob(1, stateSize), Epoch: 1}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(stateSize)
	b.ResetTimer()
	for range b.N {
		st, _, err := s.LoadGroup(ctx, gid)
		if err != nil || len(st) != stateSize {
			b.Fatal(len(st), err)
		}
	}
}

// BenchmarkDiskPerState stores 8 groups of 3 MiB and reports the bytes on
// disk per stored state, before and after each state is replaced once.
func BenchmarkDiskPerState(b *testing.B) {
	const groups = 8
	ctx := context.Background()
	for range b.N {
		b.StopTimer()
		s, path := openTemp(b, nil)
		b.StartTimer()
		write := func(seed uint64) {
			for g := range groups {
				err := s.Write(ctx, &storage.Batch{GroupID: fmt.Appendf(nil, "group %d", g),
					State: randomBlob(seed+uint64(g), stateSize)})
				if err != nil {
					b.Fatal(err)
				}
			}
		}
		write(0)
		b.ReportMetric(float64(diskBytes(b, path))/groups, "disk-B/state")
		write(100)
		b.ReportMetric(float64(diskBytes(b, path))/groups, "disk-B/state-after-replace")
		b.ReportMetric(float64(stateSize), "state-B")
		s.Close()
	}
}

// BenchmarkConsumeMessageKey is the per-message write: delete the used
// message key and store the advanced ratchet (here a 1 KiB epoch record).
func BenchmarkConsumeMessageKey(b *testing.B) {
	b.Run("scrubbed", func(b *testing.B) { benchConsume(b, nil) })
	b.Run("unscrubbed", func(b *testing.B) { benchConsume(b, &Options{noCheckpoint: true}) })
}

func benchConsume(b *testing.B, opts *Options) {
	ctx := context.Background()
	s, _ := openTemp(b, opts)
	keys := make([]storage.MessageKeyRecord, 0, 1000)
	for i := range cap(keys) {
		keys = append(keys, storage.MessageKeyRecord{
			MessageKeyID: storage.MessageKeyID{Epoch: 1, ID: fmt.Appendf(nil, "leaf 0 gen %d", i)},
			Data:         randomBlob(uint64(i), 32)})
	}
	if err := s.Write(ctx, &storage.Batch{GroupID: gid, State: randomBlob(1, 4096), Epoch: 1, MessageKeys: keys}); err != nil {
		b.Fatal(err)
	}
	ratchet := [2][]byte{randomBlob(1, 1024), randomBlob(2, 1024)}
	b.ResetTimer()
	for i := range b.N {
		if i > 0 && i%len(keys) == 0 {
			b.StopTimer()
			if err := s.Write(ctx, &storage.Batch{GroupID: gid, MessageKeys: keys}); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		err := s.Write(ctx, &storage.Batch{GroupID: gid,
			DeleteMessageKeys: []storage.MessageKeyID{keys[i%len(keys)].MessageKeyID},
			Epochs:            []storage.EpochRecord{{Epoch: 1, Data: ratchet[i%2]}},
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAddKeyPackage is a write that deletes nothing, so it skips the
// checkpoint: the cost of a durable commit alone.
func BenchmarkAddKeyPackage(b *testing.B) {
	ctx := context.Background()
	s, _ := openTemp(b, nil)
	v := randomBlob(1, 200)
	b.ResetTimer()
	for i := range b.N {
		if err := s.Write(ctx, &storage.Batch{KeyPackages: []storage.Record{{Key: fmt.Appendf(nil, "ref %d", i), Value: v}}}); err != nil {
			b.Fatal(err)
		}
	}
}
