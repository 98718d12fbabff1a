package mls_test

// The floor of each group operation (issue 14): the cost of the
// cryptographic primitives the operation cannot avoid at that group size,
// timed in the same run as the operation, so that the ratio measured/floor
// survives a noisy, shared machine. Work that is independent per node (the
// HPKE encryptions of an UpdatePath, the leaf signatures a joiner verifies)
// is divided over GOMAXPROCS once there is enough of it to spread, as the
// implementation does (internal/ratchettree/parallel.go).

import (
	"crypto/rand"
	"crypto/sha512"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/mls"
)

// primitives is the median time of one call of each primitive, suite 1.
type primitives struct {
	sign, verify time.Duration // Ed25519 SignWithLabel / VerifyWithLabel, 256-byte content
	seal, open   time.Duration // HPKE EncryptWithLabel / DecryptWithLabel of a 32-byte path secret
	derive       time.Duration // X25519 DeriveKeyPair (one node key)
	nodeHash     time.Duration // SHA-256 of a parent node's TreeHashInput (about 80 bytes)
	aead         time.Duration // AES-128-GCM seal of a 100-byte message
	// Per KiB of a large message: AES-128-GCM, SHA-256 (transcript hash)
	// and SHA-512 (Ed25519 hashes what it signs: twice to sign, once to
	// verify), measured over 64 KiB.
	aeadKiB, sha256KiB, sha512KiB time.Duration
	// The wall time of one round of verifications (HPKE seals) run on
	// every core at once, GOMAXPROCS goroutines together: what the
	// machine gives parallel work, where verify/GOMAXPROCS assumes the
	// cores do not slow one another down (shared caches, sibling
	// hyperthreads, a busy host). Used only by the "cores together"
	// floor (floor with together), reported beside the issue's.
	verifyAll, sealAll time.Duration
}

// parallelMin mirrors ratchettree's minParallel: below it a loop is serial.
const parallelMin = 16

// primitiveSet holds each primitive ready to run (suite 1, keys and inputs
// made once), to be timed in loops (measure): 101 calls each before and
// after an operation, and 11 before each block of its iterations
// (benchProbe).
type primitiveSet struct {
	sign, verify, seal, open, derive func() error
	nodeHash64, aead16               func() error // 64 node hashes; 16 AEAD seals of 100 bytes
	aead64K, sha256_64K, sha512_64K  func() error // one pass over 64 KiB
	fail                             error
}

func newPrimitiveSet() (*primitiveSet, error) {
	s, err := suite.Lookup(suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	if err != nil {
		return nil, err
	}
	sigPriv, sigPub, err := s.GenerateSignatureKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	kemPriv, kemPub, err := s.GenerateKEMKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	content := make([]byte, 256)
	secret := make([]byte, s.HashSize())
	hashIn := make([]byte, 80)
	key := make([]byte, s.KeySize())
	nonce := make([]byte, 12)
	msg := make([]byte, 100)
	sig, err := s.SignWithLabel(sigPriv, "LeafNodeTBS", content)
	if err != nil {
		return nil, err
	}
	kemOut, ct, err := s.EncryptWithLabel(kemPub, "UpdatePathNode", content[:64], secret)
	if err != nil {
		return nil, err
	}
	// A member signs with a Signer made once from its key, as a Group does.
	signer, err := s.NewSigner(sigPriv)
	if err != nil {
		return nil, err
	}
	big := make([]byte, 64<<10)
	return &primitiveSet{
		sign:   func() error { _, err := signer.SignWithLabel("LeafNodeTBS", content); return err },
		verify: func() error { return s.VerifyWithLabel(sigPub, "LeafNodeTBS", content, sig) },
		seal: func() error {
			_, _, err := s.EncryptWithLabel(kemPub, "UpdatePathNode", content[:64], secret)
			return err
		},
		open: func() error {
			_, err := s.DecryptWithLabel(kemPriv, "UpdatePathNode", content[:64], kemOut, ct)
			return err
		},
		derive: func() error { _, _, err := s.DeriveKeyPair(secret); return err },
		// A node hash is well under a microsecond: 64 per sample.
		nodeHash64: func() error {
			for range 64 {
				s.Hash(hashIn)
			}
			return nil
		},
		aead16: func() error {
			for range 16 {
				if _, err := s.Seal(key, nonce, nil, msg); err != nil {
					return err
				}
			}
			return nil
		},
		aead64K:    func() error { _, err := s.Seal(key, nonce, nil, big); return err },
		sha256_64K: func() error { s.Hash(big); return nil },
		sha512_64K: func() error { sha512.Sum512(big); return nil },
	}, nil
}

// run times one call of f, and notes its error.
func (ps *primitiveSet) run(f func() error) time.Duration {
	t0 := time.Now()
	err := f()
	d := time.Since(t0)
	if err != nil && ps.fail == nil {
		ps.fail = err
	}
	return d
}

// round is the wall time of one round of f on every core at once:
// GOMAXPROCS goroutines each run f k times; the round is the time over k.
func (ps *primitiveSet) round(f func() error, k int) time.Duration {
	procs := runtime.GOMAXPROCS(0)
	var mu sync.Mutex
	var wg sync.WaitGroup
	t0 := time.Now()
	for range procs {
		wg.Go(func() {
			for range k {
				if err := f(); err != nil {
					mu.Lock()
					if ps.fail == nil {
						ps.fail = err
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return time.Since(t0) / time.Duration(k)
}

// each applies f to every single-core primitive: the field of p that
// holds its time, the number of calls one run of it makes (the time is per
// call), and the function that runs it. The rounds on all cores (verifyAll,
// sealAll) are measure's own.
func (ps *primitiveSet) each(p *primitives, f func(d *time.Duration, per int, run func() error)) {
	f(&p.sign, 1, ps.sign)
	f(&p.verify, 1, ps.verify)
	f(&p.seal, 1, ps.seal)
	f(&p.open, 1, ps.open)
	f(&p.derive, 1, ps.derive)
	f(&p.nodeHash, 64, ps.nodeHash64)
	f(&p.aead, 16, ps.aead16)
	f(&p.aeadKiB, 64, ps.aead64K)
	f(&p.sha256KiB, 64, ps.sha256_64K)
	f(&p.sha512KiB, 64, ps.sha512_64K)
}

// measurePrimitives times each primitive reps times in a row and keeps the
// median of each.
func measurePrimitives(reps int) (primitives, error) {
	ps, err := newPrimitiveSet()
	if err != nil {
		return primitives{}, err
	}
	return ps.measure(reps), ps.fail
}

// measure times each primitive reps times in a row and keeps the median of
// each (the rounds on all cores reps/4+1 times).
func (ps *primitiveSet) measure(reps int) primitives {
	var p primitives
	d := make([]time.Duration, reps)
	// A round on all cores: GOMAXPROCS goroutines each run the primitive
	// 8 times; the round's time is the wall time over 8. (First: what
	// follows measure then runs after serial work, as after a loop.)
	rounds := d[:reps/4+1]
	roundMedian := func(f func() error) time.Duration {
		for i := range rounds {
			rounds[i] = ps.round(f, 8)
		}
		return benchMedian(rounds)
	}
	p.verifyAll = roundMedian(ps.verify)
	p.sealAll = roundMedian(ps.seal)
	ps.each(&p, func(out *time.Duration, per int, f func() error) {
		for i := range d {
			d[i] = ps.run(f)
		}
		*out = benchMedian(d) / time.Duration(per)
	})
	return p
}

// min returns the lower time of each primitive in p and q.
func (p primitives) min(q primitives) primitives {
	return primitives{sign: min(p.sign, q.sign), verify: min(p.verify, q.verify), seal: min(p.seal, q.seal),
		open: min(p.open, q.open), derive: min(p.derive, q.derive), nodeHash: min(p.nodeHash, q.nodeHash),
		aead: min(p.aead, q.aead), aeadKiB: min(p.aeadKiB, q.aeadKiB), sha256KiB: min(p.sha256KiB, q.sha256KiB),
		sha512KiB: min(p.sha512KiB, q.sha512KiB), verifyAll: min(p.verifyAll, q.verifyAll), sealAll: min(p.sealAll, q.sealAll)}
}

func (p primitives) String() string {
	return fmt.Sprintf("Ed25519 sign %v, verify %v; HPKE seal %v, open %v; X25519 derive %v; node hash %v; AEAD 100 B %v; per KiB: AEAD %v, SHA-256 %v, SHA-512 %v; a round on all cores: verify %v, seal %v",
		p.sign, p.verify, p.seal, p.open, p.derive, p.nodeHash, p.aead, p.aeadKiB, p.sha256KiB, p.sha512KiB, p.verifyAll, p.sealAll)
}

// par is the time of n independent operations of cost d spread over the
// cores, as the implementation spreads them.
func par(n, procs int, d time.Duration) time.Duration {
	if n < parallelMin || procs < 2 {
		return time.Duration(n) * d
	}
	// Whole rounds: n operations on procs workers take ceil(n/procs).
	return time.Duration((n+procs-1)/procs) * d
}

// floorShape is what the floors depend on in a group: the committer's
// filtered direct path (steps) and its ciphertexts, the node keys the
// processor derives, and, for a joiner, the members, the tree's width and
// its non-blank parents (one parent hash each), and the node keys a
// joiner derives from the path secret in its Welcome.
type floorShape struct {
	members, width, parents int
	steps, ciphertexts      int
	derived, joinerDerived  int
}

func shapeFor(g *benchGroup) floorShape {
	n := len(g.bundles)
	steps, cts, derived := mls.PathCounts(g.committer, 1, 0)
	// The joiner of the add_commit benchmarks takes the first free leaf,
	// n here (no leaf is blank), and gets the path secret of its common
	// ancestor with the committer.
	_, _, jd := mls.PathCounts(g.committer, 1, mls.LeafIndex(min(n, g.shape.Leaves-1)))
	return floorShape{members: n, width: 2*g.shape.Leaves - 1, parents: g.shape.Parents,
		steps: steps, ciphertexts: cts, derived: derived, joinerDerived: jd}
}

// floor returns the floor of operation op and how it is made up. msg is
// the size of the message the operation makes or reads (the commit), gi
// that of the GroupInfo in the Welcome (0 if none): the signatures, AEADs
// and the transcript hash run over those bytes, which on a sparse tree
// grow with the group (a ciphertext per unmerged leaf, a leaf per member).
//
// procs is the number of cores parallel work is divided over: GOMAXPROCS
// for the wall-time floor, 1 for the CPU-time floor. together prices that
// work at the measured round on all cores (verifyAll, sealAll) instead of
// at one core's time per operation.
func (p primitives) floor(op string, f floorShape, msg, gi, procs int, together bool) (time.Duration, string) {
	d := time.Duration(0)
	var parts []string
	add := func(n int, what string, each time.Duration) {
		d += time.Duration(n) * each
		parts = append(parts, fmt.Sprintf("%d %s", n, what))
	}
	// addPar adds n independent operations spread over procs cores: at
	// one core's time each (the floor), or with together set at
	// the measured time of a round on all cores (allEach).
	addPar := func(n int, what string, each, allEach time.Duration) {
		t := par(n, procs, each)
		if together && t < time.Duration(n)*each {
			t = time.Duration((n+procs-1)/procs) * allEach
		}
		d += t
		if t < time.Duration(n)*each {
			parts = append(parts, fmt.Sprintf("%d %s / %d cores", n, what, procs))
		} else {
			parts = append(parts, fmt.Sprintf("%d %s", n, what))
		}
	}
	// bytes: n passes of a primitive over size bytes.
	bytes := func(size, n int, what string, perKiB time.Duration) {
		if size < 4<<10 {
			return // small messages: counted in the per-call costs
		}
		d += time.Duration(int64(n) * int64(size) * int64(perKiB) / 1024)
		parts = append(parts, fmt.Sprintf("%dx%s over %d KiB", n, what, size>>10))
	}
	// A path: the new leaf key and one node key per filtered-path node,
	// the tree hash of the path (leaf and steps parents) and one parent
	// hash per step (RFC 9420, Sections 7.4, 7.8, 7.9).
	path := func() {
		add(f.steps+1, "derive", p.derive)
		addPar(f.ciphertexts, "seal", p.seal, p.sealAll)
		add(2*f.steps+1, "hash", p.nodeHash)
	}
	switch op {
	case "create_commit":
		// LeafNode and FramedContent signatures; the PrivateMessage.
		path()
		add(2, "sign", p.sign)
		add(2, "aead", p.aead)
		bytes(msg, 2, "SHA-512", p.sha512KiB)
		bytes(msg, 1, "SHA-256", p.sha256KiB)
		bytes(msg, 1, "AEAD", p.aeadKiB)
	case "create_commit_groupinfo":
		path()
		add(3, "sign", p.sign)
		add(2, "aead", p.aead)
		bytes(msg, 2, "SHA-512", p.sha512KiB)
		bytes(msg, 1, "SHA-256", p.sha256KiB)
		bytes(msg, 1, "AEAD", p.aeadKiB)
		bytes(gi, 2, "SHA-512", p.sha512KiB)
	case "process_commit":
		// Sender data and content AEAD, content and LeafNode
		// signatures, the one ciphertext for this member, the node keys
		// from the common ancestor up (checked against the path).
		add(2, "aead", p.aead)
		add(2, "verify", p.verify)
		add(1, "open", p.open)
		add(f.derived, "derive", p.derive)
		add(2*f.steps+1, "hash", p.nodeHash)
		bytes(msg, 1, "SHA-512", p.sha512KiB)
		bytes(msg, 1, "SHA-256", p.sha256KiB)
		bytes(msg, 1, "AEAD", p.aeadKiB)
	case "add_commit":
		// create_commit, plus the KeyPackage's two signatures, the
		// GroupSecrets sealed to its init key, the signed GroupInfo and
		// its encryption.
		path()
		add(2, "verify", p.verify)
		add(3, "sign", p.sign)
		add(1, "seal", p.seal)
		add(3, "aead", p.aead)
		bytes(msg, 2, "SHA-512", p.sha512KiB)
		bytes(msg, 1, "SHA-256", p.sha256KiB)
		bytes(msg, 1, "AEAD", p.aeadKiB)
		bytes(gi, 2, "SHA-512", p.sha512KiB)
		bytes(gi, 1, "AEAD", p.aeadKiB)
		bytes(gi, 1, "SHA-256", p.sha256KiB) // the GroupSecrets' HPKE context
	case "add_commit_nopath":
		add(2, "verify", p.verify)
		add(2, "sign", p.sign)
		add(1, "seal", p.seal)
		add(3, "aead", p.aead)
		add(f.steps+2, "hash", p.nodeHash) // the new leaf's path
		bytes(gi, 2, "SHA-512", p.sha512KiB)
		bytes(gi, 1, "AEAD", p.aeadKiB)
		bytes(gi, 1, "SHA-256", p.sha256KiB)
	case "join":
		// Every leaf signature (Section 12.4.3.1: verify the whole tree),
		// the GroupInfo signature, the GroupSecrets, the node keys above
		// the path secret, the tree hash of every node and one parent
		// hash per non-blank parent.
		addPar(f.members+1, "verify", p.verify, p.verifyAll)
		add(1, "verify", p.verify)
		add(1, "open", p.open)
		add(f.joinerDerived, "derive", p.derive)
		add(f.width+f.parents, "hash", p.nodeHash)
		add(1, "aead", p.aead)
		bytes(gi, 1, "SHA-512", p.sha512KiB)
		bytes(gi, 1, "AEAD", p.aeadKiB)
		bytes(gi, 1, "SHA-256", p.sha256KiB)
	case "encrypt":
		add(1, "sign", p.sign)
		add(2, "aead", p.aead)
	case "decrypt":
		add(1, "verify", p.verify)
		add(2, "aead", p.aead)
	default:
		return 0, ""
	}
	return d, fmt.Sprint(parts)
}
