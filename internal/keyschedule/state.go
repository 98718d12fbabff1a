package keyschedule

import (
	"errors"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/suite"
)

// Saving an epoch's secrets.
//
// A client that keeps a group across restarts stores the current epoch's
// secrets (RFC 9420, Section 8) with the rest of its state. The encoding,
// mlskit's own (the caller versions it), is the nine secrets of Epoch in
// field order, each as opaque<V>:
//
//	struct {
//	    opaque sender_data_secret<V>;
//	    opaque encryption_secret<V>;
//	    opaque exporter_secret<V>;
//	    opaque external_secret<V>;
//	    opaque confirmation_key<V>;
//	    opaque membership_key<V>;
//	    opaque resumption_psk<V>;
//	    opaque epoch_authenticator<V>;
//	    opaque init_secret<V>;
//	} EpochSecrets;
//
// epoch_secret itself is never stored: it is erased as soon as these are
// derived (Section 9.2). encryption_secret is stored as KDF.Nh zero bytes
// once erased (EraseEncryption), so the layout is unchanged: the secret
// tree, saved on its own, holds what is left of it. On reading, a zero
// encryption_secret is the erased one, and a non-zero one (saved before
// mlskit erased it) is erased at once: nothing needs it after a load.

// ErrCorruptSecrets means stored epoch secrets do not decode or have the
// wrong length for the cipher suite.
var ErrCorruptSecrets = errors.New("keyschedule: corrupt saved epoch secrets")

func (e *Epoch) fields() []*Secret {
	return []*Secret{&e.SenderData, &e.Encryption, &e.Exporter, &e.External, &e.Confirmation,
		&e.Membership, &e.Resumption, &e.Authenticator, &e.Init}
}

// MarshalSecrets appends the EpochSecrets encoding of e to b.
func (e *Epoch) MarshalSecrets(b *codec.Builder) {
	for _, f := range e.fields() {
		if f == &e.Encryption && *f == nil {
			b.AddOpaque(make([]byte, e.s.HashSize())) // erased
			continue
		}
		b.AddOpaque(*f)
	}
}

// ReadSecrets reads an EpochSecrets encoding from r for suite s. Every
// secret must be KDF.Nh bytes long. On failure nothing read is kept and the
// error wraps ErrCorruptSecrets.
func ReadSecrets(s *suite.Suite, r *codec.Reader) (*Epoch, error) {
	e := &Epoch{s: s}
	for _, f := range e.fields() {
		if !r.ReadOpaque((*[]byte)(f)) || len(*f) != s.HashSize() {
			e.Erase()
			return nil, ErrCorruptSecrets
		}
	}
	e.EraseEncryption()
	return e, nil
}
