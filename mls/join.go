package mls

import (
	"bytes"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/framing"
	"github.com/mlskit/mlskit/internal/keyschedule"
	"github.com/mlskit/mlskit/internal/ratchettree"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/treemath"
	"github.com/mlskit/mlskit/internal/wire"
)

// JoinOptions tunes JoinFromWelcome.
type JoinOptions struct {
	// RatchetTree is the encoded ratchet tree, needed when the Welcome's
	// GroupInfo does not carry the ratchet_tree extension.
	RatchetTree []byte
	// Previous is the group a ReInit or branch Welcome resumes; its
	// resumption PSKs are used (RFC 9420, Sections 11.2 and 11.3).
	Previous *Group
}

// JoinFromWelcome joins a group from a Welcome addressed to bundle's
// KeyPackage (RFC 9420, Section 12.4.3.1), validating the whole tree. On
// success the bundle's init key is erased: a KeyPackage is used once (a
// last-resort KeyPackage's keys are kept).
func JoinFromWelcome(cfg *Config, welcome []byte, bundle *KeyPackageBundle, opts *JoinOptions) (*Group, error) {
	g, err := joinFromWelcome(cfg, welcome, bundle, opts)
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

func joinFromWelcome(cfg *Config, welcome []byte, bundle *KeyPackageBundle, opts *JoinOptions) (*Group, error) {
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
	tree, err := verifiedTree(cfg, s, gi, opts.RatchetTree)
	if err != nil {
		return nil, err
	}
	ctx := &gi.GroupContext
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
	ctxBytes, err := codec.Marshal(ctx)
	if err != nil {
		return nil, err
	}
	keys := member.Epoch(ctxBytes)
	if !keys.VerifyConfirmationTag(ctx.ConfirmedTranscriptHash, gi.ConfirmationTag) {
		return nil, invalid(ErrInvalidConfirmationTag, "12.4.3.1", "GroupInfo confirmation tag")
	}
	interim, err := keyschedule.InterimTranscriptHash(s, ctx.ConfirmedTranscriptHash, gi.ConfirmationTag)
	if err != nil {
		return nil, err
	}
	if special != nil {
		if err := checkResumptionJoin(special, gi, tree, opts.Previous); err != nil {
			return nil, err
		}
	}
	st := &epochState{s: s, ctx: ctx, ctxBytes: ctxBytes, tree: tree, priv: priv, me: me, keys: keys,
		interim: interim, confTag: bytes.Clone(gi.ConfirmationTag)}
	if err := st.initSecrets(cfg); err != nil {
		return nil, err
	}
	g := &Group{cfg: cfg, signer: bundle.Signer, st: st}
	g.rememberResumption()
	g.startKeyUpdates()
	return g, nil
}

// checkResumptionJoin applies the extra rules for a Welcome into a group
// made by ReInit or branching (RFC 9420, Section 12.4.3.1, last steps).
func checkResumptionJoin(id *wire.PreSharedKeyID, gi *wire.GroupInfo, tree *ratchettree.Tree, prev *Group) error {
	if gi.GroupContext.Epoch != 1 {
		return invalid(ErrInvalidWelcome, "12.4.3.1", "resumed group must start at epoch 1")
	}
	if prev == nil {
		return nil
	}
	switch id.Usage {
	case wire.ResumptionPSKUsageReInit:
		ri := prev.st.reinit
		if ri == nil {
			return invalid(ErrInvalidWelcome, "12.4.3.1", "previous group's last commit was not a ReInit")
		}
		if !bytes.Equal(ri.GroupID, gi.GroupContext.GroupID) || ri.Version != gi.GroupContext.Version ||
			ri.CipherSuite != gi.GroupContext.CipherSuite || !sameExtensions(ri.Extensions, gi.GroupContext.Extensions) {
			return invalid(ErrInvalidWelcome, "12.4.3.1", "new group does not match the ReInit proposal")
		}
	case wire.ResumptionPSKUsageBranch:
		if gi.GroupContext.CipherSuite != prev.st.ctx.CipherSuite || gi.GroupContext.Version != prev.st.ctx.Version {
			return invalid(ErrInvalidWelcome, "12.4.3.1", "branch changes version or cipher suite")
		}
	}
	return nil
}

func sameExtensions(a, b []wire.Extension) bool {
	ea, _ := codec.Marshal(&wire.GroupContextExtensions{Extensions: a})
	eb, _ := codec.Marshal(&wire.GroupContextExtensions{Extensions: b})
	return bytes.Equal(ea, eb)
}

// treeFor returns the ratchet tree from the GroupInfo's ratchet_tree
// extension, or from the bytes given out of band.
func treeFor(st *suite.Suite, gi *wire.GroupInfo, outOfBand []byte) (*ratchettree.Tree, error) {
	if data, ok := findExtension(gi.Extensions, wire.ExtensionTypeRatchetTree); ok {
		return ratchettree.Decode(st, data)
	}
	if outOfBand == nil {
		return nil, invalid(ErrInvalidWelcome, "12.4.3.3", "no ratchet tree in the Welcome and none given")
	}
	return ratchettree.Decode(st, outOfBand)
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
