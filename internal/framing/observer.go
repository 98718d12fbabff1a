package framing

import (
	"errors"

	"github.com/mlskit/mlskit/internal/wire"
)

// VerifyPublicObserver checks a PublicMessage as a party that follows the
// group without its secrets (a delivery service's public view, RFC 9420,
// Section 6.2 and RFC 9750, Section 5): group and epoch, the sender's right
// to send the content, and the signature. The membership tag cannot be
// checked without membership_key and is ignored; only members can check it.
func (e *Epoch) VerifyPublicObserver(pm *wire.PublicMessage, members MemberKeys) (*wire.AuthenticatedContent, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	if pm == nil {
		return nil, errors.New("mls: nil PublicMessage")
	}
	if err := checkGroupEpoch(e.Context, pm.Content.GroupID, pm.Content.Epoch); err != nil {
		return nil, err
	}
	if pm.Content.ContentType == wire.ContentTypeApplication {
		return nil, invalid(ErrWrongWireFormat, "application data is sent as PrivateMessage", "6")
	}
	ac := pm.AuthenticatedContent()
	pub, err := senderKey(e.Context, &pm.Content, members)
	if err != nil {
		return nil, err
	}
	if err := Verify(e.Suite, pub, ac, e.Context); err != nil {
		return nil, err
	}
	return ac, nil
}
