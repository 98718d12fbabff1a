package suite

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding"
	"hash"
	"sync"
)

// HMAC (RFC 2104) for the hot paths of the secret tree and key schedule:
// ExpandWithLabel and DeriveTreeSecret run once per message key, and
// crypto/hmac.New allocates two digests, two pads and its own state on every
// call, which costs more than the few compression calls it makes. macState
// holds the digests and scratch buffers of one computation; states are
// recycled through a sync.Pool per hash, so each goroutine has its own
// while it computes and the Suite itself stays immutable and stateless.
type macState struct {
	inner, outer hash.Hash
	blockSize    int
	size         int
	// The digests' states saved and restored by keyed HMACs (setKey): the
	// inner after K XOR ipad, the outer after K XOR opad.
	innerSave, outerSave   encoding.BinaryAppender
	innerLoad, outerLoad   encoding.BinaryUnmarshaler
	innerKeyed, outerKeyed []byte
	pad                    [128]byte // ipad then opad; block size is at most 128
	t                      [64]byte  // T(i) of HKDF-Expand, or the inner digest
	info                   []byte    // KDFLabel scratch
	ctr                    [1]byte   // HKDF-Expand block counter (here so it does not escape per call)
}

// maxPooledInfo bounds the scratch kept in the pool after a call with an
// unusually large context.
const maxPooledInfo = 1024

// kdfHash is one of the hashes HKDF runs over, with its pool of HMAC
// states. The MLS key schedule (Suite) and the HPKE key schedules (RFC 9180:
// the KEM's ExtractAndExpand, DeriveKeyPair, KeySchedule) share the pools
// of their hash.
type kdfHash struct {
	new  func() hash.Hash
	size int       // Nh
	macs sync.Pool // of *macState
}

var (
	kdfSHA256 = newKDFHash(sha256.New)
	kdfSHA384 = newKDFHash(sha512.New384)
	kdfSHA512 = newKDFHash(sha512.New)
)

func newKDFHash(h func() hash.Hash) *kdfHash {
	k := &kdfHash{new: h, size: h().Size()}
	k.macs.New = func() any {
		in, out := h(), h()
		m := &macState{inner: in, outer: out, blockSize: in.BlockSize(), size: in.Size()}
		var ok1, ok2, ok3, ok4 bool
		m.innerSave, ok1 = in.(encoding.BinaryAppender)
		m.outerSave, ok2 = out.(encoding.BinaryAppender)
		m.innerLoad, ok3 = in.(encoding.BinaryUnmarshaler)
		m.outerLoad, ok4 = out.(encoding.BinaryUnmarshaler)
		if !ok1 || !ok2 || !ok3 || !ok4 {
			panic("suite: the standard library's hash cannot save its state")
		}
		return m
	}
	return k
}

func (k *kdfHash) get() *macState { return k.macs.Get().(*macState) }

// put wipes key-derived state and returns m to the pool.
func (k *kdfHash) put(m *macState) {
	clear(m.pad[:])
	clear(m.t[:])
	clear(m.innerKeyed)
	clear(m.outerKeyed)
	m.innerKeyed, m.outerKeyed = m.innerKeyed[:0], m.outerKeyed[:0]
	m.inner.Reset()
	m.outer.Reset()
	if cap(m.info) > maxPooledInfo {
		m.info = nil
	} else {
		clear(m.info[:cap(m.info)])
	}
	k.macs.Put(m)
}

func (s *Suite) getMAC() *macState  { return s.kdf.get() }
func (s *Suite) putMAC(m *macState) { s.kdf.put(m) }

// hmac returns HMAC(key, a || b || c) (RFC 2104) in m.t. a may alias m.t.
func (m *macState) hmac(key, a, b, c []byte) []byte {
	m.begin(key)
	m.inner.Write(a)
	m.inner.Write(b)
	m.inner.Write(c)
	return m.finish()
}

// begin starts HMAC(key, ...): the inner hash has absorbed K XOR ipad, and
// m.pad holds K XOR opad for finish. The message goes to m.inner.
func (m *macState) begin(key []byte) {
	bs := m.blockSize
	pad := m.pad[:bs]
	if len(key) > bs {
		m.outer.Reset()
		m.outer.Write(key)
		key = m.outer.Sum(pad[:0]) // K = H(K), then padded with zeros
		clear(pad[len(key):])
	} else {
		copy(pad, key)
		clear(pad[len(key):])
	}
	for i := range pad {
		pad[i] ^= 0x36
	}
	m.inner.Reset()
	m.inner.Write(pad)
	for i := range pad {
		pad[i] ^= 0x36 ^ 0x5c
	}
}

// finish returns the HMAC begun by begin, in m.t.
func (m *macState) finish() []byte {
	m.outer.Reset()
	m.outer.Write(m.pad[:m.blockSize])
	m.outer.Write(m.inner.Sum(m.t[:0]))
	return m.outer.Sum(m.t[:0])
}

// expand fills out with HKDF-Expand(prk, info, len(out)) (RFC 5869,
// Section 2.3).
func (m *macState) expand(out, prk, info []byte) {
	m.expandWith(out, info, func(a, b, c []byte) []byte { return m.hmac(prk, a, b, c) })
}

// expandWith is HKDF-Expand's loop with mac as HMAC(PRK, a || b || c),
// returning its result in m.t.
func (m *macState) expandWith(out, info []byte, mac func(a, b, c []byte) []byte) {
	m.ctr[0] = 0
	var prev []byte // T(0) is empty
	for done := 0; done < len(out); {
		m.ctr[0]++
		t := mac(prev, info, m.ctr[:])
		done += copy(out[done:], t)
		prev = t
	}
}

// setKey prepares several HMACs under one key (hmacKeyed, expandKeyed):
// the two compressions of the padded key, half of a short HMAC's, are done
// once and the digests' states kept, to be restored for each.
func (m *macState) setKey(key []byte) {
	m.begin(key)
	m.outer.Reset()
	m.outer.Write(m.pad[:m.blockSize])
	var err1, err2 error
	m.innerKeyed, err1 = m.innerSave.AppendBinary(m.innerKeyed[:0])
	m.outerKeyed, err2 = m.outerSave.AppendBinary(m.outerKeyed[:0])
	if err1 != nil || err2 != nil {
		panic("suite: saving a digest's state failed")
	}
}

// hmacKeyed returns HMAC(key, a || b || c) in m.t for the key of setKey.
// a may alias m.t.
func (m *macState) hmacKeyed(a, b, c []byte) []byte {
	if m.innerLoad.UnmarshalBinary(m.innerKeyed) != nil {
		panic("suite: restoring a digest's state failed")
	}
	m.inner.Write(a)
	m.inner.Write(b)
	m.inner.Write(c)
	in := m.inner.Sum(m.t[:0])
	if m.outerLoad.UnmarshalBinary(m.outerKeyed) != nil {
		panic("suite: restoring a digest's state failed")
	}
	m.outer.Write(in)
	return m.outer.Sum(m.t[:0])
}

// expandKeyed is expand with the key of setKey as the PRK.
func (m *macState) expandKeyed(out, info []byte) { m.expandWith(out, info, m.hmacKeyed) }
