package inspect

import (
	"bytes"
	"crypto/hmac"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mlskit/mlskit/internal/framing"
	"github.com/mlskit/mlskit/internal/ratchettree"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/treemath"
	"github.com/mlskit/mlskit/internal/wire"
	"github.com/mlskit/mlskit/mls"
)

// This file holds the checks that need no secret: signatures, lifetimes,
// key distinctness, tree and parent hashes, and the references of Section
// 5.2. Each check says which section of RFC 9420 requires it; a check that
// needs context the inspector lacks is reported as not verified, with why.

// Labels and reference labels of RFC 9420, Sections 5.1.2 and 5.2.
const (
	labelKeyPackageTBS   = "KeyPackageTBS"
	labelLeafNodeTBS     = "LeafNodeTBS"
	labelGroupInfoTBS    = "GroupInfoTBS"
	labelProposalRef     = "MLS 1.0 Proposal Reference"
	whyNoSuite           = "the cipher suite is unknown (give -group-info or -suite)"
	whyMembershipKey     = "needs the epoch's membership_key, which only members hold (give -state)"
	whyConfirmationKey   = "needs the epoch's confirmation_key, which only members hold (give -state)"
	whyCredentialPolicy  = "whether a credential is acceptable is the application's decision"
	whyNoTreeForGroup    = "no ratchet tree: the group info has no ratchet_tree extension and no -tree was given"
	whyNoTreeForMessage  = "no ratchet tree for the group (give -group-info, with a ratchet_tree extension or -tree)"
	whyNoGroupForMessage = "needs the group's GroupContext (give -group-info, or -state of a member in that epoch)"
)

// inspector walks one object, building its Nodes and the report's checks.
type inspector struct {
	rep *Report
	now time.Time

	// What the caller knows about the group, from Context.
	ctxSuite *suite.Suite      // from Context.Suite or the group info
	gi       *wire.GroupInfo   // Context.GroupInfo, decoded
	giRaw    []byte            // Context.GroupInfo as given (an MLSMessage)
	tree     *ratchettree.Tree // the group's tree (group info's extension or Context.Tree)
	treeRaw  []byte            // Context.Tree
	treeWhy  string            // why tree is nil
	member   Member            // Context.Member
	// giFromState: gi is the member's own, for want of Context.GroupInfo.
	giFromState bool
	input       []byte // the input, when it is an MLSMessage
}

func (in *inspector) addCheck(c Check) { in.rep.Checks = append(in.rep.Checks, c) }

func (in *inspector) ok(path, name, section string) {
	in.addCheck(Check{Path: path, Name: name, Section: section, Status: StatusOK})
}

func (in *inspector) okDetail(path, name, section, detail string) {
	in.addCheck(Check{Path: path, Name: name, Section: section, Status: StatusOK, Detail: detail})
}

func (in *inspector) failed(path, name, section, detail string) {
	in.addCheck(Check{Path: path, Name: name, Section: section, Status: StatusFailed, Detail: detail})
}

func (in *inspector) notVerified(path, name, section, why string) {
	in.addCheck(Check{Path: path, Name: name, Section: section, Status: StatusNotVerified, Detail: why})
}

func (in *inspector) result(path, name, section string, err error) {
	if err != nil {
		in.failed(path, name, section, errText(err))
		return
	}
	in.ok(path, name, section)
}

func (in *inspector) computed(path, name, section string, v []byte) {
	in.rep.Computed = append(in.rep.Computed, Computed{Path: path, Name: name, Section: section, Value: v})
}

// errText is an error's message without the "mls: " prefixes that every
// layer adds, for the one-line details of checks.
func errText(err error) string {
	var de *wire.DecodeError
	if errors.As(err, &de) {
		s := fmt.Sprintf("malformed %s at byte %d", de.Type, de.Offset)
		if de.Reason != "" {
			s += ": " + de.Reason
		}
		return s
	}
	return dedupe(strings.ReplaceAll(err.Error(), "mls: ", ""))
}

// dedupe says each part of an error chain once. Layers that wrap an error
// and also name its class repeat it ("decryption failed: decryption failed
// (failed check: content decrypts, ...): decryption failed"); a part
// (split at ": " outside parentheses) is dropped when an earlier part is
// the same, or another part says it and more.
func dedupe(s string) string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '(':
			depth++
		case s[i] == ')' && depth > 0:
			depth--
		case depth == 0 && strings.HasPrefix(s[i:], ": "):
			parts = append(parts, s[start:i])
			start = i + 2
			i++
		}
	}
	parts = append(parts, s[start:])
	var out []string
	for i, p := range parts {
		redundant := false
		for j, q := range parts {
			if j < i && q == p || len(q) > len(p) && strings.HasPrefix(q, p) {
				redundant = true
				break
			}
		}
		if !redundant {
			out = append(out, p)
		}
	}
	return strings.Join(out, ": ")
}

// sigErr words a failed signature check.
func sigErr(err error) error {
	if errors.Is(err, suite.ErrInvalidKey) {
		return errors.New("signature_key is not a valid key for the cipher suite")
	}
	return errors.New("signature does not verify")
}

func unixText(v uint64) string {
	if v > 1<<62 {
		return "far future"
	}
	return time.Unix(int64(v), 0).UTC().Format(time.RFC3339)
}

func lookupSuite(cs wire.CipherSuite) (*suite.Suite, error) {
	s, err := suite.Lookup(suite.ID(cs))
	if err != nil {
		return nil, fmt.Errorf("cipher suite 0x%04x is not supported by mlskit", uint16(cs))
	}
	return s, nil
}

// --- LeafNode: RFC 9420, Sections 7.2 and 7.3 ---

// checkLeaf makes the checks of Section 7.3 that need no group state on a
// LeafNode that appears where source is expected. The signature of update
// and commit leaves covers the group id and leaf index, which e supplies
// when the enclosing message tells them.
func (in *inspector) checkLeaf(path string, l *wire.LeafNode, source wire.LeafNodeSource, e env) {
	if l.LeafNodeSource != source {
		in.failed(path, "leaf_node_source", "7.3", fmt.Sprintf("is %s, must be %s",
			lookupName(leafSourceNames, uint64(l.LeafNodeSource), false), lookupName(leafSourceNames, uint64(source), false)))
	} else {
		in.ok(path, "leaf_node_source is "+lookupName(leafSourceNames, uint64(source), false), "7.3")
	}
	switch {
	case e.suite == nil:
		in.notVerified(path, "signature", "7.3", whyNoSuite)
	case l.LeafNodeSource == wire.LeafNodeSourceKeyPackage:
		in.leafSignature(path, e.suite, l, nil, 0)
	case e.groupID == nil || e.sender == nil:
		in.notVerified(path, "signature", "7.3", "a leaf of source "+lookupName(leafSourceNames, uint64(l.LeafNodeSource), false)+
			" signs its group_id and leaf index, which are not known here")
	default:
		in.leafSignature(path, e.suite, l, e.groupID, *e.sender)
	}
	in.checkLeafCapabilities(path, l)
	if l.LeafNodeSource == wire.LeafNodeSourceKeyPackage {
		in.checkLifetime(path, &l.Lifetime)
	}
}

func (in *inspector) leafSignature(path string, s *suite.Suite, l *wire.LeafNode, groupID []byte, leaf uint32) {
	tbs := l.TBS(groupID, leaf)
	if tbs == nil {
		in.failed(path, "signature", "7.3", "LeafNodeTBS cannot be encoded")
		return
	}
	if err := s.VerifyWithLabel(l.SignatureKey, labelLeafNodeTBS, tbs, l.Signature); err != nil {
		in.failed(path, "signature", "7.3", sigErr(err).Error())
		return
	}
	in.ok(path, "signature", "7.3")
}

// checkLeafCapabilities: the leaf's credential type and its non-default
// extension types are listed in its own capabilities (RFC 9420, Section 7.2).
func (in *inspector) checkLeafCapabilities(path string, l *wire.LeafNode) {
	var missing []string
	if !slices.Contains(l.Capabilities.Credentials, l.Credential.CredentialType) {
		missing = append(missing, fmt.Sprintf("credential type 0x%04x", uint16(l.Credential.CredentialType)))
	}
	for _, x := range l.Extensions {
		if x.ExtensionType > wire.ExtensionTypeExternalSenders && !slices.Contains(l.Capabilities.Extensions, x.ExtensionType) {
			missing = append(missing, fmt.Sprintf("extension type 0x%04x", uint16(x.ExtensionType)))
		}
	}
	if len(missing) > 0 {
		in.failed(path, "capabilities list the leaf's credential and extensions", "7.2", "missing "+strings.Join(missing, ", "))
		return
	}
	in.ok(path, "capabilities list the leaf's credential and extensions", "7.2")
}

// checkLifetime compares a key_package leaf's lifetime with the current time
// (RFC 9420, Section 7.3).
func (in *inspector) checkLifetime(path string, lt *wire.Lifetime) {
	const name, sec = "lifetime", "7.3"
	window := unixText(lt.NotBefore) + " to " + unixText(lt.NotAfter)
	if lt.NotBefore > lt.NotAfter {
		in.failed(path, name, sec, "not_before is after not_after: "+window)
		return
	}
	if in.now.IsZero() {
		in.notVerified(path, name, sec, "no current time given; valid "+window)
		return
	}
	now := in.now.Unix()
	nowText := in.now.UTC().Format(time.RFC3339)
	switch {
	case now < 0 || uint64(now) < lt.NotBefore:
		in.failed(path, name, sec, "not yet valid at "+nowText+": valid "+window)
	case uint64(now) > lt.NotAfter:
		in.failed(path, name, sec, "expired at "+nowText+": valid "+window)
	default:
		in.okDetail(path, name, sec, "valid "+window+", now "+nowText)
	}
}

// --- KeyPackage: RFC 9420, Section 10.1 ---

func (in *inspector) checkKeyPackage(path string, kp *wire.KeyPackage) {
	if kp.Version != wire.ProtocolVersionMLS10 {
		in.failed(path, "version is mls10", "10.1", fmt.Sprintf("version is 0x%04x", uint16(kp.Version)))
	}
	s, err := lookupSuite(kp.CipherSuite)
	if err != nil {
		in.failed(path, "cipher_suite", "10.1", err.Error())
	}
	if s != nil {
		ref, err := framing.KeyPackageRef(s, kp)
		if err == nil {
			in.computed(path, "key_package_ref", "5.2", ref)
		}
		tbs := kp.TBS()
		switch {
		case tbs == nil:
			in.failed(path, "signature", "10.1", "KeyPackageTBS cannot be encoded")
		default:
			if err := s.VerifyWithLabel(kp.LeafNode.SignatureKey, labelKeyPackageTBS, tbs, kp.Signature); err != nil {
				in.failed(path, "signature", "10.1", sigErr(err).Error())
			} else {
				in.ok(path, "signature", "10.1")
			}
		}
	} else {
		in.notVerified(path, "signature", "10.1", "unsupported cipher suite")
	}
	in.checkLeaf(join(path, "leaf_node"), &kp.LeafNode, wire.LeafNodeSourceKeyPackage, env{suite: s})
	if bytes.Equal(kp.InitKey, kp.LeafNode.EncryptionKey) {
		in.failed(path, "init_key differs from leaf_node.encryption_key", "10.1", "they are equal")
	} else {
		in.ok(path, "init_key differs from leaf_node.encryption_key", "10.1")
	}
	in.notVerified(join(path, "leaf_node"), "credential", "5.3.1", whyCredentialPolicy)
}

// --- Ratchet tree: RFC 9420, Sections 7.8, 7.9.2, 12.4.3.1 ---

// checkTree makes the checks a joiner makes on a tree (RFC 9420, Section
// 12.4.3.1) that need no secrets: structure, tree hash against the
// GroupContext's when one is known, parent hashes, leaf signatures (update
// and commit leaves only when the group id is known), and the full
// validation of the tree with every credential accepted. It returns the
// tree, or nil if its structure is invalid.
func (in *inspector) checkTree(path string, s *suite.Suite, nodes wire.RatchetTree, gc *wire.GroupContext) *ratchettree.Tree {
	t, err := ratchettree.FromNodes(s, nodes)
	if err != nil {
		in.failed(path, "tree structure", "12.4.3.3", errText(err))
		return nil
	}
	in.ok(path, "tree structure", "12.4.3.3")
	th := t.TreeHash()
	in.computed(path, "tree_hash", "7.8", th)
	if gc != nil {
		if bytes.Equal(th, gc.TreeHash) {
			in.ok(path, "tree hash matches group_context.tree_hash", "12.4.3.1")
		} else {
			in.failed(path, "tree hash matches group_context.tree_hash", "12.4.3.1", "it does not")
		}
	}
	in.result(path, "parent hashes", "7.9.2", t.VerifyParentHashes())
	var groupID []byte
	if gc != nil {
		groupID = gc.GroupID
	}
	var bad []string
	checked, skipped := 0, 0
	t.Members(func(l ratchettree.LeafIndex, leaf *wire.LeafNode) bool {
		if groupID == nil && leaf.LeafNodeSource != wire.LeafNodeSourceKeyPackage {
			skipped++
			return true
		}
		checked++
		if err := t.VerifyLeafSignature(l, groupID); err != nil {
			bad = append(bad, "leaf "+strconv.Itoa(int(l)))
		}
		return true
	})
	switch {
	case len(bad) > 0:
		in.failed(path, "leaf signatures", "7.3", "do not verify: "+strings.Join(bad, ", "))
	case checked > 0:
		in.okDetail(path, "leaf signatures", "7.3", plural(checked, "leaf", "leaves"))
	}
	if skipped > 0 {
		in.notVerified(path, "leaf signatures of update and commit leaves", "7.3",
			plural(skipped, "leaf signs", "leaves sign")+" the group_id, which is not known here (give -group-info)")
	}
	in.checkTreeLifetimes(path, t)
	if gc != nil {
		// Lifetimes are checked above: for a received tree the check is only
		// RECOMMENDED (Section 7.3), so it is reported on its own.
		p := &ratchettree.Policy{GroupID: gc.GroupID, Credentials: acceptAll{}}
		if rc := requiredCapabilities(gc.Extensions); rc != nil {
			p.Required = rc
		}
		in.result(path, "tree validation, every credential accepted", "12.4.3.1", t.Validate(gc.TreeHash, p))
	}
	return t
}

// checkTreeLifetimes compares the lifetime of every key_package leaf of a
// tree with the current time (RFC 9420, Section 7.3: RECOMMENDED for
// received trees, since a leaf may expire while the group runs).
func (in *inspector) checkTreeLifetimes(path string, t *ratchettree.Tree) {
	const name, sec = "lifetimes of key_package leaves", "7.3"
	var bad []string
	n := 0
	t.Members(func(l ratchettree.LeafIndex, leaf *wire.LeafNode) bool {
		if leaf.LeafNodeSource != wire.LeafNodeSourceKeyPackage {
			return true
		}
		n++
		lt := leaf.Lifetime
		if lt.NotBefore > lt.NotAfter || (!in.now.IsZero() && !within(in.now, &lt)) {
			bad = append(bad, fmt.Sprintf("leaf %d (valid %s to %s)", l, unixText(lt.NotBefore), unixText(lt.NotAfter)))
		}
		return true
	})
	switch {
	case n == 0:
	case len(bad) > 0:
		now := ""
		if !in.now.IsZero() {
			now = " at " + in.now.UTC().Format(time.RFC3339)
		}
		in.failed(path, name, sec, "not valid"+now+": "+strings.Join(bad, ", "))
	case in.now.IsZero():
		in.notVerified(path, name, sec, "no current time given")
	default:
		in.okDetail(path, name, sec, plural(n, "leaf", "leaves")+" valid at "+in.now.UTC().Format(time.RFC3339))
	}
}

func within(now time.Time, lt *wire.Lifetime) bool {
	u := now.Unix()
	return u >= 0 && uint64(u) >= lt.NotBefore && uint64(u) <= lt.NotAfter
}

type acceptAll struct{}

func (acceptAll) Validate(wire.Credential, []byte) error { return nil }

func requiredCapabilities(exts []wire.Extension) *wire.RequiredCapabilities {
	for _, x := range exts {
		if x.ExtensionType == wire.ExtensionTypeRequiredCapabilities {
			if rc, err := wire.Decode[wire.RequiredCapabilities](x.ExtensionData); err == nil {
				return rc
			}
		}
	}
	return nil
}

func findExtension(exts []wire.Extension, t wire.ExtensionType) *wire.Extension {
	for i := range exts {
		if exts[i].ExtensionType == t {
			return &exts[i]
		}
	}
	return nil
}

// --- GroupInfo: RFC 9420, Sections 12.4.3 and 12.4.3.1 ---

func (in *inspector) checkGroupInfo(path string, gi *wire.GroupInfo) {
	gc := &gi.GroupContext
	if gc.Version != wire.ProtocolVersionMLS10 {
		in.failed(join(path, "group_context"), "version is mls10", "12.4.3.1", fmt.Sprintf("version is 0x%04x", uint16(gc.Version)))
	}
	in.checkGroupInfoTag(path, gi)
	s, err := lookupSuite(gc.CipherSuite)
	if err != nil {
		in.notVerified(path, "signature and tree", "12.4.3.1", err.Error())
		return
	}
	var nodes wire.RatchetTree
	treePath := ""
	if x := findExtension(gi.Extensions, wire.ExtensionTypeRatchetTree); x != nil {
		if nodes, err = wire.UnmarshalRatchetTree(x.ExtensionData); err != nil {
			in.notVerified(path, "signature and tree", "12.4.3.1", "the ratchet_tree extension does not decode")
			return
		}
		treePath = join(path, "ratchet_tree")
	} else if in.treeRaw != nil {
		if nodes, err = wire.UnmarshalRatchetTree(in.treeRaw); err != nil {
			in.notVerified(path, "signature and tree", "12.4.3.1", "the -tree does not decode: "+errText(err))
			return
		}
		treePath = "tree (-tree)"
	} else {
		in.notVerified(path, "signature and tree", "12.4.3.1", whyNoTreeForGroup)
		return
	}
	t := in.checkTree(treePath, s, nodes, gc)
	if t == nil {
		in.notVerified(path, "signature", "12.4.3.1", "the tree is invalid")
		return
	}
	signer := t.Leaf(treemath.LeafIndex(gi.Signer))
	if signer == nil {
		in.failed(path, "signature", "12.4.3.1", "signer "+strconv.FormatUint(uint64(gi.Signer), 10)+" is a blank or missing leaf")
		return
	}
	if err := framing.VerifyGroupInfo(s, signer.SignatureKey, gi); err != nil {
		in.failed(path, "signature", "12.4.3.1", "signature by leaf "+strconv.FormatUint(uint64(gi.Signer), 10)+" does not verify")
		return
	}
	in.okDetail(path, "signature", "12.4.3.1", "signed by leaf "+strconv.FormatUint(uint64(gi.Signer), 10))
}

// --- Welcome: RFC 9420, Section 12.4.3.1 ---

func (in *inspector) checkWelcome(path string, w *wire.Welcome) {
	s, err := lookupSuite(w.CipherSuite)
	if err != nil {
		in.failed(path, "cipher_suite", "12.4.3.1", err.Error())
	} else {
		var bad []string
		for i, sec := range w.Secrets {
			if len(sec.NewMember) != s.HashSize() {
				bad = append(bad, fmt.Sprintf("secrets[%d] has %d bytes", i, len(sec.NewMember)))
			}
		}
		if len(bad) > 0 {
			in.failed(path, "new_member is a KeyPackageRef of the suite's hash length", "5.2", strings.Join(bad, ", "))
		} else if len(w.Secrets) > 0 {
			in.ok(path, "new_member is a KeyPackageRef of the suite's hash length", "5.2")
		}
	}
	if in.member == nil {
		in.notVerified(path, "encrypted_group_secrets", "12.4.3.1", "needs a new member's init_key private key (give -state)")
		in.notVerified(path, "encrypted_group_info", "12.4.3.1", "needs the welcome_secret, from the GroupSecrets")
	}
}

// --- PublicMessage: RFC 9420, Sections 6.1 and 6.2 ---

// messageSuite is the cipher suite that applies to a PublicMessage: the
// group's when known, or for a new member's Add proposal its KeyPackage's.
func (in *inspector) messageSuite(pm *wire.PublicMessage) *suite.Suite {
	if in.ctxSuite != nil {
		return in.ctxSuite
	}
	c := &pm.Content
	if c.Sender.SenderType == wire.SenderTypeNewMemberProposal && c.Proposal != nil && c.Proposal.Add != nil {
		s, _ := lookupSuite(c.Proposal.Add.KeyPackage.CipherSuite)
		return s
	}
	return nil
}

// senderRule checks that the sender type may send the content (RFC 9420,
// Sections 6, 6.1, 12.1.8 and 12.4.3.2) and returns the rule's name,
// section and, if it is broken, why.
func senderRule(c *wire.FramedContent) (name, section, why string) {
	switch c.Sender.SenderType {
	case wire.SenderTypeMember:
		if c.ContentType == wire.ContentTypeApplication {
			return "content may be sent as PublicMessage", "6", "application data must be sent as PrivateMessage"
		}
		return "content may be sent as PublicMessage", "6", ""
	case wire.SenderTypeExternal:
		if c.ContentType != wire.ContentTypeProposal {
			return "external sender sends only proposals", "6.1", "content is " + lookupName(contentTypeNames, uint64(c.ContentType), false)
		}
		if t := c.Proposal.ProposalType; t == wire.ProposalTypeUpdate || t == wire.ProposalTypeExternalInit {
			return "proposal type allowed for external senders", "12.1.8", "proposal is " + lookupName(proposalNames, uint64(t), true)
		}
		return "proposal type allowed for external senders", "12.1.8", ""
	case wire.SenderTypeNewMemberProposal:
		if c.ContentType != wire.ContentTypeProposal || c.Proposal.ProposalType != wire.ProposalTypeAdd {
			return "new_member_proposal sender sends only an Add", "6.1", "it sends something else"
		}
		return "new_member_proposal sender sends only an Add", "6.1", ""
	case wire.SenderTypeNewMemberCommit:
		if c.ContentType != wire.ContentTypeCommit {
			return "new_member_commit sender sends only a commit", "6.1", "content is " + lookupName(contentTypeNames, uint64(c.ContentType), false)
		}
		if c.Commit.Path == nil {
			return "external commit has a path", "12.4.3.2", "it has none"
		}
		return "external commit has a path", "12.4.3.2", ""
	}
	return "", "", ""
}

func (in *inspector) checkPublicMessage(path string, pm *wire.PublicMessage, s *suite.Suite) {
	c := &pm.Content
	name, sec, why := senderRule(c)
	if why != "" {
		in.failed(path, name, sec, why)
	} else {
		in.ok(path, name, sec)
	}
	ac := pm.AuthenticatedContent()
	if c.ContentType == wire.ContentTypeProposal {
		if s != nil {
			in.computed(path, "proposal_ref", "5.2", s.RefHash(labelProposalRef, ac.Raw()))
		} else {
			in.notVerified(path, "proposal_ref", "5.2", "not computed: "+whyNoSuite)
		}
	}
	in.checkSignature(path, ac, s, why != "")
	if in.member == nil { // else processPublic checks them
		if c.Sender.SenderType == wire.SenderTypeMember {
			in.notVerified(path, "membership_tag", "6.2", whyMembershipKey)
		}
		if c.ContentType == wire.ContentTypeCommit {
			in.notVerified(path, "confirmation_tag", "6.1", whyConfirmationKey)
		}
	}
	if why == "" {
		in.observe(path, pm)
	}
}

// checkSignature verifies a PublicMessage's FramedContent signature (RFC
// 9420, Section 6.1) with the sender's key: the member's leaf in the group's
// tree, the group's external_senders extension, or the key the message
// itself carries for new members.
func (in *inspector) checkSignature(path string, ac *wire.AuthenticatedContent, s *suite.Suite, badSender bool) {
	const name, sec = "signature", "6.1"
	c := &ac.Content
	if badSender {
		in.notVerified(path, name, sec, "the sender may not send this content")
		return
	}
	if s == nil {
		in.notVerified(path, name, sec, whyNoSuite)
		return
	}
	needsCtx := c.Sender.SenderType == wire.SenderTypeMember || c.Sender.SenderType == wire.SenderTypeNewMemberCommit ||
		c.Sender.SenderType == wire.SenderTypeExternal
	var gc *wire.GroupContext
	if needsCtx {
		if in.gi == nil {
			in.notVerified(path, name, sec, whyNoGroupForMessage)
			return
		}
		gc = &in.gi.GroupContext
		if !bytes.Equal(gc.GroupID, c.GroupID) || gc.Epoch != c.Epoch {
			in.notVerified(path, name, sec, fmt.Sprintf("the group info is for epoch %d of group %x, the message for epoch %d of group %x",
				gc.Epoch, gc.GroupID, c.Epoch, c.GroupID))
			return
		}
	}
	var pub []byte
	var who string
	switch c.Sender.SenderType {
	case wire.SenderTypeMember:
		if in.tree == nil {
			in.notVerified(path, name, sec, in.treeWhy)
			return
		}
		leaf := in.tree.Leaf(treemath.LeafIndex(c.Sender.LeafIndex))
		if leaf == nil {
			in.failed(path, name, sec, fmt.Sprintf("sender leaf %d is blank or outside the tree", c.Sender.LeafIndex))
			return
		}
		pub, who = leaf.SignatureKey, fmt.Sprintf("member at leaf %d", c.Sender.LeafIndex)
	case wire.SenderTypeExternal:
		x := findExtension(gc.Extensions, wire.ExtensionTypeExternalSenders)
		if x == nil {
			in.failed(path, name, sec, "the group has no external_senders extension")
			return
		}
		senders, err := wire.Decode[wire.ExternalSenders](x.ExtensionData)
		if err != nil {
			in.failed(path, name, sec, "the group's external_senders extension does not decode")
			return
		}
		if uint64(c.Sender.SenderIndex) >= uint64(len(*senders)) {
			in.failed(path, name, sec, fmt.Sprintf("sender_index %d: the group has %d external senders", c.Sender.SenderIndex, len(*senders)))
			return
		}
		pub, who = (*senders)[c.Sender.SenderIndex].SignatureKey, fmt.Sprintf("external sender %d", c.Sender.SenderIndex)
	case wire.SenderTypeNewMemberCommit:
		pub, who = c.Commit.Path.LeafNode.SignatureKey, "the key in the commit's path"
	case wire.SenderTypeNewMemberProposal:
		pub, who = c.Proposal.Add.KeyPackage.LeafNode.SignatureKey, "the key in the Add's KeyPackage"
	}
	if err := framing.Verify(s, pub, ac, gc); err != nil {
		in.failed(path, name, sec, "by "+who+": "+sigErr(err).Error())
		return
	}
	in.okDetail(path, name, sec, "by "+who)
}

// observe processes a PublicMessage handshake as the group's public view
// does (a delivery service without secrets, RFC 9420, Section 6.2 and
// Section 12.4.2 for commits): the proposal or commit is validated against
// the group of the group info.
func (in *inspector) observe(path string, pm *wire.PublicMessage) {
	const name, sec = "valid for the group, as a public observer sees it", "12.4.2"
	c := &pm.Content
	if c.Sender.SenderType == wire.SenderTypeMember && c.ContentType == wire.ContentTypeApplication {
		return
	}
	if in.gi == nil {
		in.notVerified(path, name, sec, whyNoGroupForMessage)
		return
	}
	if in.tree == nil {
		in.notVerified(path, name, sec, in.treeWhy)
		return
	}
	gc := &in.gi.GroupContext
	if !bytes.Equal(gc.GroupID, c.GroupID) || gc.Epoch != c.Epoch {
		in.notVerified(path, name, sec, "the group info is for another group or epoch")
		return
	}
	if c.ContentType == wire.ContentTypeCommit {
		for _, p := range c.Commit.Proposals {
			if p.Type == wire.ProposalOrRefTypeReference {
				in.notVerified(path, name, sec, "the commit refers to proposals by reference, which were not given")
				return
			}
		}
	}
	cfg := &mls.Config{CredentialValidator: mls.AcceptAllCredentials{}}
	if !in.now.IsZero() {
		now := in.now
		cfg.Now = func() time.Time { return now }
	}
	g, err := mls.NewPublicGroup(cfg, in.giRaw, in.treeRaw)
	if err != nil {
		in.notVerified(path, name, sec, "the group info does not give a valid group: "+errText(err))
		return
	}
	msg, err := wire.Encode(&wire.MLSMessage{Version: wire.ProtocolVersionMLS10, WireFormat: wire.WireFormatPublicMessage, PublicMessage: pm})
	if err != nil {
		in.notVerified(path, name, sec, errText(err))
		return
	}
	if _, err := g.Process(msg); err != nil {
		in.failed(path, name, sec, errText(err))
		return
	}
	in.okDetail(path, name, sec, "every credential accepted")
}

// checkGroupInfoTag verifies a GroupInfo's confirmation_tag as a member in
// the GroupInfo's epoch can (RFC 9420, Section 12.4.3.1). The tag is
// MAC(confirmation_key, confirmed_transcript_hash) of that epoch (Section
// 8.1); the member computed it when it entered the epoch, and the GroupInfo
// it would publish carries it. Equal transcript hashes and equal tags
// verify the GroupInfo's.
func (in *inspector) checkGroupInfoTag(path string, gi *wire.GroupInfo) {
	const name, sec = "confirmation_tag", "12.4.3.1"
	if in.member == nil {
		in.notVerified(path, name, sec, whyConfirmationKey)
		return
	}
	gc := &gi.GroupContext
	g := in.memberGroup(path, name, sec, gc.GroupID)
	if g == nil {
		return
	}
	if g.Epoch() != gc.Epoch {
		in.notVerified(path, name, sec, fmt.Sprintf("the state holds epoch %d of the group, the group info is for epoch %d; only that epoch's confirmation_key verifies it", g.Epoch(), gc.Epoch))
		return
	}
	own, err := g.GroupInfo(false, false)
	var m *wire.MLSMessage
	if err == nil {
		m, err = wire.UnmarshalMLSMessage(own)
	}
	if err != nil || m.GroupInfo == nil {
		in.notVerified(path, name, sec, "the member's own group info for the epoch could not be made")
		return
	}
	mine := m.GroupInfo
	switch {
	case !bytes.Equal(mine.GroupContext.ConfirmedTranscriptHash, gc.ConfirmedTranscriptHash):
		in.failed(path, name, sec, fmt.Sprintf("group_context.confirmed_transcript_hash differs from that of the member at leaf %d in epoch %d", g.LeafIndex(), gc.Epoch))
	case !hmac.Equal(mine.ConfirmationTag, gi.ConfirmationTag):
		in.failed(path, name, sec, fmt.Sprintf("is not MAC(confirmation_key, confirmed_transcript_hash) of epoch %d, as the member at leaf %d computes it", gc.Epoch, g.LeafIndex()))
	default:
		in.okDetail(path, name, sec, fmt.Sprintf("MAC(confirmation_key, confirmed_transcript_hash) of epoch %d, by the member at leaf %d", gc.Epoch, g.LeafIndex()))
	}
}

// externalJoinerLeaf returns the leaf an external commit's joiner takes in
// the group of the context's group info: the leftmost blank leaf once the
// commit's Removes (a resync removes the joiner's old leaf) are applied,
// or a new leaf at the end (RFC 9420, Sections 12.1.1 and 12.4.3.2). It
// needs the group info of the commit's epoch with its tree, and Removes
// by value.
func (in *inspector) externalJoinerLeaf(fc *wire.FramedContent) (uint32, bool) {
	if in.tree == nil || in.gi == nil || !bytes.Equal(in.gi.GroupContext.GroupID, fc.GroupID) || in.gi.GroupContext.Epoch != fc.Epoch {
		return 0, false
	}
	t := in.tree.Clone()
	for _, p := range fc.Commit.Proposals {
		switch {
		case p.Type != wire.ProposalOrRefTypeProposal || p.Proposal == nil:
			return 0, false // a reference: its proposal is unknown here
		case p.Proposal.ProposalType == wire.ProposalTypeRemove && p.Proposal.Remove != nil:
			if err := t.RemoveLeaf(treemath.LeafIndex(p.Proposal.Remove.Removed)); err != nil {
				return 0, false // reported by the public observer's checks
			}
		}
	}
	return uint32(t.FreeLeaf()), true
}
