package mls_test

// Benchmarks of saved group state (docs/BENCHMARKS-state.md):
//
//	go test ./mls -run '^$' -bench 'BenchmarkState' -benchtime 10x -timeout 30m
//
// A group of n members is built the way large deployments do it: one
// creator commits n-1 Adds in a single commit. The KeyPackages and the
// group are built once per process and shared by every benchmark and -count
// run, outside the timed regions. The 10,000-member size is skipped with
// -short.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mlskit/mlskit/mls"
	"github.com/mlskit/mlskit/storage"
	"github.com/mlskit/mlskit/storage/memory"
	"github.com/mlskit/mlskit/storage/sqlite"
)

var stateSizes = []int{100, 1000, 10000}

var (
	stateMu     sync.Mutex
	stateGroups = map[int][]byte{} // n -> the creator's group, MarshalBinary
)

// stateGroup returns the creator of an n-member group, freshly decoded from
// the cached encoding so every benchmark starts from the same state.
func stateGroup(b *testing.B, n int) *mls.Group {
	b.Helper()
	if n >= 10000 && testing.Short() {
		b.Skip("10,000 members only without -short")
	}
	stateMu.Lock()
	defer stateMu.Unlock()
	enc, ok := stateGroups[n]
	if !ok {
		cfg := &mls.Config{}
		sig, err := mls.GenerateSignatureKeyPair(fastSuite, nil)
		if err != nil {
			b.Fatal(err)
		}
		g, err := mls.NewGroup(cfg, []byte("state bench"), mls.BasicCredential([]byte("creator")), sig, nil)
		if err != nil {
			b.Fatal(err)
		}
		adds := make([]*mls.Proposal, 0, n-1)
		for i := 1; i < n; i++ {
			s, err := mls.GenerateSignatureKeyPair(fastSuite, nil)
			if err != nil {
				b.Fatal(err)
			}
			kb, err := mls.NewKeyPackage(cfg, mls.BasicCredential(fmt.Appendf(nil, "member %d", i)), s, nil)
			if err != nil {
				b.Fatal(err)
			}
			adds = append(adds, mls.AddProposal(kb.KeyPackage))
		}
		if _, err := g.Commit(&mls.CommitOptions{Proposals: adds}); err != nil {
			b.Fatal(err)
		}
		if err := g.MergePendingCommit(); err != nil {
			b.Fatal(err)
		}
		// One application message, so the state holds a ratchet record.
		if _, err := g.Encrypt([]byte("hello"), nil); err != nil {
			b.Fatal(err)
		}
		if enc, err = g.MarshalBinary(); err != nil {
			b.Fatal(err)
		}
		stateGroups[n] = enc
		runtime.GC()
	}
	g, err := mls.UnmarshalGroup(&mls.Config{}, enc)
	if err != nil {
		b.Fatal(err)
	}
	return g
}

type benchStore struct {
	name string
	open func(b *testing.B) (storage.Store, string)
}

var benchStores = []benchStore{
	{"memory", func(b *testing.B) (storage.Store, string) { return memory.New(), "" }},
	{"sqlite", func(b *testing.B) (storage.Store, string) {
		path := filepath.Join(b.TempDir(), "bench.db")
		s, err := sqlite.Open(path, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s, path
	}},
}

// BenchmarkStateSaveFull: the first Save of a group to a store, every
// record written (what joining or creating a group costs), and the bytes
// stored per member.
func BenchmarkStateSaveFull(b *testing.B) {
	for _, n := range stateSizes {
		for _, bs := range benchStores {
			b.Run(fmt.Sprintf("members=%d/%s", n, bs.name), func(b *testing.B) {
				g := stateGroup(b, n)
				ctx := context.Background()
				var path string
				var cpu cpuMeter
				for b.Loop() {
					b.StopTimer()
					var st storage.Store
					st, path = bs.open(b)
					g2, err := mls.UnmarshalGroup(&mls.Config{}, mustMarshal(b, g))
					if err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					cpu.measure(func() {
						if err := g2.Save(ctx, st); err != nil {
							b.Fatal(err)
						}
					})
				}
				cpu.report(b)
				enc := mustMarshal(b, g)
				b.ReportMetric(float64(len(enc))/float64(n), "state-B/member")
				if path != "" {
					// The database and its WAL: a first save is pure
					// inserts, which stay in the WAL until a checkpoint.
					var size int64
					for _, f := range []string{path, path + "-wal"} {
						if fi, err := os.Stat(f); err == nil {
							size += fi.Size()
						}
					}
					b.ReportMetric(float64(size)/float64(n), "file-B/member")
				}
			})
		}
	}
}

// BenchmarkStateSaveMessage: Save after one Encrypt, the per-message cost
// (one ratchet record rewritten).
func BenchmarkStateSaveMessage(b *testing.B) {
	for _, n := range stateSizes {
		for _, bs := range benchStores {
			b.Run(fmt.Sprintf("members=%d/%s", n, bs.name), func(b *testing.B) {
				g := stateGroup(b, n)
				st, _ := bs.open(b)
				ctx := context.Background()
				var cpu cpuMeter
				if err := g.Save(ctx, st); err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					b.StopTimer()
					if _, err := g.Encrypt([]byte("hello"), nil); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					cpu.measure(func() {
						if err := g.Save(ctx, st); err != nil {
							b.Fatal(err)
						}
					})
				}
				cpu.report(b)
			})
		}
	}
}

// BenchmarkStateSaveEpoch: Save after merging a commit, the per-epoch cost
// (new state, the new epoch's record with the tree, the old epoch rewritten
// in its past form).
func BenchmarkStateSaveEpoch(b *testing.B) {
	for _, n := range stateSizes {
		for _, bs := range benchStores {
			b.Run(fmt.Sprintf("members=%d/%s", n, bs.name), func(b *testing.B) {
				g := stateGroup(b, n)
				st, _ := bs.open(b)
				ctx := context.Background()
				var cpu cpuMeter
				if err := g.Save(ctx, st); err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					b.StopTimer()
					// An Add without a path: the cheapest commit to make
					// at this size, and the Save that follows is the same.
					sig, err := mls.GenerateSignatureKeyPair(fastSuite, nil)
					if err != nil {
						b.Fatal(err)
					}
					kb, err := mls.NewKeyPackage(&mls.Config{}, mls.BasicCredential([]byte("newcomer")), sig, nil)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := g.Commit(&mls.CommitOptions{OmitPath: true, RatchetTreeOutOfBand: true,
						Proposals: []*mls.Proposal{mls.AddProposal(kb.KeyPackage)}}); err != nil {
						b.Fatal(err)
					}
					if err := g.MergePendingCommit(); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					cpu.measure(func() {
						if err := g.Save(ctx, st); err != nil {
							b.Fatal(err)
						}
					})
				}
				cpu.report(b)
			})
		}
	}
}

// BenchmarkStateLoad: LoadGroup, with every check it makes (tree hash,
// private keys against the tree, confirmation tag, secret trees).
func BenchmarkStateLoad(b *testing.B) {
	for _, n := range stateSizes {
		for _, bs := range benchStores {
			b.Run(fmt.Sprintf("members=%d/%s", n, bs.name), func(b *testing.B) {
				g := stateGroup(b, n)
				st, _ := bs.open(b)
				ctx := context.Background()
				if err := g.Save(ctx, st); err != nil {
					b.Fatal(err)
				}
				var cpu cpuMeter
				for b.Loop() {
					cpu.measure(func() {
						if _, err := mls.LoadGroup(ctx, &mls.Config{}, st, g.GroupID()); err != nil {
							b.Fatal(err)
						}
					})
				}
				cpu.report(b)
			})
		}
	}
}

// BenchmarkStateUnmarshal: UnmarshalGroup alone, no store.
func BenchmarkStateUnmarshal(b *testing.B) {
	for _, n := range stateSizes {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			enc := mustMarshal(b, stateGroup(b, n))
			b.SetBytes(int64(len(enc)))
			var cpu cpuMeter
			for b.Loop() {
				cpu.measure(func() {
					if _, err := mls.UnmarshalGroup(&mls.Config{}, enc); err != nil {
						b.Fatal(err)
					}
				})
			}
			cpu.report(b)
			b.ReportMetric(float64(len(enc))/float64(n), "state-B/member")
		})
	}
}

func mustMarshal(b *testing.B, g *mls.Group) []byte {
	b.Helper()
	enc, err := g.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	return enc
}

// cpuMeter adds up the process CPU time (user and system) spent in the
// measured calls. The machine these numbers come from is shared, so wall
// time per op (ns/op) is inflated by other processes; CPU time is what the
// operation costs. It includes the garbage collector's background work.
type cpuMeter struct {
	total time.Duration
	n     int
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (m *cpuMeter) measure(f func()) {
	start := processCPU()
	f()
	m.total += processCPU() - start
	m.n++
}

func (m *cpuMeter) report(b *testing.B) {
	if m.n > 0 {
		b.ReportMetric(float64(m.total.Microseconds())/1000/float64(m.n), "cpu-ms/op")
	}
}
