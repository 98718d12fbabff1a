package framing

import (
	"errors"
	"fmt"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/keyschedule"
	"github.com/mlskit/mlskit/internal/secrettree"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/wire"
)

// Epoch is what protecting and unprotecting the messages of one epoch needs.
// The group state machine fills it from its state; framing only reads the
// fields (and advances Tree). Not every field is needed by every call:
//
//   - Suite and Context: always. For a sender outside the group (external
//     or new_member_proposal), Context need only carry group_id and epoch.
//   - MembershipKey: PublicMessages from member senders (Section 6.2).
//   - SenderDataSecret and Tree: PrivateMessages (Section 6.3).
type Epoch struct {
	Suite            *suite.Suite
	Context          *wire.GroupContext // the GroupContext of this epoch (Section 8.1)
	MembershipKey    keyschedule.Secret // membership_key (Section 8)
	SenderDataSecret keyschedule.Secret // sender_data_secret (Section 8)
	Tree             *secrettree.Tree   // the epoch's secret tree (Section 9)
}

// NewEpoch assembles an Epoch from the key schedule's secrets of the epoch
// whose GroupContext is ctx and that epoch's secret tree.
func NewEpoch(ctx *wire.GroupContext, ks *keyschedule.Epoch, tree *secrettree.Tree) *Epoch {
	return &Epoch{
		Suite:            ks.Suite(),
		Context:          ctx,
		MembershipKey:    ks.Membership,
		SenderDataSecret: ks.SenderData,
		Tree:             tree,
	}
}

func (e *Epoch) check() error {
	if e == nil || e.Suite == nil || e.Context == nil {
		return errors.New("mls: framing.Epoch needs a Suite and a GroupContext")
	}
	return nil
}

// checkOutgoing checks that ac, about to be protected in wire format wf,
// belongs to this epoch and is complete. Failures are API misuse.
func (e *Epoch) checkOutgoing(ac *wire.AuthenticatedContent, wf wire.WireFormat) error {
	if err := e.check(); err != nil {
		return err
	}
	if ac == nil {
		return errors.New("mls: nil AuthenticatedContent")
	}
	if ac.WireFormat != wf {
		return fmt.Errorf("mls: content signed for %v cannot be sent as %v", ac.WireFormat, wf)
	}
	if err := checkGroupEpoch(e.Context, ac.Content.GroupID, ac.Content.Epoch); err != nil {
		return fmt.Errorf("mls: content is not for this epoch: %w", err)
	}
	if ac.Content.ContentType == wire.ContentTypeCommit && len(ac.Auth.ConfirmationTag) == 0 {
		return errors.New("mls: commit has no confirmation_tag; set ac.Auth.ConfirmationTag after Sign")
	}
	return nil
}

// ProtectPublic encodes a signed AuthenticatedContent as a PublicMessage
// (RFC 9420, Section 6.2). For a member sender it adds
//
//	membership_tag = MAC(membership_key, AuthenticatedContentTBM)
//
// Application data may not be sent as a PublicMessage (Section 6): that is
// refused with ErrWrongWireFormat.
func (e *Epoch) ProtectPublic(ac *wire.AuthenticatedContent) (*wire.PublicMessage, error) {
	if err := e.checkOutgoing(ac, wire.WireFormatPublicMessage); err != nil {
		return nil, err
	}
	if ac.Content.ContentType == wire.ContentTypeApplication {
		return nil, invalid(ErrWrongWireFormat, "application data is sent as PrivateMessage", "6")
	}
	pm := &wire.PublicMessage{Content: ac.Content, Auth: ac.Auth}
	pm.Auth.ContentType = ac.Content.ContentType
	if ac.Content.Sender.SenderType == wire.SenderTypeMember {
		tag, err := e.membershipTag(ac)
		if err != nil {
			return nil, err
		}
		pm.MembershipTag = tag
	}
	return pm, nil
}

// UnprotectPublic checks a PublicMessage and returns the AuthenticatedContent
// it carries (RFC 9420, Sections 6.1 and 6.2): group and epoch, that the
// content may be sent as a PublicMessage by this sender type, the
// membership_tag for a member sender (in constant time), and the signature
// with the sender's key (members looks up member senders; the keys of
// external and new-member senders come from the group's external_senders
// extension and from the message itself).
//
// For a commit, the confirmation_tag is carried but not checked: it is
// verified against the next epoch's confirmation_key, which the caller
// derives from the commit (Section 12.4.2).
//
// If pm was decoded, the returned AuthenticatedContent's Raw holds the
// received bytes (for proposal references, Section 5.2).
func (e *Epoch) UnprotectPublic(pm *wire.PublicMessage, members MemberKeys) (*wire.AuthenticatedContent, error) {
	if err := e.checkPublic(pm); err != nil {
		return nil, err
	}
	ac := pm.AuthenticatedContent()
	keepReceivedBody(&ac.Content)
	if pm.Content.Sender.SenderType == wire.SenderTypeMember {
		if len(e.MembershipKey) == 0 {
			return nil, errors.New("mls: framing.Epoch has no membership_key")
		}
		tbm, err := encodeTBM(ac, e.Context)
		if err != nil {
			return nil, err
		}
		if !e.Suite.VerifyMAC(e.MembershipKey, tbm, pm.MembershipTag) {
			return nil, invalid(ErrInvalidMembershipTag, "membership_tag", "6.2")
		}
	}
	if err := e.verifySender(ac, members); err != nil {
		return nil, err
	}
	return ac, nil
}

// checkPublic runs the checks of a received PublicMessage that come before
// any cryptography: group, epoch, and no application data (RFC 9420,
// Sections 6 and 6.2).
func (e *Epoch) checkPublic(pm *wire.PublicMessage) error {
	if err := e.check(); err != nil {
		return err
	}
	if pm == nil {
		return errors.New("mls: nil PublicMessage")
	}
	if err := checkGroupEpoch(e.Context, pm.Content.GroupID, pm.Content.Epoch); err != nil {
		return err
	}
	if pm.Content.ContentType == wire.ContentTypeApplication {
		return invalid(ErrWrongWireFormat, "application data is sent as PrivateMessage", "6")
	}
	return nil
}

// verifySender checks that the sender may send the content and verifies
// the signature with its key (RFC 9420, Sections 6.1 and 12.1.8).
func (e *Epoch) verifySender(ac *wire.AuthenticatedContent, members MemberKeys) error {
	pub, err := senderKey(e.Context, &ac.Content, members)
	if err != nil {
		return err
	}
	return Verify(e.Suite, pub, ac, e.Context)
}

// membershipTag computes MAC(membership_key, AuthenticatedContentTBM)
// (RFC 9420, Section 6.2).
func (e *Epoch) membershipTag(ac *wire.AuthenticatedContent) ([]byte, error) {
	if len(e.MembershipKey) == 0 {
		return nil, errors.New("mls: framing.Epoch has no membership_key")
	}
	tbm, err := encodeTBM(ac, e.Context)
	if err != nil {
		return nil, err
	}
	return e.Suite.MAC(e.MembershipKey, tbm), nil
}

// encodeTBM encodes AuthenticatedContentTBM{FramedContentTBS, auth}
// (RFC 9420, Section 6.2).
func encodeTBM(ac *wire.AuthenticatedContent, ctx *wire.GroupContext) ([]byte, error) {
	tbm := wire.AuthenticatedContentTBM{ContentTBS: *ac.TBS(ctx), Auth: ac.Auth}
	b := codec.NewBuilder(make([]byte, 0, 512))
	tbm.Marshal(b)
	return b.Bytes()
}
