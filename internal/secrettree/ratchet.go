package secrettree

import (
	"math"

	"github.com/mlskit/mlskit/internal/keyschedule"
	"github.com/mlskit/mlskit/internal/suite"
)

// ratchet is one hash ratchet of a leaf (RFC 9420, Section 9.1):
//
//	ratchet_secret_[N]_[j]
//	      +--> DeriveTreeSecret(., "nonce", j, AEAD.Nn) = ratchet_nonce_[N]_[j]
//	      +--> DeriveTreeSecret(., "key", j,  AEAD.Nk)  = ratchet_key_[N]_[j]
//	      V
//	DeriveTreeSecret(., "secret", j, KDF.Nh) = ratchet_secret_[N]_[j+1]
//
// It holds ratchet_secret_[next] and the keys of skipped generations inside
// the out-of-order window: the tolerance generations below the newest
// generation reached (next-1). The window is a ring indexed by generation
// modulo the tolerance, so the generations in the window never collide, and
// it is allocated only when a generation is first skipped.
type ratchet struct {
	secret keyschedule.Secret // ratchet_secret_[next]; nil once exhausted
	next   uint64             // up to 2^32, when every generation is used
	window []entry
}

// entry is a kept skipped generation. key == nil marks an empty slot.
type entry struct {
	gen        uint32
	key, nonce keyschedule.Secret
}

func (e *entry) erase() {
	e.key.Erase()
	e.nonce.Erase()
	*e = entry{}
}

// keyNonce derives the key and nonce of generation next. The caller ensures
// next <= MaxUint32.
func (r *ratchet) keyNonce(s *suite.Suite) (key, nonce keyschedule.Secret) {
	key, nonce, _ = s.DeriveTreeKeys(r.secret, uint32(r.next), false)
	return key, nonce
}

// step is keyNonce then advance, the three derivations from one ratchet
// secret done together.
func (r *ratchet) step(s *suite.Suite, tolerance uint32) (key, nonce keyschedule.Secret) {
	key, nonce, ns := s.DeriveTreeKeys(r.secret, uint32(r.next), r.next < math.MaxUint32)
	r.moveTo(ns, tolerance)
	return key, nonce
}

// advance replaces ratchet_secret_[next] with ratchet_secret_[next+1],
// erasing the old secret (RFC 9420, Section 9.2), and erases the kept key
// that the move pushes out of the window.
func (r *ratchet) advance(s *suite.Suite, tolerance uint32) {
	var ns keyschedule.Secret
	if r.next < math.MaxUint32 {
		ns = s.DeriveTreeSecret(r.secret, labelSecret, uint32(r.next), s.HashSize())
	}
	r.moveTo(ns, tolerance)
}

// moveTo is advance with ratchet_secret_[next+1] derived: ns, or nil once
// the last generation is used.
func (r *ratchet) moveTo(ns keyschedule.Secret, tolerance uint32) {
	r.secret.Erase()
	r.secret = ns
	r.next++
	// The newest generation is now next-1, so the window is
	// [next-1-tolerance, next-2]; generation next-2-tolerance just left it.
	if r.window != nil && r.next >= uint64(tolerance)+2 {
		d := r.next - uint64(tolerance) - 2
		if e := &r.window[d%uint64(len(r.window))]; e.key != nil && uint64(e.gen) == d {
			e.erase()
		}
	}
}

// store keeps the key and nonce of a skipped generation. Whatever occupied
// its slot is older than the window and is erased.
func (r *ratchet) store(gen uint32, key, nonce keyschedule.Secret, tolerance uint32) {
	if tolerance == 0 {
		key.Erase()
		nonce.Erase()
		return
	}
	if r.window == nil {
		r.window = make([]entry, tolerance)
	}
	e := &r.window[uint64(gen)%uint64(len(r.window))]
	e.erase()
	*e = entry{gen: gen, key: key, nonce: nonce}
}

// lookup returns the kept entry of gen, or nil.
func (r *ratchet) lookup(gen uint32) *entry {
	if r.window == nil {
		return nil
	}
	e := &r.window[uint64(gen)%uint64(len(r.window))]
	if e.key == nil || e.gen != gen {
		return nil
	}
	return e
}

// take removes and returns the kept key and nonce of gen.
func (r *ratchet) take(gen uint32) (key, nonce keyschedule.Secret, ok bool) {
	e := r.lookup(gen)
	if e == nil {
		return nil, nil, false
	}
	key, nonce = e.key, e.nonce
	*e = entry{}
	return key, nonce, true
}

// kept returns how many skipped keys the ratchet holds.
func (r *ratchet) kept() int {
	n := 0
	for i := range r.window {
		if r.window[i].key != nil {
			n++
		}
	}
	return n
}

// erase zeroes everything the ratchet holds.
func (r *ratchet) erase() {
	r.secret.Erase()
	r.secret = nil
	for i := range r.window {
		r.window[i].erase()
	}
}
