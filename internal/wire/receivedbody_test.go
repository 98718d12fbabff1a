package wire

import (
	"bytes"
	"testing"

	"github.com/mlskit/mlskit/internal/codec"
)

// TestReceivedBody: a FramedContent whose body is marked as received
// encodes to the same bytes as one encoding its body afresh, for every
// content type, and the TBS and transcript input built from it (which copy
// the content) do too.
func TestReceivedBody(t *testing.T) {
	for _, ct := range []ContentType{ContentTypeApplication, ContentTypeProposal, ContentTypeCommit} {
		fc := sampleFramedContent(SenderTypeMember, ct)
		want, err := codec.Marshal(&fc)
		if err != nil {
			t.Fatal(err)
		}
		var got FramedContent
		if !codec.Unmarshal(want, got.Unmarshal) {
			t.Fatal("sample content does not decode")
		}
		switch ct {
		case ContentTypeCommit:
			got.SetReceivedBody(got.Commit.Raw())
		case ContentTypeProposal:
			got.SetReceivedBody(got.Proposal.Raw())
		default:
			b := codec.NewBuilder(nil)
			b.AddOpaque(got.ApplicationData)
			raw, _ := b.Bytes()
			got.SetReceivedBody(raw)
		}
		enc, err := codec.Marshal(&got)
		if err != nil || !bytes.Equal(enc, want) {
			t.Fatalf("content type %d: received body encodes differently (%v)", ct, err)
		}
		ctx := sampleGroupContext()
		tbsWant, _ := codec.Marshal(&FramedContentTBS{Version: ProtocolVersionMLS10, WireFormat: WireFormatPublicMessage, Content: fc, Context: &ctx})
		tbsGot, _ := codec.Marshal(&FramedContentTBS{Version: ProtocolVersionMLS10, WireFormat: WireFormatPublicMessage, Content: got, Context: &ctx})
		if !bytes.Equal(tbsGot, tbsWant) {
			t.Fatalf("content type %d: FramedContentTBS differs", ct)
		}
	}
}
