package framing

import (
	"bytes"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/wire"
)

// TestVerifyClearsItsBuffer: Sign and Verify lay the FramedContentTBS out
// in a pooled buffer (a commit to a large sparse tree is tens of
// kilobytes), and that buffer holds the message's content, an application
// message's plaintext included. It goes back to the pool cleared, whether
// the signature verified or not, and the next Verify, in the same buffer,
// is judged on its own content.
func TestVerifyClearsItsBuffer(t *testing.T) {
	// One P and no collection: what Verify put back is what Get returns.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	g := newTestGroup(t, suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	secret := bytes.Repeat([]byte("plaintext of a member "), 100)
	c := g.content(1, wire.ContentTypeApplication)
	c.ApplicationData = secret
	good := g.signed(c, wire.WireFormatPrivateMessage)
	bad := *good
	bad.Auth.Signature = bytes.Clone(good.Auth.Signature)
	bad.Auth.Signature[0] ^= 1
	for _, tc := range []struct {
		name string
		ac   *wire.AuthenticatedContent // nil: sign c
		ok   bool
	}{{"verified", good, true}, {"refused", &bad, false}, {"verified again", good, true}, {"signed", nil, true}} {
		var bp *[]byte
		// The race detector has the pool drop a quarter of what is
		// put back, at random: try again.
		for range 20 {
			var err error
			if tc.ac == nil {
				_, err = Sign(g.signers[1], wire.WireFormatPrivateMessage, c, g.ctx)
			} else {
				err = Verify(g.s, g.pubs[1], tc.ac, g.ctx)
			}
			if (err == nil) != tc.ok {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if bp, _ = signBufs.Get().(*[]byte); bp != nil {
				break
			}
		}
		if bp == nil || cap(*bp) < len(secret) {
			t.Fatalf("%s: no buffer of the content's size back in the pool", tc.name)
		}
		used := (*bp)[:cap(*bp)]
		if i := bytes.IndexFunc(used, func(r rune) bool { return r != 0 }); i >= 0 {
			t.Fatalf("%s: the pooled buffer still holds content at byte %d", tc.name, i)
		}
		signBufs.Put(bp)
	}
}
