package mls

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/framing"
	"github.com/mlskit/mlskit/internal/keyschedule"
	"github.com/mlskit/mlskit/internal/ratchettree"
	"github.com/mlskit/mlskit/internal/treemath"
	"github.com/mlskit/mlskit/internal/wire"
	"github.com/mlskit/mlskit/storage"
)

// JoinOptions tunes JoinFromWelcome.
type JoinOptions struct {
	// RatchetTree is the encoded ratchet tree, needed when the Welcome's
	// GroupInfo does not carry the ratchet_tree extension.
	RatchetTree []byte
	// Previous is the group a ReInit or branch Welcome resumes; its
	// resumption PSKs are used (RFC 9420, Sections 11.2 and 11.3), and
	// the new group's members are checked against its members.
	Previous *Group
	// Store, if set, holds this client's groups: a Welcome for a group_id
	// it already holds fails with ErrGroupExists (RFC 9420, Section
	// 12.4.3.1: group_id is unique among a client's groups). JoinFromStore
	// always checks its store. To rejoin a group, delete the old one first
	// (storage.Store.DeleteGroup).
	Store storage.Store
}

// JoinFromWelcome joins a group from a Welcome addressed to bundle's
// KeyPackage (RFC 9420, Section 12.4.3.1), validating the whole tree. On
// success the bundle's init key is erased: a KeyPackage is used once (a
// last-resort KeyPackage's keys are kept).
//
// A received tree's leaves whose lifetime was tolerated are listed by
// JoinWarnings (see Config.StrictLeafLifetimes).
func JoinFromWelcome(cfg *Config, welcome []byte, bundle *KeyPackageBundle, opts *JoinOptions) (*Group, error) {
	return joinWelcome(context.Background(), cfg, welcome, bundle, opts)
}

func joinWelcome(ctx context.Context, cfg *Config, welcome []byte, bundle *KeyPackageBundle, opts *JoinOptions) (*Group, error) {
	g, err := joinFromWelcome(ctx, cfg, welcome, bundle, opts)
	if err != nil {
		return nil, classify(err)
	}
	if !bundle.KeyPackage.IsLastResort() {
		clear(bundle.InitKey)
	}
	return g, nil
}

// WelcomeKeyPackageRefs lists the KeyPackageRefs a Welcome is addressed to,
// so a client can find the bundle it needs.
func WelcomeKeyPackageRefs(welcome []byte) ([][]byte, error) {
	m, err := wire.UnmarshalMLSMessage(bytes.Clone(welcome))
	if err != nil {
		return nil, err
	}
	if m.WireFormat != wire.WireFormatWelcome {
		return nil, invalid(ErrInvalidWelcome, "6", "not a Welcome")
	}
	var out [][]byte
	for _, s := range m.Welcome.Secrets {
		out = append(out, bytes.Clone(s.NewMember))
	}
	return out, nil
}

// JoinWarnings lists the problems of the tree this client joined with that
// it tolerated (leaf lifetimes, see Config.StrictLeafLifetimes), each a
// *ValidationError. It is empty for a group created or loaded.
func (g *Group) JoinWarnings() []error { return g.warnings }

func joinFromWelcome(ctx context.Context, cfg *Config, welcome []byte, bundle *KeyPackageBundle, opts *JoinOptions) (*Group, error) {
	if opts == nil {
		opts = &JoinOptions{}
	}
	m, err := wire.UnmarshalMLSMessage(bytes.Clone(welcome))
	if err != nil {
		return nil, err
	}
	if m.WireFormat != wire.WireFormatWelcome {
		return nil, invalid(ErrInvalidWelcome, "6", "message is a %v, not a Welcome", m.WireFormat)
	}
	w := m.Welcome
	kp := bundle.KeyPackage.w
	if w.CipherSuite != kp.CipherSuite {
		return nil, invalid(ErrInvalidWelcome, "12.4.3.1", "Welcome cipher suite differs from the KeyPackage's")
	}
	s, err := CipherSuite(w.CipherSuite).suite()
	if err != nil {
		return nil, err
	}
	gs, err := framing.OpenGroupSecrets(s, w, kp, bundle.InitKey)
	if err != nil {
		return nil, err
	}
	// RFC 9420, Section 9.2: joiner_secret and the path secret are
	// consumed by this join, whatever its outcome.
	defer clear(gs.JoinerSecret)
	if gs.PathSecret != nil {
		defer clear(gs.PathSecret.PathSecret)
	}
	// RFC 9420, Section 12.4.3.1: at most one resumption PSK of usage
	// reinit or branch.
	var special *wire.PreSharedKeyID
	for i := range gs.PSKs {
		id := &gs.PSKs[i]
		if id.PSKType == wire.PSKTypeResumption && id.Usage != wire.ResumptionPSKUsageApplication {
			if special != nil {
				return nil, invalid(ErrInvalidWelcome, "12.4.3.1", "several reinit/branch PSKs")
			}
			special = id
		}
	}
	joiner, err := keyschedule.JoinerSecretFromBytes(s, gs.JoinerSecret)
	if err != nil {
		return nil, err
	}
	defer joiner.Erase()
	tmp := &Group{cfg: cfg}
	psks, err := tmp.resolvePSKs(gs.PSKs, opts.Previous)
	if err != nil {
		return nil, err
	}
	pskSecret, err := keyschedule.PSKSecret(s, psks)
	if err != nil {
		return nil, err
	}
	member := joiner.WithPSK(pskSecret)
	pskSecret.Erase() // Section 9.2: consumed by the key schedule
	defer member.Erase()
	welcomeSecret := member.WelcomeSecret()
	gi, err := framing.DecryptGroupInfo(s, welcomeSecret, w.EncryptedGroupInfo)
	welcomeSecret.Erase()
	if err != nil {
		return nil, err
	}
	if gi.GroupContext.CipherSuite != kp.CipherSuite || gi.GroupContext.Version != kp.Version {
		return nil, invalid(ErrInvalidWelcome, "12.4.3.1", "GroupInfo cipher suite or version differs from the KeyPackage's")
	}
	if opts.Store != nil {
		// RFC 9420, Section 12.4.3.1: the group_id must be unique among
		// the client's groups. Checked before the tree is: a Welcome that
		// reuses a group_id must not replace the stored group, whatever
		// else it holds.
		blob, _, err := opts.Store.LoadGroup(ctx, gi.GroupContext.GroupID)
		clear(blob)
		switch {
		case err == nil:
			return nil, invalid(ErrGroupExists, "12.4.3.1", "Welcome for a group_id this client already has")
		case !errors.Is(err, storage.ErrNotFound):
			return nil, fmt.Errorf("mls: looking up the Welcome's group: %w", err)
		}
	}
	tree, warnings, err := verifiedTree(cfg, s, gi, opts.RatchetTree)
	if err != nil {
		return nil, err
	}
	gctx := &gi.GroupContext
	// Find our leaf: the one identical to the KeyPackage's LeafNode.
	me, ok := findLeaf(tree, &kp.LeafNode)
	if !ok {
		return nil, invalid(ErrInvalidWelcome, "12.4.3.1", "our leaf is not in the tree")
	}
	if err := checkOwnSupport(gi.GroupContext.Extensions, tree.Leaf(me)); err != nil {
		return nil, err
	}
	priv, err := ratchettree.NewPrivateState(tree, me, bundle.LeafKey)
	if err != nil {
		return nil, err
	}
	if gs.PathSecret != nil {
		// RFC 9420, Section 12.4.3.1: the path secret is that of the lowest
		// common ancestor; derive the secrets of every non-blank node above
		// it too, up to the root, each checked against the tree.
		anc := treemath.CommonAncestor(me.Node(), treemath.LeafIndex(gi.Signer).Node())
		commitSecret, err := priv.ImportPathSecret(tree, anc, gs.PathSecret.PathSecret)
		if err != nil {
			return nil, err
		}
		clear(commitSecret) // a joiner's key schedule starts from joiner_secret

	}
	ctxBytes, err := codec.Marshal(gctx)
	if err != nil {
		return nil, err
	}
	keys := member.Epoch(ctxBytes)
	if !keys.VerifyConfirmationTag(gctx.ConfirmedTranscriptHash, gi.ConfirmationTag) {
		return nil, invalid(ErrInvalidConfirmationTag, "12.4.3.1", "GroupInfo confirmation tag")
	}
	interim, err := keyschedule.InterimTranscriptHash(s, gctx.ConfirmedTranscriptHash, gi.ConfirmationTag)
	if err != nil {
		return nil, err
	}
	if special != nil {
		if err := checkResumptionJoin(cfg, special, gi, tree, opts.Previous); err != nil {
			return nil, err
		}
	}
	st := &epochState{s: s, ctx: gctx, ctxBytes: ctxBytes, tree: tree, priv: priv, me: me, keys: keys,
		interim: interim, confTag: bytes.Clone(gi.ConfirmationTag)}
	if err := st.initSecrets(cfg); err != nil {
		return nil, err
	}
	g := &Group{cfg: cfg, signer: bundle.Signer, st: st, warnings: warnings, lastJoin: gctx.Epoch}
	g.rememberResumption()
	g.startKeyUpdates()
	return g, nil
}

// checkResumptionJoin applies the extra rules for a Welcome into a group
// made by ReInit or branching (RFC 9420, Section 12.4.3.1, last steps, and
// Sections 11.2 and 11.3).
func checkResumptionJoin(cfg *Config, id *wire.PreSharedKeyID, gi *wire.GroupInfo, tree *ratchettree.Tree, prev *Group) error {
	if gi.GroupContext.Epoch != 1 {
		return invalid(ErrInvalidWelcome, "12.4.3.1", "resumed group must start at epoch 1")
	}
	if prev == nil {
		// The resumption PSK could not have been resolved without the
		// previous group: unreachable, but refuse rather than skip.
		return invalid(ErrMissingPSK, "12.4.3.1", "resumption PSK of a group not given in JoinOptions.Previous")
	}
	if !bytes.Equal(id.PSKGroupID, prev.st.ctx.GroupID) {
		return invalid(ErrInvalidWelcome, "12.4.3.1", "resumption PSK names another group than JoinOptions.Previous")
	}
	switch id.Usage {
	case wire.ResumptionPSKUsageReInit:
		ri := prev.st.reinit
		if ri == nil {
			return invalid(ErrInvalidWelcome, "12.4.3.1", "previous group's last commit was not a ReInit")
		}
		// Section 11.2: the PSK is that of the epoch after the Commit
		// covering the ReInit, which is the previous group's last.
		if id.PSKEpoch != prev.st.ctx.Epoch {
			return invalid(ErrInvalidWelcome, "11.2", "reinit PSK of epoch %d, not the epoch %d the ReInit commit started", id.PSKEpoch, prev.st.ctx.Epoch)
		}
		if !bytes.Equal(ri.GroupID, gi.GroupContext.GroupID) || ri.Version != gi.GroupContext.Version ||
			ri.CipherSuite != gi.GroupContext.CipherSuite || !sameExtensions(ri.Extensions, gi.GroupContext.Extensions) {
			return invalid(ErrInvalidWelcome, "12.4.3.1", "new group does not match the ReInit proposal")
		}
		// Section 11.2: a ReInit creates a new group "with the same
		// membership".
		if err := matchMembers(cfg, tree, prev.st.tree, true); err != nil {
			return err
		}
	case wire.ResumptionPSKUsageBranch:
		if gi.GroupContext.CipherSuite != prev.st.ctx.CipherSuite || gi.GroupContext.Version != prev.st.ctx.Version {
			return invalid(ErrInvalidWelcome, "12.4.3.1", "branch changes version or cipher suite")
		}
		// Section 11.3: each LeafNode of the subgroup matches one of the
		// original group.
		if err := matchMembers(cfg, tree, prev.st.tree, false); err != nil {
			return err
		}
	}
	return nil
}

// matchMembers checks that every member of the new tree is a member of the
// old one (RFC 9420, Section 11.3), and with all that the two have the same
// members (Section 11.2).
func matchMembers(cfg *Config, newTree, oldTree *ratchettree.Tree, all bool) error {
	return matchCredentials(cfg, treeCredentials(newTree), treeCredentials(oldTree), all)
}

func treeCredentials(t *ratchettree.Tree) []Credential {
	var out []Credential
	t.Members(func(_ treemath.LeafIndex, n *wire.LeafNode) bool {
		out = append(out, credentialFromWire(n.Credential))
		return true
	})
	return out
}

// matchCredentials checks that every credential of next matches a distinct
// one of old; with all, that every one of old is matched too. Two match
// when the identities they present are equivalent to the application (RFC
// 9420, Section 11.3): the Config's SuccessorValidator decides, else the
// rule of a credential update (validateSuccessor) does: equal Basic
// identities, equal X.509 subjects, or the same type for other credentials.
func matchCredentials(cfg *Config, next, old []Credential, all bool) error {
	sv, custom := cfg.validator().(SuccessorValidator)
	// Without a SuccessorValidator, count the old members by identity so a
	// large group costs O(n), not O(n^2).
	free := map[string]int{}
	used := make([]bool, len(old))
	if !custom {
		for _, o := range old {
			if k, ok := identityKey(o); ok {
				free[k]++
			}
		}
	}
	matched := 0
	for i, c := range next {
		found := false
		if !custom {
			if k, ok := identityKey(c); ok && free[k] > 0 {
				free[k]--
				found = true
			}
		} else {
			for j, o := range old {
				if !used[j] && sv.ValidateSuccessor(o, c) == nil {
					used[j], found = true, true
					break
				}
			}
		}
		if !found {
			return invalid(ErrInvalidWelcome, "11", "new member %d is not a member of the previous group", i)
		}
		matched++
	}
	if all && matched != len(old) {
		return invalid(ErrInvalidWelcome, "11.2", "%d members of the previous group are missing from the reinitialised group", len(old)-matched)
	}
	return nil
}

// identityKey is the identity a credential presents, as validateSuccessor
// compares them without a SuccessorValidator. An X.509 credential whose
// certificate does not parse matches nothing (ok false).
func identityKey(c Credential) (key string, ok bool) {
	switch c.Type {
	case CredentialTypeBasic:
		return "b" + string(c.Identity), true
	case CredentialTypeX509:
		if len(c.Certificates) > 0 {
			if cert, err := x509.ParseCertificate(c.Certificates[0]); err == nil {
				return "x" + string(cert.RawSubject), true
			}
		}
		return "", false
	}
	return fmt.Sprintf("t%d", c.Type), true
}

func sameExtensions(a, b []wire.Extension) bool {
	ea, _ := codec.Marshal(&wire.GroupContextExtensions{Extensions: a})
	eb, _ := codec.Marshal(&wire.GroupContextExtensions{Extensions: b})
	return bytes.Equal(ea, eb)
}

// findLeaf finds the leaf whose LeafNode encodes identically to want.
func findLeaf(tree *ratchettree.Tree, want *wire.LeafNode) (treemath.LeafIndex, bool) {
	if l, ok := tree.FindSignatureKey(want.SignatureKey); ok {
		got := tree.Leaf(l)
		a, err1 := codec.Marshal(got)
		b, err2 := codec.Marshal(want)
		if err1 == nil && err2 == nil && bytes.Equal(a, b) {
			return l, true
		}
	}
	return 0, false
}

// errNoExternalPub: an external join needs the GroupInfo's external_pub
// extension (RFC 9420, Section 12.4.3.2). The GroupInfo comes from a peer,
// so this is a validation failure with a public class, not a bare error.
var errNoExternalPub = &ValidationError{Check: "GroupInfo has no external_pub extension", Section: "12.4.3.2",
	Err: ErrInvalidWelcome}
