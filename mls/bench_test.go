package mls_test

// Group benchmarks at scale (docs/BENCHMARKS.md): commit, process, add
// (with and without a path), join, encrypt and decrypt at 10 to 50,000
// members, on a sparse tree (one commit added everyone) and a full one
// (every member has committed a path). Each group is built once and shared
// by the operations and by every -count run of them (go test repeats each
// operation -count times in a row), then dropped.
//
// Each size first times the primitives the operations are made of
// (floor_bench_test.go) and each operation reports its floor (floor-ns) and
// the ratios of its median and minimum wall time to it (x-floor,
// x-floor-min) and of its median CPU time to the floor's total work
// (x-floor-cpu). Beside them, x-floor-all prices the floor's parallel
// work at the measured wall time of a round of it on all cores at once,
// which shows how much of a gap is the machine's cores slowing one another
// down rather than the code. Randomness is the default (crypto/rand), so path
// encryption runs in parallel as users get it.
//
//	go test ./mls -run '^$' -bench BenchmarkGroup -benchtime 20x -count 5 -timeout 300m -v
//
// The 10,000-member sizes run only with MLS_BENCH_LARGE=1, the 50,000-member
// full tree only with MLS_BENCH_HUGE=1 (neither with -short). Summarise the
// output with
//
//	MLS_BENCH_SUMMARY=bench.txt go test ./mls -run TestBenchSummary -v

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"math/bits"
	mrand "math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/mlskit/mlskit/mls"
)

const benchSuite = mls.X25519_AES128GCM_SHA256_Ed25519

var benchSizes = []int{10, 100, 1000, 10000, 50000}

const (
	largeSize = 10000 // and above: only with MLS_BENCH_LARGE=1
	hugeSize  = 50000 // full tree only, and only with MLS_BENCH_HUGE=1
)

func benchLargeEnabled() bool {
	return !testing.Short() && os.Getenv("MLS_BENCH_LARGE") == "1"
}

func benchHugeEnabled() bool {
	return !testing.Short() && os.Getenv("MLS_BENCH_HUGE") == "1"
}

// benchGroup is one built group and the members the operations use:
// creator (leaf 0) processes, committer (leaf 1, the creator's sibling, so
// the processor derives a key at every level of the path) commits and sends
// the messages processor decrypts, encryptor (the last leaf) encrypts.
type benchGroup struct {
	shape     mls.TreeShape
	creator   *mls.Group
	committer *mls.Group
	encryptor *mls.Group
	cfg       *mls.Config
	bundles   []*mls.KeyPackageBundle // by leaf; [0] is nil
	initKeys  [][]byte                // the bundles' init keys, which joining erases
	welcome   []byte                  // of the commit that added everyone
	build     []string                // how long each build phase took
	prims     primitives              // the floor's primitives, timed beside the operations
	fs        floorShape
}

var (
	benchMu    sync.Mutex
	benchCache = map[string]*benchGroup{}
)

func getBenchGroup(b *testing.B, kind string, n int) *benchGroup {
	benchMu.Lock()
	defer benchMu.Unlock()
	key := fmt.Sprintf("%s/%d", kind, n)
	if g, ok := benchCache[key]; ok {
		return g
	}
	start := time.Now()
	g, err := buildSparseBenchGroup(n)
	if err == nil && kind == "full" {
		err = g.fillPaths()
	}
	if err != nil {
		b.Fatalf("building %s group of %d: %v", kind, n, err)
	}
	g.build = append(g.build, fmt.Sprintf("total %v", time.Since(start).Round(time.Millisecond)))
	g.shape = mls.ShapeOf(g.creator)
	benchCache[key] = g
	runtime.GC() // don't bill the timed loops for collecting the build's garbage
	return g
}

func dropBenchGroup(kind string, n int) {
	benchMu.Lock()
	delete(benchCache, fmt.Sprintf("%s/%d", kind, n))
	benchMu.Unlock()
	runtime.GC()
}

// buildSparseBenchGroup makes a group of n members the way deployments and other
// implementations' benchmarks do: the creator commits one Add per member
// (with its default UpdatePath) and every member joins from the Welcome.
// The members at leaves 1 and n-1 join for real; the others' KeyPackage
// bundles are kept so fillPaths can act for them.
func buildSparseBenchGroup(n int) (*benchGroup, error) {
	return buildBenchGroupWith(n, &mls.Config{})
}

func buildBenchGroupWith(n int, cfg *mls.Config) (*benchGroup, error) {
	if n < 3 {
		return nil, fmt.Errorf("need at least 3 members")
	}
	g := &benchGroup{cfg: cfg, bundles: make([]*mls.KeyPackageBundle, n), initKeys: make([][]byte, n)}
	t0 := time.Now()
	sig, err := mls.GenerateSignatureKeyPair(benchSuite, nil)
	if err != nil {
		return nil, err
	}
	if g.creator, err = mls.NewGroup(cfg, []byte("bench group"), mls.BasicCredential([]byte("member 0")), sig, nil); err != nil {
		return nil, err
	}
	adds := make([]*mls.Proposal, 0, n-1)
	for i := 1; i < n; i++ {
		sig, err := mls.GenerateSignatureKeyPair(benchSuite, nil)
		if err != nil {
			return nil, err
		}
		kb, err := mls.NewKeyPackage(cfg, mls.BasicCredential(fmt.Appendf(nil, "member %d", i)), sig, nil)
		if err != nil {
			return nil, err
		}
		g.bundles[i] = kb
		g.initKeys[i] = bytes.Clone(kb.InitKey)
		adds = append(adds, mls.AddProposal(kb.KeyPackage))
	}
	t1 := time.Now()
	// The largest groups send the tree out of band, as deployments of
	// that size do: with the tree inside, the Welcome is tens of MB.
	oob := n >= hugeSize
	res, err := g.creator.Commit(&mls.CommitOptions{Proposals: adds, RatchetTreeOutOfBand: oob})
	if err != nil {
		return nil, err
	}
	for _, a := range res.Staged.Added {
		if int(a.Leaf) >= n || !bytes.Equal(a.KeyPackage.SignatureKey(), g.bundles[a.Leaf].Signer.PublicKey()) {
			return nil, fmt.Errorf("member added at an unexpected leaf %d", a.Leaf)
		}
	}
	if err := g.creator.MergePendingCommit(); err != nil {
		return nil, err
	}
	g.welcome = res.Welcome
	t2 := time.Now()
	// JoinFromWelcome erases the bundle's init key; the leaf key stays.
	var jo *mls.JoinOptions
	if oob {
		tree, err := g.creator.RatchetTree()
		if err != nil {
			return nil, err
		}
		jo = &mls.JoinOptions{RatchetTree: tree}
	}
	if g.committer, err = mls.JoinFromWelcome(cfg, res.Welcome, g.bundles[1], jo); err != nil {
		return nil, err
	}
	if g.encryptor, err = mls.JoinFromWelcome(cfg, res.Welcome, g.bundles[n-1], jo); err != nil {
		return nil, err
	}
	t3 := time.Now()
	g.build = append(g.build,
		fmt.Sprintf("%d KeyPackages %v", n-1, t1.Sub(t0).Round(time.Millisecond)),
		fmt.Sprintf("add-all commit (%d B, Welcome %d B) %v", len(res.Commit), len(res.Welcome), t2.Sub(t1).Round(time.Millisecond)),
		fmt.Sprintf("2 joins %v", t3.Sub(t2).Round(time.Millisecond)))
	return g, g.agree()
}

func (g *benchGroup) kept() []*mls.Group { return []*mls.Group{g.creator, g.committer, g.encryptor} }

func (g *benchGroup) agree() error {
	a := g.creator.EpochAuthenticator()
	for _, k := range g.kept()[1:] {
		if !bytes.Equal(k.EpochAuthenticator(), a) {
			return fmt.Errorf("kept members disagree at epoch %d", g.creator.Epoch())
		}
	}
	return nil
}

// fillPaths has every member commit an empty commit with a path, one at a
// time, so no parent node is left blank and no leaf unmerged. A kept member
// commits with its own Group; any other member commits from a fork of the
// committer's state with its own leaf and signing keys (mls.ForkAs). The
// three kept Groups process and merge every commit.
//
// Members go in bit-reversed leaf order (0, n/2, n/4, 3n/4, ...), so that
// each commit finds most of its copath already filled in: in leaf order the
// first commits would each encrypt to about n blank-subtree leaves and the
// build would cost O(n^2) encryptions; in this order it costs O(n log n).
func (g *benchGroup) fillPaths() error {
	t0 := time.Now()
	n := len(g.bundles)
	width := 1 << bits.Len(uint(n-1))
	keptAt := map[int]*mls.Group{0: g.creator, 1: g.committer, n - 1: g.encryptor}
	commits := 0
	for i := range width {
		leaf := int(bits.Reverse(uint(i)) >> (bits.UintSize - bits.Len(uint(width-1))))
		if leaf >= n {
			continue
		}
		from := keptAt[leaf]
		if from == nil {
			kb := g.bundles[leaf]
			f, err := mls.ForkAs(g.committer, mls.LeafIndex(leaf), kb.LeafKey, kb.Signer)
			if err != nil {
				return fmt.Errorf("fork as %d: %w", leaf, err)
			}
			from = f
		}
		res, err := from.Commit(nil)
		if err != nil {
			return fmt.Errorf("commit by %d: %w", leaf, err)
		}
		for _, k := range g.kept() {
			if k == from {
				if err := k.MergePendingCommit(); err != nil {
					return err
				}
				continue
			}
			r, err := k.Process(res.Commit)
			if err != nil {
				return fmt.Errorf("leaf %d processing commit by %d: %w", k.LeafIndex(), leaf, err)
			}
			if err := k.MergeStagedCommit(r.Commit); err != nil {
				return err
			}
		}
		commits++
	}
	if commits != n {
		return fmt.Errorf("%d commits for %d members", commits, n)
	}
	g.build = append(g.build, fmt.Sprintf("%d path commits %v", commits, time.Since(t0).Round(time.Millisecond)))
	if err := g.agree(); err != nil {
		return err
	}
	if s := mls.ShapeOf(g.creator); s.BlankParents != 0 || s.Unmerged != 0 || s.Parents != n-1 {
		return fmt.Errorf("tree not full after every member committed: %+v", s)
	}
	return nil
}

// benchUsage is the process's CPU time and its minor page faults so far.
func benchUsage() (time.Duration, int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), int64(ru.Minflt)
}

// benchSamples records each iteration's wall and CPU time, so a run reports its
// median and minimum, not only the mean that ns/op is, and the page faults
// (first touches of memory the process got from the kernel, or got back
// after returning it), which on some virtual machines cost as much as an
// operation at 1,000 members.
type benchSamples struct {
	wall, cpu []time.Duration
	faults    int64
	blocks    []primitives // benchProbe's primitives before each block of iterations
}

// benchProbe, when set, times the floor's primitives (11 calls each, the
// median) before every benchBlock timed iterations, outside the timing:
// reportFloor's paired ratio sets each iteration against the floor of the
// primitives timed just before its block.
var benchProbe *primitiveSet

const benchBlock = 10

func (s *benchSamples) time(b *testing.B, op func() error) {
	if benchProbe != nil && len(s.wall)%benchBlock == 0 {
		s.blocks = append(s.blocks, benchProbe.measure(11))
	}
	c0, f0 := benchUsage()
	w0 := time.Now()
	err := op()
	w := time.Since(w0)
	c, f := benchUsage()
	if err != nil {
		b.Fatal(err)
	}
	s.wall = append(s.wall, w)
	s.cpu = append(s.cpu, c-c0)
	s.faults += f - f0
}

// benchMedian is the median of v (the upper one of an even count); v is
// left as it was.
func benchMedian[T cmp.Ordered](v []T) T {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

func (s *benchSamples) report(b *testing.B) {
	if len(s.wall) == 0 {
		return
	}
	b.ReportMetric(float64(benchMedian(s.wall)), "med-ns/op")
	b.ReportMetric(float64(slices.Min(s.wall)), "min-ns/op")
	b.ReportMetric(float64(benchMedian(s.cpu)), "cpu-ns/op")
	b.ReportMetric(float64(s.faults)/float64(len(s.wall)), "faults/op")
}

func BenchmarkGroup(b *testing.B) {
	for _, kind := range []string{"sparse", "full"} {
		for _, n := range benchSizes {
			if n >= hugeSize && kind != "full" {
				continue
			}
			b.Run(fmt.Sprintf("%s/n=%d", kind, n), func(b *testing.B) {
				switch {
				case n >= hugeSize && !benchHugeEnabled():
					b.Skip("set MLS_BENCH_HUGE=1 (without -short) for 50,000 members")
				case n >= largeSize && n < hugeSize && !benchLargeEnabled():
					b.Skip("set MLS_BENCH_LARGE=1 (without -short) for 10,000 members")
				}
				g := getBenchGroup(b, kind, n)
				b.Logf("%s n=%d: tree %+v; built in %s", kind, n, g.shape, strings.Join(g.build, ", "))
				g.fs = shapeFor(g)
				ops := []struct {
					name string
					f    func(*testing.B)
				}{
					{"create_commit", g.benchCreateCommit},
					{"create_commit_groupinfo", g.benchCreateCommitGroupInfo},
					{"process_commit", g.benchProcessCommit},
					{"add_commit", g.benchAddCommit},
					{"add_commit_nopath", g.benchAddCommitNoPath},
					{"join", g.benchJoin},
					{"encrypt", g.benchEncrypt},
					{"decrypt", g.benchDecrypt},
				}
				for _, op := range ops {
					b.Run(op.name, func(b *testing.B) {
						// The floor's primitives, timed just before
						// the operation (and again after it, in
						// reportFloor), under the same load.
						runtime.GC()
						prims, err := measurePrimitives(101)
						if err != nil {
							b.Fatal(err)
						}
						g.prims = prims
						if benchProbe, err = newPrimitiveSet(); err != nil {
							b.Fatal(err)
						}
						defer func() { benchProbe = nil }()
						op.f(b)
						if err := benchProbe.fail; err != nil {
							b.Fatal(err)
						}
					})
				}
				// -count repeats each operation here, inside this
				// one call, so the group is not needed again: drop it
				// so that the next sizes' collections do not mark it.
				dropBenchGroup(kind, n)
			})
		}
	}
}

// reportFloor adds the operation's floor and the ratio of the median time
// to it (issue 14).
func (g *benchGroup) reportFloor(b *testing.B, op string, s *benchSamples, msgB, groupInfoB int) {
	if len(s.wall) == 0 {
		return
	}
	// Each primitive's time is the lower of its medians before and after
	// the operation: the floor errs low, never high.
	after, err := measurePrimitives(101)
	if err != nil {
		b.Fatal(err)
	}
	p := g.prims.min(after)
	fl, parts := p.floor(op, g.fs, msgB, groupInfoB, runtime.GOMAXPROCS(0), false)
	flCPU, _ := p.floor(op, g.fs, msgB, groupInfoB, 1, false)
	flAll, _ := p.floor(op, g.fs, msgB, groupInfoB, runtime.GOMAXPROCS(0), true)
	if fl <= 0 {
		return
	}
	// Three ratios: the median and the fastest wall time against the
	// floor with parallel work divided over the cores, and the median CPU
	// time against the floor's total work (what a busy machine, whose
	// other load stretches wall times, leaves comparable).
	b.ReportMetric(float64(fl), "floor-ns")
	b.ReportMetric(float64(benchMedian(s.wall))/float64(fl), "x-floor")
	b.ReportMetric(float64(slices.Min(s.wall))/float64(fl), "x-floor-min")
	b.ReportMetric(float64(benchMedian(s.cpu))/float64(flCPU), "x-floor-cpu")
	// Beside them, not instead: the median against the floor whose
	// parallel part is priced at what the cores give working together.
	b.ReportMetric(float64(benchMedian(s.wall))/float64(flAll), "x-floor-all")
	// And paired: each iteration against the floor of the primitives
	// timed just before its block of benchBlock iterations, the median of
	// those ratios. The floor above takes its primitives from loops run
	// before and after the whole operation; on a host whose speed changes
	// from moment to moment (this project's 2-core VM) the operation's
	// iterations and those loops can see different machines.
	if len(s.blocks) == (len(s.wall)+benchBlock-1)/benchBlock {
		r := make([]float64, len(s.wall))
		for i, w := range s.wall {
			f, _ := s.blocks[i/benchBlock].floor(op, g.fs, msgB, groupInfoB, runtime.GOMAXPROCS(0), false)
			r[i] = float64(w) / float64(f)
		}
		b.ReportMetric(benchMedian(r), "x-floor-paired")
	}
	b.Logf("%s floor %v = %s; GOMAXPROCS %d; %v", op, fl, parts, runtime.GOMAXPROCS(0), p)
}

// create_commit: the committer makes an empty commit with an UpdatePath,
// encoded as a PrivateMessage; it is discarded, not merged. No GroupInfo is
// asked for.
func (g *benchGroup) benchCreateCommit(b *testing.B) {
	g.benchCommit(b, "create_commit", nil)
}

// create_commit_groupinfo: as create_commit, also asking for the signed
// GroupInfo of the new epoch with the ratchet tree in it (what a client
// hands the delivery service for external joins), which is linear in the
// group.
func (g *benchGroup) benchCreateCommitGroupInfo(b *testing.B) {
	g.benchCommit(b, "create_commit_groupinfo", &mls.CommitOptions{GroupInfo: true})
}

func (g *benchGroup) benchCommit(b *testing.B, op string, opts *mls.CommitOptions) {
	var s benchSamples
	var commitB, groupInfoB int
	runtime.GC()
	for b.Loop() {
		s.time(b, func() error {
			res, err := g.committer.Commit(opts)
			if err != nil {
				return err
			}
			commitB, groupInfoB = len(res.Commit), len(res.GroupInfo)
			return nil
		})
		g.committer.DiscardPendingCommit()
	}
	s.report(b)
	g.reportFloor(b, op, &s, commitB, groupInfoB)
	b.ReportMetric(float64(commitB), "commit-B")
	if groupInfoB > 0 {
		b.ReportMetric(float64(groupInfoB), "groupinfo-B")
	}
}

// process_commit: the processor decodes, decrypts, validates and stages a
// fresh commit (each PrivateMessage's key is used once, so the committer
// makes new ones, untimed, a batch at a time, and the garbage of making
// them is collected before the timed processing); not merged.
// competingCommits returns n empty commits of the committer for the
// current epoch, none merged: commits that compete for the epoch, each
// under its own handshake generation (a generation's key is used once).
func (g *benchGroup) competingCommits(tb testing.TB, n int) [][]byte {
	out := make([][]byte, 0, n)
	for range n {
		res, err := g.committer.Commit(nil)
		if err != nil {
			tb.Fatal(err)
		}
		g.committer.DiscardPendingCommit()
		out = append(out, res.Commit)
	}
	return out
}

func (g *benchGroup) benchProcessCommit(b *testing.B) {
	var s benchSamples
	var queue [][]byte
	commitB := 0
	for b.Loop() {
		if len(queue) == 0 {
			b.StopTimer()
			queue = g.competingCommits(b, 8)
			runtime.GC()
			b.StartTimer()
		}
		msg := queue[0]
		queue = queue[1:]
		commitB = len(msg)
		s.time(b, func() error {
			r, err := g.creator.Process(msg)
			if err == nil && (r.Commit == nil || !r.Commit.PathUpdated) {
				err = fmt.Errorf("not a staged commit with a path")
			}
			return err
		})
	}
	s.report(b)
	g.reportFloor(b, "process_commit", &s, commitB, 0)
	b.ReportMetric(float64(commitB), "commit-B")
}

// newJoiner makes a fresh KeyPackage (untimed by the callers) and returns it
// encoded, as it arrives from the delivery service.
func (g *benchGroup) newJoiner(b testing.TB) (*mls.KeyPackageBundle, []byte) {
	sig, err := mls.GenerateSignatureKeyPair(benchSuite, nil)
	if err != nil {
		b.Fatal(err)
	}
	kb, err := mls.NewKeyPackage(g.cfg, mls.BasicCredential([]byte("joiner")), sig, nil)
	if err != nil {
		b.Fatal(err)
	}
	return kb, kb.KeyPackage.Bytes()
}

// joinerWelcome makes a fresh joiner and the Welcome of the committer's
// commit adding it (with the ratchet tree; the commit is discarded).
func (g *benchGroup) joinerWelcome(tb testing.TB) (*mls.KeyPackageBundle, []byte) {
	kb, kpBytes := g.newJoiner(tb)
	kp, err := mls.ParseKeyPackage(kpBytes)
	if err != nil {
		tb.Fatal(err)
	}
	res, err := g.committer.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(kp)}})
	if err != nil {
		tb.Fatal(err)
	}
	g.committer.DiscardPendingCommit()
	return kb, res.Welcome
}

// add_commit: the committer parses a new member's KeyPackage and commits
// its Add with an UpdatePath, producing the commit and a Welcome whose
// GroupInfo carries the ratchet tree; not merged.
func (g *benchGroup) benchAddCommit(b *testing.B) {
	g.benchAdd(b, "add_commit", false)
}

// add_commit_nopath: as add_commit without the UpdatePath (OmitPath), the
// add_commit of implementations that send none for an Add (RFC 9420,
// Section 12.4 does not require one).
func (g *benchGroup) benchAddCommitNoPath(b *testing.B) {
	g.benchAdd(b, "add_commit_nopath", true)
}

func (g *benchGroup) benchAdd(b *testing.B, op string, omitPath bool) {
	var s benchSamples
	var commitB, welcomeB int
	runtime.GC()
	for b.Loop() {
		b.StopTimer()
		_, kpBytes := g.newJoiner(b)
		b.StartTimer()
		s.time(b, func() error {
			kp, err := mls.ParseKeyPackage(kpBytes)
			if err != nil {
				return err
			}
			res, err := g.committer.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(kp)}, OmitPath: omitPath})
			if err != nil {
				return err
			}
			if res.Staged.PathUpdated == omitPath {
				return fmt.Errorf("path sent: %v", res.Staged.PathUpdated)
			}
			commitB, welcomeB = len(res.Commit), len(res.Welcome)
			return nil
		})
		g.committer.DiscardPendingCommit()
	}
	s.report(b)
	g.reportFloor(b, op, &s, commitB, welcomeB)
	b.ReportMetric(float64(commitB), "commit-B")
	b.ReportMetric(float64(welcomeB), "welcome-B")
}

// join: a new member joins from a Welcome carrying the ratchet tree,
// validating the whole tree (RFC 9420, Section 12.4.3.1). The same Welcome
// is used each iteration; JoinFromWelcome erases the init key it used, so
// the key is put back (untimed) before each join.
func (g *benchGroup) benchJoin(b *testing.B) {
	kb, welcome := g.joinerWelcome(b)
	initKey := bytes.Clone(kb.InitKey)
	// The memory one member's state takes: the heap a joined Group holds
	// once the join's garbage is collected, per member of the group.
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	j, err := mls.JoinFromWelcome(g.cfg, welcome, kb, nil)
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	runtime.KeepAlive(j)
	var s benchSamples
	runtime.GC()
	for b.Loop() {
		b.StopTimer()
		kb.InitKey = bytes.Clone(initKey)
		b.StartTimer()
		s.time(b, func() error {
			j, err := mls.JoinFromWelcome(g.cfg, welcome, kb, nil)
			if err == nil && j.Epoch() != g.committer.Epoch()+1 {
				err = fmt.Errorf("joined at epoch %d", j.Epoch())
			}
			return err
		})
	}
	s.report(b)
	g.reportFloor(b, "join", &s, 0, len(welcome))
	b.ReportMetric(float64(len(welcome)), "welcome-B")
	b.ReportMetric(float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc))/float64(len(g.bundles)+1), "state-B/member")
}

var benchPlaintext = bytes.Repeat([]byte{'m'}, 100)

// encrypt: a 100-byte application message to PrivateMessage bytes.
func (g *benchGroup) benchEncrypt(b *testing.B) {
	var s benchSamples
	size := 0
	for b.Loop() {
		s.time(b, func() error {
			ct, err := g.encryptor.Encrypt(benchPlaintext, nil)
			size = len(ct)
			return err
		})
	}
	s.report(b)
	g.reportFloor(b, "encrypt", &s, size, 0)
	b.ReportMetric(float64(size), "msg-B")
}

// decrypt: the processor decodes and decrypts a fresh 100-byte application
// message from the committer (made untimed each iteration: each
// generation's key is used once). The sender is not the encryptor, whose
// ratchet the encrypt benchmark moves far ahead of any receiver.
func (g *benchGroup) benchDecrypt(b *testing.B) {
	var s benchSamples
	var queue [][]byte
	for b.Loop() {
		if len(queue) == 0 {
			// A batch at a time, as process_commit does: stopping
			// the benchmark's timer stops the world twice (it reads
			// the memory statistics), which once per decrypt
			// disturbed the decrypt right after it.
			b.StopTimer()
			for range 64 {
				ct, err := g.committer.Encrypt(benchPlaintext, nil)
				if err != nil {
					b.Fatal(err)
				}
				queue = append(queue, ct)
			}
			runtime.GC()
			b.StartTimer()
		}
		ct := queue[0]
		queue = queue[1:]
		s.time(b, func() error {
			r, err := g.creator.Process(ct)
			if err == nil && !bytes.Equal(r.Application, benchPlaintext) {
				err = fmt.Errorf("wrong plaintext")
			}
			return err
		})
	}
	s.report(b)
	g.reportFloor(b, "decrypt", &s, len(benchPlaintext), 0)
}

// TestLargePathEveryMemberDecrypts: on a sparse group of 40, a commit's
// UpdatePath holds 39 ciphertexts, enough for ratchettree to encrypt them
// in parallel (when GOMAXPROCS > 1); every member, each reading a different
// ciphertext, must process it and agree on the new epoch.
func TestLargePathEveryMemberDecrypts(t *testing.T) {
	g, err := buildSparseBenchGroup(40)
	if err != nil {
		t.Fatal(err)
	}
	res, err := g.creator.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.creator.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	want := g.creator.EpochAuthenticator()
	welcome := g.welcome
	for l := 1; l < len(g.bundles); l++ {
		kb := *g.bundles[l]
		kb.InitKey = g.initKeys[l]
		m, err := mls.JoinFromWelcome(g.cfg, welcome, &kb, nil)
		if err != nil {
			t.Fatalf("leaf %d joining: %v", l, err)
		}
		r, err := m.Process(res.Commit)
		if err != nil {
			t.Fatalf("leaf %d processing the commit: %v", l, err)
		}
		if err := m.MergeStagedCommit(r.Commit); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m.EpochAuthenticator(), want) {
			t.Fatalf("leaf %d disagrees on the new epoch", l)
		}
	}
}

// TestLargePathRepeatsUnderSeededRandom: with crypto/rand replaced by
// cryptotest.SetGlobalRandom and a seeded Config.Rand, building a group of
// 40 and committing gives the same bytes twice (ratchettree encrypts
// serially when crypto/rand is not the system source, so the draws happen in
// a fixed order).
func TestLargePathRepeatsUnderSeededRandom(t *testing.T) {
	run := func() []byte {
		cryptotest.SetGlobalRandom(t, 7)
		g, err := buildBenchGroupWith(40, &mls.Config{Rand: mrand.NewChaCha8([32]byte{1}),
			Now: func() time.Time { return time.Unix(1_800_000_000, 0) }})
		if err != nil {
			t.Fatal(err)
		}
		res, err := g.committer.Commit(nil)
		if err != nil {
			t.Fatal(err)
		}
		return res.Commit
	}
	a, b := run(), run()
	if !bytes.Equal(a, b) {
		t.Fatal("the same seeds gave different commits")
	}
}

// TestTreeEncodingMatches: the ratchet tree a Welcome or GroupInfo carries
// is the same whether leaves are copied from their kept encodings or encoded
// afresh, on a sparse tree, a full one, and after adds and updates (leaves
// from KeyPackages, UpdatePaths and Welcome decoding).
func TestTreeEncodingMatches(t *testing.T) {
	g, err := buildSparseBenchGroup(21)
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, m *mls.Group) {
		t.Helper()
		ok, err := mls.TreeEncodingsAgree(m)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Fatalf("%s: Encode differs from encoding each node", what)
		}
	}
	check("sparse", g.creator)
	if err := g.fillPaths(); err != nil {
		t.Fatal(err)
	}
	check("full", g.creator)
	check("full, joined member", g.encryptor)
	kb, kp := g.newJoiner(t)
	p, err := mls.ParseKeyPackage(kp)
	if err != nil {
		t.Fatal(err)
	}
	res, err := g.committer.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(p)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.committer.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	check("after an add", g.committer)
	j, err := mls.JoinFromWelcome(g.cfg, res.Welcome, kb, nil)
	if err != nil {
		t.Fatal(err)
	}
	check("joiner", j)
}

// TestBenchSummary turns the output of the BenchmarkGroup command into the
// table of docs/BENCHMARKS.md: per benchmark, over the -count runs,
// the median of the runs' median times, the minimum of their minimum
// times, and the median CPU time. It runs only when MLS_BENCH_SUMMARY names
// the output file.
func TestBenchSummary(t *testing.T) {
	path := os.Getenv("MLS_BENCH_SUMMARY")
	if path == "" {
		t.Skip("set MLS_BENCH_SUMMARY to a file of BenchmarkGroup output")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type acc struct {
		med, min, cpu, commitB, welcomeB, msgB []float64
		floor, xMed, xMin, xCPU, xAll, stateB  []float64
		xPaired                                []float64
		faults                                 []float64
	}
	runs := map[string]*acc{}
	var order []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 4 || !strings.HasPrefix(fs[0], "BenchmarkGroup/") {
			continue
		}
		name := fs[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i] // the GOMAXPROCS suffix
		}
		a := runs[name]
		if a == nil {
			a = &acc{}
			runs[name] = a
			order = append(order, name)
		}
		for i := 2; i+1 < len(fs); i += 2 {
			v, err := strconv.ParseFloat(fs[i], 64)
			if err != nil {
				continue
			}
			switch fs[i+1] {
			case "med-ns/op":
				a.med = append(a.med, v)
			case "min-ns/op":
				a.min = append(a.min, v)
			case "cpu-ns/op":
				a.cpu = append(a.cpu, v)
			case "commit-B":
				a.commitB = append(a.commitB, v)
			case "welcome-B":
				a.welcomeB = append(a.welcomeB, v)
			case "msg-B":
				a.msgB = append(a.msgB, v)
			case "floor-ns":
				a.floor = append(a.floor, v)
			case "x-floor":
				a.xMed = append(a.xMed, v)
			case "x-floor-min":
				a.xMin = append(a.xMin, v)
			case "x-floor-cpu":
				a.xCPU = append(a.xCPU, v)
			case "x-floor-all":
				a.xAll = append(a.xAll, v)
			case "x-floor-paired":
				a.xPaired = append(a.xPaired, v)
			case "state-B/member":
				a.stateB = append(a.stateB, v)
			case "faults/op":
				a.faults = append(a.faults, v)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(order) == 0 {
		t.Fatal("no BenchmarkGroup lines")
	}
	med := func(v []float64) float64 {
		if len(v) == 0 {
			return 0
		}
		return benchMedian(v)
	}
	dur := func(ns float64) string { // three significant digits
		if ns == 0 {
			return "-"
		}
		unit := 1.0
		for ns/unit >= 1000 {
			unit *= 10
		}
		return time.Duration(ns).Round(time.Duration(unit)).String()
	}
	bytesOf := func(v []float64) string {
		if len(v) == 0 {
			return ""
		}
		return strconv.Itoa(int(med(v)))
	}
	ratio := func(v []float64) string {
		if len(v) == 0 {
			return ""
		}
		return strconv.FormatFloat(med(v), 'f', 2, 64)
	}
	var out strings.Builder
	fmt.Fprintln(&out, "| benchmark | runs | median | min | median CPU | floor | median/floor | min/floor | CPU/CPU floor | median/floor, cores together | median of (each iteration / the floor timed before its block) | message B | Welcome B | state B/member | page faults/op |")
	fmt.Fprintln(&out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, name := range order {
		a := runs[name]
		minV := 0.0
		if len(a.min) > 0 {
			minV = slices.Min(a.min)
		}
		faults := ""
		if len(a.faults) > 0 {
			faults = strconv.FormatFloat(med(a.faults), 'f', 1, 64)
		}
		fmt.Fprintf(&out, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", strings.TrimPrefix(name, "BenchmarkGroup/"),
			len(a.med), dur(med(a.med)), dur(minV), dur(med(a.cpu)), dur(med(a.floor)), ratio(a.xMed), ratio(a.xMin), ratio(a.xCPU), ratio(a.xAll), ratio(a.xPaired),
			bytesOf(append(a.commitB, a.msgB...)), bytesOf(a.welcomeB), bytesOf(a.stateB), faults)
	}
	t.Log("\n" + out.String())
}
