package keyschedule

import (
	"fmt"
	"log/slog"
)

// redacted is what a Secret prints as, whatever the verb.
const redacted = "[redacted]"

// Secret is key material: an epoch secret, a ratchet key or nonce, a PSK. It
// is a plain byte slice for the code that must use it, but it never prints:
// fmt (every verb, including %x and %#v) and log/slog show "[redacted]", so a
// secret passed to a log or wrapped into an error by mistake does not leak
// (house style, Errors 6). encoding/json writes "[redacted]" too.
//
// RFC 9420, Section 9.2 requires consumed secrets to be deleted; Erase
// overwrites a secret's bytes in place. Go may have copied the bytes
// elsewhere (the garbage collector does not move heap objects, but callers
// may have), so erasure is best effort.
type Secret []byte

// String returns "[redacted]".
func (Secret) String() string { return redacted }

// GoString returns "[redacted]", for %#v.
func (Secret) GoString() string { return redacted }

// Format writes "[redacted]" for every verb, so that %x, %q and %v cannot
// print the bytes.
func (Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue makes log/slog print "[redacted]".
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON writes "[redacted]", so that a struct holding secrets (an
// Epoch, say) logged through slog's JSON handler or encoding/json does not
// leak them. Code that must serialize a secret converts it to []byte
// explicitly.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// Erase overwrites the secret with zeros. It is safe on a nil Secret.
func (s Secret) Erase() { clear(s) }

// Clone returns a copy of s that the caller owns (nil for nil).
func (s Secret) Clone() Secret {
	if s == nil {
		return nil
	}
	return append(Secret(make([]byte, 0, len(s))), s...)
}
