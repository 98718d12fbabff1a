package framing

import "github.com/mlskit/mlskit/internal/wire"

// VerifyPublicObserver checks a PublicMessage as a party that follows the
// group without its secrets (a delivery service's public view, RFC 9420,
// Section 6.2 and RFC 9750, Section 5): group and epoch, the sender's right
// to send the content, and the signature. The membership tag cannot be
// checked without membership_key and is ignored; only members can check it.
func (e *Epoch) VerifyPublicObserver(pm *wire.PublicMessage, members MemberKeys) (*wire.AuthenticatedContent, error) {
	if err := e.checkPublic(pm); err != nil {
		return nil, err
	}
	ac := pm.AuthenticatedContent()
	if err := e.verifySender(ac, members); err != nil {
		return nil, err
	}
	return ac, nil
}
