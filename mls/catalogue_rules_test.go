package mls_test

import (
	"bytes"
	"testing"

	"github.com/mlskit/mlskit/internal/wire"
	"github.com/mlskit/mlskit/mls"
)

// catalogue lists the cases of TestRuleCatalogue, by section.
func catalogue() []rule {
	var rs []rule
	rs = append(rs, framingRules()...)
	rs = append(rs, leafRules()...)
	rs = append(rs, keyPackageRules()...)
	rs = append(rs, proposalRules()...)
	rs = append(rs, listRules()...)
	rs = append(rs, commitRules()...)
	rs = append(rs, externalCommitRules()...)
	rs = append(rs, welcomeRules()...)
	rs = append(rs, groupInfoRules()...)
	rs = append(rs, extensionRules()...)
	rs = append(rs, reinitRules()...)
	rs = append(rs, unmergedRules()...)
	return rs
}

func prop(p *wire.Proposal) func(t *testing.T, e *advEnv) []byte {
	return func(t *testing.T, e *advEnv) []byte { return e.forge(t, &mls.Forge{Proposal: p}) }
}

func updateWith(edit func(*wire.LeafNode)) func(t *testing.T, e *advEnv) []byte {
	return func(t *testing.T, e *advEnv) []byte {
		l, err := mls.UpdateLeaf(e.bob.g, nil, 1, edit)
		if err != nil {
			t.Fatal(err)
		}
		return e.forge(t, &mls.Forge{Proposal: pUpdate(l)})
	}
}

func addWith(edit func(*wire.KeyPackage)) func(t *testing.T, e *advEnv) []byte {
	return func(t *testing.T, e *advEnv) []byte { return e.forge(t, &mls.Forge{Proposal: pAdd(e.wireKP(t, edit))}) }
}

func commitOf(f func(t *testing.T, e *advEnv) *mls.Forge) func(t *testing.T, e *advEnv) []byte {
	return func(t *testing.T, e *advEnv) []byte { return e.forge(t, f(t, e)) }
}

// lastPathNodeCiphertexts makes a commit whose UpdatePath's last node
// carries the ciphertexts edit makes of its own, signed and encrypted as
// an honest one.
func lastPathNodeCiphertexts(edit func([]wire.HPKECiphertext) []wire.HPKECiphertext) func(t *testing.T, e *advEnv) []byte {
	return commitOf(func(t *testing.T, e *advEnv) *mls.Forge {
		f := commitWith()
		f.Commit.EditPath = func(p *wire.UpdatePath) {
			n := &p.Nodes[len(p.Nodes)-1]
			n.SetSecrets(edit(n.AllSecrets()))
		}
		return f
	})
}

var (
	member      = func(l uint32) *wire.Sender { return &wire.Sender{SenderType: wire.SenderTypeMember, LeafIndex: l} }
	external0   = &wire.Sender{SenderType: wire.SenderTypeExternal}
	newMemberP  = &wire.Sender{SenderType: wire.SenderTypeNewMemberProposal}
	newMemberC  = &wire.Sender{SenderType: wire.SenderTypeNewMemberCommit}
	privateWire = wire.WireFormatPrivateMessage
)

// Section 6: framing, sender authentication.
func framingRules() []rule {
	return []rule{
		{name: "6/protocol-version", section: "6", text: "an MLSMessage's version is mls10 (refused by the decoder)", want: mls.ErrMalformed,
			make: func(t *testing.T, e *advEnv) []byte {
				msg := e.forge(t, &mls.Forge{Proposal: pRemove(3)})
				msg[0], msg[1] = 0, 2 // ProtocolVersion, outside what is signed
				return msg
			}},
		{name: "6/wrong-group-id", section: "6", text: "group_id is the group's", want: mls.ErrWrongGroup,
			make: func(t *testing.T, e *advEnv) []byte {
				return e.forge(t, &mls.Forge{GroupID: []byte("another group"), Proposal: pRemove(3)})
			}},
		{name: "6/wrong-epoch", section: "6, 12.1", text: "a handshake's epoch is the current epoch", want: mls.ErrWrongEpoch,
			make: func(t *testing.T, e *advEnv) []byte {
				return e.forge(t, &mls.Forge{Epoch: u64(mls.GroupState(e.bob.g).Epoch + 1), Proposal: pRemove(3)})
			}},
		{name: "6/application-as-public-message", section: "6", text: "application data is only accepted as a PrivateMessage",
			want: mls.ErrUnknownSender, make: func(t *testing.T, e *advEnv) []byte {
				b, err := mls.PublicApplication(e.bob.g, []byte("in the clear"))
				return must(t, b, err)
			}},
		{name: "6/private-padding-nonzero", section: "6.3.1", text: "PrivateMessageContent padding is all zero (else malformed)",
			want: mls.ErrMalformed, public: notPublicPrivate, make: func(t *testing.T, e *advEnv) []byte {
				return e.forge(t, &mls.Forge{WireFormat: privateWire, Proposal: pRemove(3), Padding: []byte{0, 0, 1, 0}})
			}},
		{name: "6/private-sender-data-blank-leaf", section: "6.3.2", text: "SenderData leaf_index is a non-blank leaf",
			want: mls.ErrUnknownSender, public: notPublicPrivate, make: func(t *testing.T, e *advEnv) []byte {
				return e.forge(t, &mls.Forge{WireFormat: privateWire, Proposal: pRemove(3), SenderDataLeaf: u32(blankLeaf)})
			}},
		{name: "6/private-sender-data-aliased-leaf", section: "6.3.2", text: "SenderData leaf_index < the tree's leaf count (no 2^31+k aliasing)",
			want: mls.ErrUnknownSender, public: notPublicPrivate, make: func(t *testing.T, e *advEnv) []byte {
				return e.forge(t, &mls.Forge{WireFormat: privateWire, Proposal: pRemove(3), SenderDataLeaf: u32(1<<31 + 1)})
			}},
		{name: "6/member-sender-blank-leaf", section: "6.1", text: "a member sender's leaf_index names a non-blank leaf",
			want: mls.ErrUnknownSender, make: func(t *testing.T, e *advEnv) []byte {
				return e.forge(t, &mls.Forge{Sender: member(blankLeaf), Proposal: pRemove(3)})
			}},
		{name: "6/member-sender-aliased-leaf", section: "6.1", text: "a member sender's leaf_index < the tree's leaf count (no 2^31+k aliasing)",
			want: mls.ErrUnknownSender, make: func(t *testing.T, e *advEnv) []byte {
				return e.forge(t, &mls.Forge{Sender: member(1<<31 + 1), Proposal: pRemove(3)})
			}},
		{name: "6/member-signature-key", section: "6.1", text: "a member's content is signed with the key of its leaf",
			want: mls.ErrInvalidSignature, make: func(t *testing.T, e *advEnv) []byte {
				return e.forge(t, &mls.Forge{Signer: e.carol.sig, Proposal: pRemove(3)})
			}},
		{name: "6/membership-tag", section: "6.2", text: "a member's PublicMessage carries a valid membership_tag",
			want: mls.ErrInvalidMembershipTag, public: notPublicTag, make: func(t *testing.T, e *advEnv) []byte {
				// Carol's signing key in the hands of someone without the
				// epoch's secrets.
				return e.forge(t, &mls.Forge{Sender: member(3), Signer: e.carol.sig, Proposal: pRemove(1),
					MembershipKey: make([]byte, hashLen)})
			}},
		{name: "6/external-sender-commit", section: "6.1", text: "an external sender sends only proposals",
			want: mls.ErrUnknownSender, make: func(t *testing.T, e *advEnv) []byte {
				return e.forge(t, &mls.Forge{Sender: external0, Signer: e.ext, Commit: &mls.CommitForge{Proposals: byValue(pRemove(3))}})
			}},
		{name: "6/external-sender-index", section: "6.1, 12.1.8.1", text: "an external sender_index names an entry of external_senders",
			want: mls.ErrUnknownSender, make: func(t *testing.T, e *advEnv) []byte {
				return e.forge(t, &mls.Forge{Sender: &wire.Sender{SenderType: wire.SenderTypeExternal, SenderIndex: 1}, Signer: e.ext, Proposal: pRemove(3)})
			}},
		{name: "6/external-sender-signature", section: "6.1", text: "an external proposal is signed with the key of its external_senders entry",
			want: mls.ErrInvalidSignature, make: func(t *testing.T, e *advEnv) []byte {
				return e.forge(t, &mls.Forge{Sender: external0, Signer: e.dave.sig, Proposal: pRemove(3)})
			}},
		{name: "6/new-member-proposal-not-add", section: "6.1, 12.1.8", text: "a new_member_proposal sender sends only Add",
			want: mls.ErrUnknownSender, make: func(t *testing.T, e *advEnv) []byte {
				return e.forge(t, &mls.Forge{Sender: newMemberP, Signer: e.dave.sig, Proposal: pRemove(3)})
			}},
		{name: "6/new-member-proposal-signature", section: "6.1", text: "a new_member_proposal is signed with the key of the KeyPackage it adds",
			want: mls.ErrInvalidSignature, make: func(t *testing.T, e *advEnv) []byte {
				return e.forge(t, &mls.Forge{Sender: newMemberP, Signer: e.ext, Proposal: pAdd(mls.WireKeyPackage(e.daveKP))})
			}},
		{name: "6/new-member-commit-proposal", section: "6.1", text: "a new_member_commit sender sends only commits",
			want: mls.ErrUnknownSender, make: func(t *testing.T, e *advEnv) []byte {
				return e.forge(t, &mls.Forge{Sender: newMemberC, Signer: e.dave.sig, Proposal: pAdd(mls.WireKeyPackage(e.daveKP))})
			}},
		{name: "6/member-commit-sender-type", section: "6, 12.4.2", text: "a commit comes from a member or a new_member_commit sender",
			want: mls.ErrUnknownSender, make: func(t *testing.T, e *advEnv) []byte {
				return e.forge(t, &mls.Forge{Sender: newMemberP, Signer: e.dave.sig, Commit: &mls.CommitForge{Path: true}})
			}},
	}
}

// Section 7.3 (leaf nodes, in Update proposals) and 7.9 (parent hashes).
func leafRules() []rule {
	return []rule{
		{name: "7.3/update-leaf-source", section: "7.3", text: "an Update's LeafNode has leaf_node_source update", want: mls.ErrInvalidTree,
			make: updateWith(func(l *wire.LeafNode) {
				l.LeafNodeSource = wire.LeafNodeSourceKeyPackage
				l.Lifetime = wire.Lifetime{NotBefore: 0, NotAfter: 1 << 62}
			})},
		{name: "7.3/update-same-encryption-key", section: "7.3", text: "an Update's encryption_key differs from the replaced leaf's",
			want: mls.ErrInvalidTree, make: func(t *testing.T, e *advEnv) []byte {
				return updateWith(func(l *wire.LeafNode) { l.EncryptionKey = mls.LeafOf(e.bob.g, 1).EncryptionKey })(t, e)
			}},
		{name: "7.3/encryption-key-unique", section: "7.3", text: "a new leaf's encryption_key is not in the tree",
			want: mls.ErrInvalidTree, make: func(t *testing.T, e *advEnv) []byte {
				return updateWith(func(l *wire.LeafNode) { l.EncryptionKey = mls.LeafOf(e.bob.g, 3).EncryptionKey })(t, e)
			}},
		{name: "7.3/signature-key-unique", section: "7.3", text: "a new leaf's signature_key is not another member's",
			want: mls.ErrInvalidTree, make: func(t *testing.T, e *advEnv) []byte {
				l, err := mls.UpdateLeaf(e.bob.g, e.carol.sig, 1, nil)
				if err != nil {
					t.Fatal(err)
				}
				return e.forge(t, &mls.Forge{Proposal: pUpdate(l)})
			}},
		{name: "7.3/leaf-signature", section: "7.3", text: "a LeafNode's signature verifies with its signature_key",
			want: mls.ErrInvalidSignature, make: func(t *testing.T, e *advEnv) []byte {
				l, err := mls.UpdateLeaf(e.bob.g, nil, 1, nil)
				if err != nil {
					t.Fatal(err)
				}
				l.Signature[0] ^= 1
				return e.forge(t, &mls.Forge{Proposal: pUpdate(l)})
			}},
		{name: "7.3/leaf-signature-context", section: "7.2, 7.3", text: "an Update LeafNode is signed over the sender's group_id and leaf_index",
			want: mls.ErrInvalidSignature, make: func(t *testing.T, e *advEnv) []byte {
				l, err := mls.UpdateLeaf(e.bob.g, nil, 3, nil)
				if err != nil {
					t.Fatal(err)
				}
				return e.forge(t, &mls.Forge{Proposal: pUpdate(l)})
			}},
		{name: "7.3/extension-in-capabilities", section: "7.3", text: "each extension of a LeafNode is listed in its capabilities",
			want: mls.ErrInvalidTree, make: updateWith(func(l *wire.LeafNode) {
				l.Extensions = append(l.Extensions, ext(0xff02, 1))
			})},
		{name: "7.3/own-credential-type-in-capabilities", section: "7.2, 7.3", text: "a LeafNode's capabilities list its own credential type",
			want: mls.ErrInvalidTree, make: updateWith(func(l *wire.LeafNode) {
				l.Capabilities.Credentials = []wire.CredentialType{wire.CredentialTypeX509}
			})},
		{name: "7.3/credential-type-supported-by-members", section: "7.3", text: "a LeafNode's credential type is supported by every member",
			want: mls.ErrInvalidTree, make: updateWith(func(l *wire.LeafNode) {
				l.Credential = wire.Credential{CredentialType: 0xf001, Unknown: []byte("custom")}
				l.Capabilities.Credentials = append(l.Capabilities.Credentials, 0xf001)
			})},
		{name: "7.3/supports-credential-types-in-use", section: "7.3", text: "a LeafNode supports every credential type the other members use",
			want: mls.ErrInvalidTree, env: func(t testing.TB) *advEnv { return newAdvEnv(t, "cred types") },
			make: func(t *testing.T, e *advEnv) []byte {
				// carol and alice use Basic; bob's new leaf keeps Basic
				// but a capabilities list with only X.509 and Basic's
				// absence would fail 7.2 first, so the leaf switches to
				// X.509 and drops Basic.
				return updateWith(func(l *wire.LeafNode) {
					l.Credential = wire.Credential{CredentialType: wire.CredentialTypeX509, Certificates: [][]byte{[]byte("cert")}}
					l.Capabilities.Credentials = []wire.CredentialType{wire.CredentialTypeX509}
				})(t, e)
			}},
		{name: "7.3/required-capabilities", section: "7.3, 11.1", text: "a LeafNode supports the group's required_capabilities",
			want: mls.ErrInvalidTree, env: func(t testing.TB) *advEnv {
				return newAdvEnv(t, "required caps", requiredCapabilities([]uint16{uint16(mls.ExtensionTypeAppDataDictionary)}, nil, nil))
			}, make: updateWith(func(l *wire.LeafNode) { l.Capabilities.Extensions = nil })},
		{name: "7.3/commit-leaf-source", section: "7.3, 12.4.2", text: "an UpdatePath LeafNode has leaf_node_source commit",
			want: mls.ErrInvalidTree, make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge {
				f := commitWith()
				f.Commit.EditPath = func(p *wire.UpdatePath) { p.LeafNode.LeafNodeSource = wire.LeafNodeSourceUpdate }
				return f
			})},
		{name: "7.3/commit-leaf-signature", section: "7.3, 12.4.2", text: "an UpdatePath LeafNode's signature verifies",
			want: mls.ErrInvalidSignature, make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge {
				f := commitWith()
				f.Commit.KeepLeafSignature = true
				f.Commit.EditPath = func(p *wire.UpdatePath) { p.LeafNode.Signature[3] ^= 1 }
				return f
			})},
		{name: "7.9/commit-parent-hash", section: "7.9.2", text: "the committer's new leaf's parent_hash matches its UpdatePath",
			want: mls.ErrInvalidTree, make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge {
				f := commitWith()
				f.Commit.EditPath = func(p *wire.UpdatePath) { p.LeafNode.ParentHash[0] ^= 1 }
				return f
			})},
	}
}

// Section 10.1: KeyPackages in Add proposals.
func keyPackageRules() []rule {
	return []rule{
		{name: "10.1/cipher-suite", section: "10.1", text: "a KeyPackage's cipher suite is the group's", want: mls.ErrInvalidKeyPackage,
			make: func(t *testing.T, e *advEnv) []byte {
				p := newClient(t, "p256", mls.P256_AES128GCM_SHA256_P256, e.cfg)
				return e.forge(t, &mls.Forge{Proposal: pAdd(mls.WireKeyPackage(p.keyPackage(t)))})
			}},
		{name: "10.1/version", section: "10.1", text: "a KeyPackage's protocol version is the group's", want: mls.ErrInvalidKeyPackage,
			make: addWith(func(kp *wire.KeyPackage) { kp.Version = 2 })},
		{name: "10.1/leaf-source", section: "10.1, 7.3", text: "a KeyPackage's LeafNode has leaf_node_source key_package", want: mls.ErrInvalidKeyPackage,
			make: addWith(func(kp *wire.KeyPackage) { kp.LeafNode.LeafNodeSource = wire.LeafNodeSourceUpdate })},
		{name: "10.1/signature", section: "10.1", text: "a KeyPackage's signature verifies with its leaf's key", want: mls.ErrInvalidKeyPackage,
			make: func(t *testing.T, e *advEnv) []byte {
				kp := e.wireKP(t, nil)
				kp.Signature[0] ^= 1
				return e.forge(t, &mls.Forge{Proposal: pAdd(kp)})
			}},
		{name: "10.1/init-key-differs", section: "10.1", text: "a KeyPackage's init_key differs from its leaf's encryption_key", want: mls.ErrInvalidKeyPackage,
			make: addWith(func(kp *wire.KeyPackage) { kp.InitKey = kp.LeafNode.EncryptionKey })},
		{name: "10.1/leaf-lifetime-order", section: "10.1, 7.3", text: "a KeyPackage lifetime's not_before is not after its not_after", want: mls.ErrInvalidKeyPackage,
			make: addWith(func(kp *wire.KeyPackage) {
				kp.LeafNode.Lifetime = wire.Lifetime{NotBefore: kp.LeafNode.Lifetime.NotAfter, NotAfter: kp.LeafNode.Lifetime.NotBefore}
			})},
	}
}

// Section 12.1: individual proposals.
func proposalRules() []rule {
	return []rule{
		{name: "12.1/duplicate-proposal", section: "12.1", text: "a proposal already cached this epoch is not cached twice", want: mls.ErrInvalidProposal,
			make: func(t *testing.T, e *advEnv) []byte {
				msg := e.forge(t, &mls.Forge{Proposal: pRemove(3)})
				e.deliverProposal(t, msg)
				return msg
			}},
		{name: "12.1.3/remove-blank-leaf", section: "12.1.3", text: "a Remove names a non-blank leaf", want: mls.ErrInvalidProposal,
			make: prop(pRemove(blankLeaf))},
		{name: "12.1.3/remove-out-of-range", section: "12.1.3", text: "a Remove names a leaf < the tree's leaf count (no 2^31+k aliasing)",
			want: mls.ErrInvalidProposal, make: prop(pRemove(1<<31 + 3))},
		{name: "12.1.4/psk-nonce-length", section: "12.1.4", text: "a PreSharedKey's psk_nonce is KDF.Nh bytes", want: mls.ErrInvalidProposal,
			make: prop(pPSK(wire.PreSharedKeyID{PSKType: wire.PSKTypeExternal, PSKID: []byte("psk"), PSKNonce: []byte{1, 2, 3}}))},
		{name: "12.1.4/psk-usage-reinit", section: "12.1.4, 11.2", text: "a resumption PSK with usage reinit is invalid in a proposal", want: mls.ErrInvalidProposal,
			make: func(t *testing.T, e *advEnv) []byte {
				return prop(pPSK(wire.PreSharedKeyID{PSKType: wire.PSKTypeResumption, Usage: wire.ResumptionPSKUsageReInit,
					PSKGroupID: mls.GroupState(e.bob.g).GroupID, PSKEpoch: 1, PSKNonce: nonce()}))(t, e)
			}},
		{name: "12.1.4/psk-usage-branch", section: "12.1.4, 11.3", text: "a resumption PSK with usage branch is invalid in a proposal", want: mls.ErrInvalidProposal,
			make: func(t *testing.T, e *advEnv) []byte {
				return prop(pPSK(wire.PreSharedKeyID{PSKType: wire.PSKTypeResumption, Usage: wire.ResumptionPSKUsageBranch,
					PSKGroupID: mls.GroupState(e.bob.g).GroupID, PSKEpoch: 1, PSKNonce: nonce()}))(t, e)
			}},
		{name: "12.1.5/reinit-older-version", section: "12.1.5", text: "a ReInit's version is not below the group's", want: mls.ErrInvalidProposal,
			make: prop(pReInit(0))},
		{name: "12.1.6/external-init-proposal", section: "12.1.6", text: "ExternalInit is only used in an external commit", want: mls.ErrInvalidProposal,
			make: prop(&wire.Proposal{ProposalType: wire.ProposalTypeExternalInit, ExternalInit: &wire.ExternalInit{KEMOutput: []byte("kem")}})},
		{name: "12.1.8/external-sender-update", section: "12.1.8", text: "an external sender may not send Update (rejected as malformed)",
			want: mls.ErrUnknownSender, make: func(t *testing.T, e *advEnv) []byte {
				l, err := mls.UpdateLeaf(e.bob.g, nil, 1, nil)
				if err != nil {
					t.Fatal(err)
				}
				return e.forge(t, &mls.Forge{Sender: external0, Signer: e.ext, Proposal: pUpdate(l)})
			}},
		{name: "12.1.8/external-sender-external-init", section: "12.1.8", text: "an external sender may not send ExternalInit (rejected as malformed)",
			want: mls.ErrUnknownSender, make: func(t *testing.T, e *advEnv) []byte {
				return e.forge(t, &mls.Forge{Sender: external0, Signer: e.ext,
					Proposal: &wire.Proposal{ProposalType: wire.ProposalTypeExternalInit, ExternalInit: &wire.ExternalInit{KEMOutput: []byte("k")}}})
			}},
		{name: "12.1.8/external-proposal-authorization", section: "12.1.8", text: "external and new-member proposals the application does not authorize are invalid",
			want: mls.ErrNotAuthorized, env: func(t testing.TB) *advEnv {
				e := newAdvEnv(t, "no authorization")
				e.cfg.ExternalProposals = nil // the default: nobody authorized
				return e
			}, make: func(t *testing.T, e *advEnv) []byte {
				return e.forge(t, &mls.Forge{Sender: newMemberP, Signer: e.dave.sig, Proposal: pAdd(mls.WireKeyPackage(e.daveKP))})
			}},
		{name: "12.1.8/external-sender-without-extension", section: "12.1.8", text: "external proposals need the external_senders extension",
			want: mls.ErrUnknownSender, env: func(t testing.TB) *advEnv { return newAdvEnvWithout(t) },
			make: func(t *testing.T, e *advEnv) []byte {
				return e.forge(t, &mls.Forge{Sender: external0, Signer: e.ext, Proposal: pRemove(3)})
			}},
	}
}

// newAdvEnvWithout is the catalogue group after a commit that drops the
// external_senders extension.
func newAdvEnvWithout(t testing.TB) *advEnv {
	e := newAdvEnv(t, "no external senders")
	commit(t, e.alice, &mls.CommitOptions{Proposals: []*mls.Proposal{mls.GroupContextExtensionsProposal(nil)}}, e.members)
	gi, err := e.alice.g.GroupInfo(true, false)
	if err != nil {
		t.Fatal(err)
	}
	if e.pg, err = mls.NewPublicGroup(e.cfg, gi, nil); err != nil {
		t.Fatal(err)
	}
	return e
}

// Section 12.2: the list of proposals a (regular) commit carries.
func listRules() []rule {
	return []rule{
		{name: "12.2/invalid-proposal-by-value", section: "12.2", text: "every proposal in the list is valid on its own", want: mls.ErrInvalidProposal,
			make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge { return commitWith(pRemove(blankLeaf)) })},
		{name: "12.2/committer-own-update", section: "12.2", text: "the list holds no Update by the committer", want: mls.ErrInvalidCommit,
			make: func(t *testing.T, e *advEnv) []byte {
				l, err := mls.UpdateLeaf(e.bob.g, nil, 1, nil)
				if err != nil {
					t.Fatal(err)
				}
				ref := e.deliverProposal(t, e.forge(t, &mls.Forge{Proposal: pUpdate(l)}))
				return e.forge(t, &mls.Forge{Commit: &mls.CommitForge{Proposals: []wire.ProposalOrRef{byRef(ref)}, Path: true}})
			}},
		{name: "12.2/remove-committer", section: "12.2", text: "the list does not remove the committer", want: mls.ErrInvalidCommit,
			make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge { return commitWith(pRemove(1)) })},
		{name: "12.2/remove-committer-aliased", section: "12.2", text: "the list does not remove the committer under an aliased index (2^31+k)",
			want: mls.ErrInvalidProposal, make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge { return commitWith(pRemove(1<<31 + 1)) })},
		{name: "12.2/two-removes-same-leaf", section: "12.2", text: "no two Update/Remove proposals for the same leaf", want: mls.ErrInvalidCommit,
			make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge { return commitWith(pRemove(3), pRemove(3)) })},
		{name: "12.2/update-and-remove-same-leaf", section: "12.2", text: "no Update and Remove for the same leaf", want: mls.ErrInvalidCommit,
			make: func(t *testing.T, e *advEnv) []byte {
				l, err := mls.UpdateLeaf(e.carol.g, nil, 3, nil)
				if err != nil {
					t.Fatal(err)
				}
				up, err := mls.ForgeMessage(e.carol.g, &mls.Forge{Proposal: pUpdate(l)})
				if err != nil {
					t.Fatal(err)
				}
				ref := e.deliverProposal(t, up)
				return e.forge(t, &mls.Forge{Commit: &mls.CommitForge{
					Proposals: append([]wire.ProposalOrRef{byRef(ref)}, byValue(pRemove(3))...), Path: true}})
			}},
		{name: "12.2/two-adds-same-client", section: "12.2", text: "no two Adds of the same client (signature key)", want: mls.ErrInvalidProposal,
			make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge {
				kp := mls.WireKeyPackage(e.daveKP)
				return commitWith(pAdd(kp), pAdd(kp))
			})},
		{name: "12.2/add-existing-member", section: "12.2", text: "no Add of a client already in the group (unless removed in the list)", want: mls.ErrInvalidKeyPackage,
			make: func(t *testing.T, e *advEnv) []byte {
				again := &client{name: "carol again", cfg: e.cfg, sig: e.carol.sig, cred: e.carol.cred}
				return e.forge(t, commitWith(pAdd(mls.WireKeyPackage(again.keyPackage(t)))))
			}},
		{name: "12.2/two-psks-same-id", section: "12.2", text: "no two PreSharedKey proposals with the same PreSharedKeyID", want: mls.ErrInvalidCommit,
			make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge { return commitWith(pPSK(extPSK("p")), pPSK(extPSK("p"))) })},
		{name: "12.2/two-gce", section: "12.2", text: "at most one GroupContextExtensions proposal", want: mls.ErrInvalidCommit,
			make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge {
				exts := mls.GroupState(e.bob.g).Extensions
				return commitWith(pGCE(exts...), pGCE(exts...))
			})},
		{name: "12.2/reinit-with-others", section: "12.2", text: "a ReInit is the only proposal of its commit", want: mls.ErrInvalidCommit,
			make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge { return commitWith(pReInit(1), pRemove(3)) })},
		{name: "12.2/external-init-in-regular-commit", section: "12.2", text: "a regular commit carries no ExternalInit", want: mls.ErrInvalidCommit,
			make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge {
				ei, err := mls.ExternalInitFor(e.bob.g)
				if err != nil {
					t.Fatal(err)
				}
				return commitWith(ei)
			})},
		{name: "12.2/unsupported-custom-proposal", section: "12.2", text: "a non-default proposal type is supported by every member that stays",
			want: mls.ErrInvalidCommit, make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge {
				return commitWith(&wire.Proposal{ProposalType: 0xf00d, Unknown: []byte("x")})
			})},
		{name: "11.1/gce-required-capabilities-supported", section: "11.1, 12.1.7", text: "a GroupContextExtensions' required_capabilities are supported by every member",
			want: mls.ErrInvalidProposal, make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge {
				rc := requiredCapabilities([]uint16{0xff07}, nil, nil)
				return commitWith(pGCE(append(append([]wire.Extension{}, mls.GroupState(e.bob.g).Extensions...), ext(rc.Type, rc.Data...))...))
			})},
		{name: "13.4/gce-extension-supported", section: "13.4, 12.1.7", text: "every GroupContext extension is supported by every member",
			want: mls.ErrInvalidProposal, make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge {
				return commitWith(pGCE(append(append([]wire.Extension{}, mls.GroupState(e.bob.g).Extensions...), ext(0xff08, 1))...))
			})},
		{name: "12.3/gce-applies-before-adds", section: "12.3, 11.1", text: "a GroupContextExtensions' new required_capabilities apply to the Adds of the same commit",
			want: mls.ErrInvalidProposal, make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge {
				rc := requiredCapabilities([]uint16{uint16(mls.ExtensionTypeAppDataDictionary)}, nil, nil)
				exts := append(append([]wire.Extension{}, mls.GroupState(e.bob.g).Extensions...), ext(rc.Type, rc.Data...))
				kp := e.wireKP(t, func(k *wire.KeyPackage) { k.LeafNode.Capabilities.Extensions = nil; k.LeafNode.Extensions = nil })
				return commitWith(pGCE(exts...), pAdd(kp))
			})},
	}
}

// Section 12.4 and 12.4.2: processing a commit.
func commitRules() []rule {
	return []rule{
		{name: "12.4.2/unknown-reference", section: "12.4.2", text: "every proposal reference names a proposal cached this epoch", want: mls.ErrInvalidCommit,
			make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge {
				return &mls.Forge{Commit: &mls.CommitForge{Proposals: []wire.ProposalOrRef{byRef(make([]byte, hashLen))}, Path: true}}
			})},
		{name: "12.4.2/path-required-empty", section: "12.4, 12.4.2", text: "an empty commit carries a path", want: mls.ErrInvalidCommit,
			make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge { return &mls.Forge{Commit: &mls.CommitForge{}} })},
		{name: "12.4.2/path-required-remove", section: "12.4, 12.4.2", text: "a commit with a Remove carries a path", want: mls.ErrInvalidCommit,
			make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge {
				return &mls.Forge{Commit: &mls.CommitForge{Proposals: byValue(pRemove(3))}}
			})},
		{name: "12.4.2/path-required-update", section: "12.4, 12.4.2", text: "a commit with an Update carries a path", want: mls.ErrInvalidCommit,
			make: func(t *testing.T, e *advEnv) []byte {
				l, err := mls.UpdateLeaf(e.carol.g, nil, 3, nil)
				if err != nil {
					t.Fatal(err)
				}
				up, err := mls.ForgeMessage(e.carol.g, &mls.Forge{Proposal: pUpdate(l)})
				if err != nil {
					t.Fatal(err)
				}
				ref := e.deliverProposal(t, up)
				return e.forge(t, &mls.Forge{Commit: &mls.CommitForge{Proposals: []wire.ProposalOrRef{byRef(ref)}}})
			}},
		{name: "12.4.2/path-required-gce", section: "12.4, 17.4", text: "a commit with a GroupContextExtensions carries a path", want: mls.ErrInvalidCommit,
			make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge {
				return &mls.Forge{Commit: &mls.CommitForge{Proposals: byValue(pGCE(mls.GroupState(e.bob.g).Extensions...))}}
			})},
		{name: "12.4.2/psk-available", section: "12.4.2", text: "every PreSharedKey of the commit is available", want: mls.ErrMissingPSK,
			public: notPublicPSK, make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge { return commitWith(pPSK(extPSK("nobody has it"))) })},
		{name: "12.4.2/path-leaf-new-encryption-key", section: "12.4.2", text: "the path's LeafNode has a new encryption_key", want: mls.ErrInvalidTree,
			make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge {
				f := commitWith()
				f.Commit.EditPath = func(p *wire.UpdatePath) { p.LeafNode.EncryptionKey = mls.LeafOf(e.bob.g, 1).EncryptionKey }
				return f
			})},
		{name: "12.4.2/path-keys-not-in-tree", section: "12.4.2", text: "no public key of the UpdatePath is already in the tree", want: mls.ErrInvalidTree,
			make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge {
				f := commitWith()
				f.Commit.EditPath = func(p *wire.UpdatePath) { p.Nodes[0].EncryptionKey = mls.LeafOf(e.bob.g, 0).EncryptionKey }
				return f
			})},
		{name: "12.4.2/path-keys-distinct", section: "12.4.2", text: "no public key repeats within the UpdatePath", want: mls.ErrInvalidTree,
			make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge {
				f := commitWith()
				f.Commit.EditPath = func(p *wire.UpdatePath) { p.Nodes[1].EncryptionKey = p.Nodes[0].EncryptionKey }
				return f
			})},
		{name: "12.4.2/path-length", section: "12.4.2, 7.6", text: "the UpdatePath has one node per filtered direct path node", want: mls.ErrInvalidTree,
			make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge {
				f := commitWith()
				f.Commit.EditPath = func(p *wire.UpdatePath) { p.Nodes = p.Nodes[:1] }
				return f
			})},
		{name: "12.4.2/path-ciphertexts", section: "12.4.2, 7.6", text: "each UpdatePath node has one ciphertext per resolution node", want: mls.ErrInvalidTree,
			make: lastPathNodeCiphertexts(func(cts []wire.HPKECiphertext) []wire.HPKECiphertext { return append(cts, cts[0]) })},
		{name: "12.4.2/path-ciphertexts-missing", section: "12.4.2, 7.6", text: "each UpdatePath node has one ciphertext per resolution node (here one short)", want: mls.ErrInvalidTree,
			make: lastPathNodeCiphertexts(func(cts []wire.HPKECiphertext) []wire.HPKECiphertext { return cts[:len(cts)-1] })},
		{name: "12.4.2/path-secret-low-order-kem-output", section: "12.4.2, 7.6, RFC 9180 7.1.4",
			text: "the path secret sent to the receiver decrypts (here every kem_output is the low-order point 0)", want: mls.ErrInvalidTree,
			public: notPublicPathSecret, make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge {
				f := commitWith()
				f.Commit.EditPath = func(p *wire.UpdatePath) {
					for i := range p.Nodes {
						cts := p.Nodes[i].AllSecrets()
						for j := range cts {
							cts[j].KEMOutput = make([]byte, 32)
						}
						p.Nodes[i].SetSecrets(cts)
					}
				}
				return f
			})},
		{name: "12.4.2/confirmation-tag", section: "12.4.2", text: "the confirmation_tag verifies with the new epoch's confirmation_key",
			want: mls.ErrInvalidConfirmationTag, public: notPublicTag, make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge {
				f := commitWith()
				f.Commit.ConfirmationTag = make([]byte, hashLen)
				return f
			})},
		{name: "12.4.2/removed-member-validates-path", section: "12.4.2, 7.9.2", text: "a member a commit removes still validates its UpdatePath (here: the parent hash)",
			want: mls.ErrInvalidTree, make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge {
				f := commitWith(pRemove(0))
				f.Commit.EditPath = func(p *wire.UpdatePath) { p.LeafNode.ParentHash[0] ^= 1 }
				return f
			})},
		{name: "12.4.2/removed-member-psk-available", section: "12.4.2", text: "a member a commit removes still checks that every PreSharedKey is available",
			want: mls.ErrMissingPSK, public: notPublicPSK, make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge {
				return commitWith(pRemove(0), pPSK(extPSK("nobody has it")))
			})},
		{name: "12.4.2/committer-credential-succession", section: "12.4.2, 5.3.1", text: "the committer's new credential is an acceptable successor",
			want: mls.ErrCredentialRejected, make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge {
				f := commitWith()
				f.Commit.Leaf = func(l *wire.LeafNode) {
					l.Credential = wire.Credential{CredentialType: wire.CredentialTypeBasic, Identity: []byte("mallory")}
				}
				return f
			})},
	}
}

func extCommit(ps ...*wire.Proposal) *mls.Forge {
	return &mls.Forge{Sender: newMemberC, Commit: &mls.CommitForge{Proposals: byValue(ps...), Path: true}}
}

func (e *advEnv) extInit(t *testing.T) *wire.Proposal {
	ei, err := mls.ExternalInitFor(e.alice.g)
	if err != nil {
		t.Fatal(err)
	}
	return ei
}

func (e *advEnv) asDave(f *mls.Forge) *mls.Forge {
	f.Signer = e.dave.sig
	return f
}

// Section 12.4.3.2: external commits.
func externalCommitRules() []rule {
	return []rule{
		{name: "12.4.3.2/no-external-init", section: "12.2, 12.4.3.2", text: "an external commit has exactly one ExternalInit (none)", want: mls.ErrInvalidCommit,
			make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge { return e.asDave(extCommit()) })},
		{name: "12.4.3.2/two-external-inits", section: "12.2, 12.4.3.2", text: "an external commit has exactly one ExternalInit (two)", want: mls.ErrInvalidCommit,
			make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge { return e.asDave(extCommit(e.extInit(t), e.extInit(t))) })},
		{name: "12.4.3.2/other-proposal", section: "12.2, 12.4.3.2", text: "an external commit carries only ExternalInit, Remove and PreSharedKey", want: mls.ErrInvalidCommit,
			make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge {
				return e.asDave(extCommit(e.extInit(t), pGCE(mls.GroupState(e.bob.g).Extensions...)))
			})},
		{name: "12.4.3.2/two-removes", section: "12.2, 12.4.3.2", text: "an external commit removes at most one member", want: mls.ErrInvalidCommit,
			make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge {
				return e.asDave(extCommit(e.extInit(t), pRemove(1), pRemove(3)))
			})},
		{name: "12.4.3.2/by-reference", section: "12.4.3.2", text: "an external commit includes no proposal by reference", want: mls.ErrInvalidCommit,
			make: func(t *testing.T, e *advEnv) []byte {
				ref := e.deliverProposal(t, e.forge(t, &mls.Forge{Proposal: pPSK(extPSK("p"))}))
				f := e.asDave(extCommit(e.extInit(t)))
				f.Commit.Proposals = append(f.Commit.Proposals, byRef(ref))
				return e.forge(t, f)
			}},
		{name: "12.4.3.2/path-required", section: "12.4.3.2", text: "an external commit carries a path", want: mls.ErrUnknownSender,
			make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge {
				f := e.asDave(extCommit(e.extInit(t)))
				f.Commit.Path = false
				return f
			})},
		{name: "12.4.3.2/signed-by-joiner", section: "12.4.3.2", text: "an external commit is signed with the key of its path's LeafNode", want: mls.ErrInvalidSignature,
			make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge {
				f := e.asDave(extCommit(e.extInit(t)))
				f.Commit.EditPath = func(p *wire.UpdatePath) { p.LeafNode.SignatureKey = e.ext.PublicKey() }
				f.Commit.KeepLeafSignature = true
				return f
			})},
		{name: "12.4.3.2/external-init-kem-output", section: "8.3, 12.4.3.2", text: "the ExternalInit's kem_output decapsulates with the external key", want: mls.ErrInvalidCommit,
			public: notPublicKEM, make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge {
				return e.asDave(extCommit(&wire.Proposal{ProposalType: wire.ProposalTypeExternalInit,
					ExternalInit: &wire.ExternalInit{KEMOutput: []byte("not a KEM output")}}))
			})},
		{name: "12.4.3.2/resync-credential-at-removed", section: "12.2, 12.4.3.2", text: "the member a resync removes checks the new credential is its acceptable successor",
			want: mls.ErrCredentialRejected, make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge {
				return e.asDave(extCommit(e.extInit(t), pRemove(0)))
			})},
		{name: "12.4.3.2/resync-credential", section: "12.2, 12.4.3.2", text: "a resync's new credential is an acceptable successor of the removed member's",
			want: mls.ErrCredentialRejected, make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge {
				return e.asDave(extCommit(e.extInit(t), pRemove(3)))
			})},
	}
}

func (e *advEnv) forgeWelcome(t *testing.T, f *mls.WelcomeForge) []byte {
	t.Helper()
	w, err := mls.ForgeWelcome(e.alice.g, e.daveKP, f)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func welcomeOf(f func(t *testing.T, e *advEnv) *mls.WelcomeForge) func(t *testing.T, e *advEnv) ([]byte, *mls.JoinOptions) {
	return func(t *testing.T, e *advEnv) ([]byte, *mls.JoinOptions) { return e.forgeWelcome(t, f(t, e)), nil }
}

const notPublicWelcome = "a Welcome is encrypted to the joiner"

// Section 12.4.3.1 (and 11.2, 11.3): Welcomes.
func welcomeRules() []rule {
	w := func(r rule) rule { r.kind, r.public = welcome, notPublicWelcome; return r }
	return []rule{
		w(rule{name: "12.4.3.1/not-addressed", section: "12.4.3.1", text: "a Welcome has an entry for one of the client's KeyPackages", want: mls.ErrNoMatchingKeyPackage,
			join: func(t *testing.T, e *advEnv) ([]byte, *mls.JoinOptions) {
				erin := newClient(t, "erin", fastSuite, e.cfg)
				w, err := mls.ForgeWelcome(e.alice.g, erin.keyPackage(t), &mls.WelcomeForge{})
				return must(t, w, err), nil
			}}),
		w(rule{name: "12.4.3.1/psk-available", section: "12.4.3.1", text: "every PSK the GroupSecrets name is available", want: mls.ErrMissingPSK,
			join: welcomeOf(func(t *testing.T, e *advEnv) *mls.WelcomeForge {
				return &mls.WelcomeForge{Secrets: func(gs *wire.GroupSecrets) { gs.PSKs = []wire.PreSharedKeyID{extPSK("unknown")} }}
			})}),
		w(rule{name: "12.4.3.1/one-resumption-psk", section: "12.4.3.1", text: "at most one resumption PSK of usage reinit or branch", want: mls.ErrInvalidWelcome,
			join: welcomeOf(func(t *testing.T, e *advEnv) *mls.WelcomeForge {
				id := wire.PreSharedKeyID{PSKType: wire.PSKTypeResumption, Usage: wire.ResumptionPSKUsageBranch,
					PSKGroupID: mls.GroupState(e.alice.g).GroupID, PSKEpoch: mls.GroupState(e.alice.g).Epoch, PSKNonce: nonce()}
				id2 := id
				id2.Usage = wire.ResumptionPSKUsageReInit
				return &mls.WelcomeForge{Secrets: func(gs *wire.GroupSecrets) { gs.PSKs = []wire.PreSharedKeyID{id, id2} }}
			})}),
		w(rule{name: "12.4.3.1/group-info-signature", section: "12.4.3.1", text: "the GroupInfo signature verifies with the signer's leaf key", want: mls.ErrInvalidSignature,
			join: welcomeOf(func(t *testing.T, e *advEnv) *mls.WelcomeForge { return &mls.WelcomeForge{Signer: e.carol.sig} })}),
		w(rule{name: "12.4.3.1/group-info-signer-blank", section: "12.4.3.1", text: "the GroupInfo signer is a non-blank leaf", want: mls.ErrInvalidWelcome,
			join: welcomeOf(func(t *testing.T, e *advEnv) *mls.WelcomeForge {
				// bob's leaf blanked in the tree the Welcome carries
				// (dave took the blank leaf 2).
				return &mls.WelcomeForge{Tree: func(n wire.RatchetTree) wire.RatchetTree { n[2] = nil; return n },
					GroupInfo: func(gi *wire.GroupInfo) { gi.Signer = 1 }}
			})}),
		w(rule{name: "12.4.3.1/group-info-signer-out-of-range", section: "12.4.3.1", text: "the GroupInfo signer is < the tree's leaf count (no 2^31+k aliasing)",
			want: mls.ErrInvalidWelcome, join: welcomeOf(func(t *testing.T, e *advEnv) *mls.WelcomeForge {
				return &mls.WelcomeForge{GroupInfo: func(gi *wire.GroupInfo) { gi.Signer = 1 << 31 }}
			})}),
		w(rule{name: "12.4.3.1/cipher-suite", section: "12.4.3.1", text: "the GroupInfo's cipher suite is the KeyPackage's", want: mls.ErrInvalidWelcome,
			join: welcomeOf(func(t *testing.T, e *advEnv) *mls.WelcomeForge {
				return &mls.WelcomeForge{GroupInfo: func(gi *wire.GroupInfo) {
					gi.GroupContext.CipherSuite = wire.CipherSuite(mls.P256_AES128GCM_SHA256_P256)
				}}
			})}),
		w(rule{name: "12.4.3.1/tree-hash", section: "12.4.3.1", text: "the tree's hash is the GroupInfo's tree_hash", want: mls.ErrInvalidTree,
			join: welcomeOf(func(t *testing.T, e *advEnv) *mls.WelcomeForge {
				return &mls.WelcomeForge{GroupInfo: func(gi *wire.GroupInfo) { gi.GroupContext.TreeHash[0] ^= 1 }}
			})}),
		w(rule{name: "12.4.3.1/parent-hash", section: "12.4.3.1, 7.9.2", text: "every non-blank parent node is parent-hash valid", want: mls.ErrInvalidTree,
			join: welcomeOf(func(t *testing.T, e *advEnv) *mls.WelcomeForge {
				return &mls.WelcomeForge{Tree: func(n wire.RatchetTree) wire.RatchetTree {
					p := *n[1].ParentNode
					p.ParentHash = append([]byte{}, p.ParentHash...)
					fresh, err := mls.UpdateLeaf(e.alice.g, nil, 0, nil)
					if err != nil {
						t.Fatal(err)
					}
					p.EncryptionKey = fresh.EncryptionKey
					n[1] = &wire.Node{NodeType: wire.NodeTypeParent, ParentNode: &p}
					return n
				}}
			})}),
		w(rule{name: "12.4.3.1/leaf-valid", section: "12.4.3.1, 7.3", text: "every leaf of the tree is a valid LeafNode (signature)", want: mls.ErrInvalidSignature,
			join: welcomeOf(func(t *testing.T, e *advEnv) *mls.WelcomeForge {
				return &mls.WelcomeForge{Tree: func(n wire.RatchetTree) wire.RatchetTree {
					// dave's own leaf (node 4): it is unmerged at the
					// root, so no parent hash covers it.
					l := *n[4].LeafNode
					l.Signature = append([]byte{}, l.Signature...)
					l.Signature[0] ^= 1
					n[4] = &wire.Node{NodeType: wire.NodeTypeLeaf, LeafNode: &l}
					return n
				}}
			})}),
		w(rule{name: "12.4.3.1/unmerged-leaf-descendant", section: "12.4.3.1", text: "each unmerged_leaves entry is a non-blank leaf below the node", want: mls.ErrInvalidTree,
			join: welcomeOf(func(t *testing.T, e *advEnv) *mls.WelcomeForge {
				return &mls.WelcomeForge{Tree: func(n wire.RatchetTree) wire.RatchetTree {
					for i, x := range n {
						if x != nil && x.NodeType == wire.NodeTypeParent {
							p := *x.ParentNode
							p.UnmergedLeaves = append(append([]uint32{}, p.UnmergedLeaves...), blankLeaf)
							n[i] = &wire.Node{NodeType: wire.NodeTypeParent, ParentNode: &p}
							return n
						}
					}
					t.Fatal("no parent node")
					return n
				}}
			})}),
		w(rule{name: "12.4.3.1/own-leaf", section: "12.4.3.1", text: "the tree holds a leaf identical to the KeyPackage's", want: mls.ErrInvalidWelcome,
			join: welcomeOf(func(t *testing.T, e *advEnv) *mls.WelcomeForge {
				return &mls.WelcomeForge{Tree: func(n wire.RatchetTree) wire.RatchetTree {
					// dave's leaf (node 4, covered by no parent hash)
					// replaced by someone else's valid one.
					other := newClient(t, "other", fastSuite, e.cfg).keyPackage(t)
					n[4] = &wire.Node{NodeType: wire.NodeTypeLeaf, LeafNode: &mls.WireKeyPackage(other).LeafNode}
					return n
				}}
			})}),
		w(rule{name: "12.4.3.1/confirmation-tag", section: "12.4.3.1", text: "the GroupInfo's confirmation_tag verifies", want: mls.ErrInvalidConfirmationTag,
			join: welcomeOf(func(t *testing.T, e *advEnv) *mls.WelcomeForge {
				return &mls.WelcomeForge{GroupInfo: func(gi *wire.GroupInfo) { gi.ConfirmationTag[0] ^= 1 }}
			})}),
		w(rule{name: "12.4.3.1/group-extension-supported", section: "12.4.3.1, 13.4", text: "the joiner supports every GroupContext extension",
			want: mls.ErrInvalidProposal, join: welcomeOf(func(t *testing.T, e *advEnv) *mls.WelcomeForge {
				return &mls.WelcomeForge{GroupInfo: func(gi *wire.GroupInfo) {
					gi.GroupContext.Extensions = append(gi.GroupContext.Extensions, ext(0xff05, 1))
				}}
			})}),
		w(rule{name: "12.4.3.1/no-tree", section: "12.4.3.1, 12.4.3.3", text: "the joiner has the ratchet tree (extension or out of band)", want: mls.ErrInvalidWelcome,
			join: welcomeOf(func(t *testing.T, e *advEnv) *mls.WelcomeForge {
				return &mls.WelcomeForge{GroupInfo: func(gi *wire.GroupInfo) { gi.Extensions = nil }}
			})}),
		w(rule{name: "12.4.3.1/path-secret-matches-tree", section: "12.4.3.1", text: "keys derived from the path_secret match the tree's public keys",
			want: mls.ErrInvalidTree, join: welcomeOf(func(t *testing.T, e *advEnv) *mls.WelcomeForge {
				return &mls.WelcomeForge{Secrets: func(gs *wire.GroupSecrets) { gs.PathSecret = &wire.PathSecret{PathSecret: nonce()} }}
			})}),
		w(rule{name: "12.4.3.1/parent-key-unique", section: "12.4.3.1, 7.3", text: "a parent node's encryption key appears in no other node",
			want: mls.ErrInvalidTree, join: welcomeOf(func(t *testing.T, e *advEnv) *mls.WelcomeForge {
				return &mls.WelcomeForge{Tree: func(n wire.RatchetTree) wire.RatchetTree {
					p := *n[1].ParentNode
					p.EncryptionKey = n[6].LeafNode.EncryptionKey
					n[1] = &wire.Node{NodeType: wire.NodeTypeParent, ParentNode: &p}
					return n
				}}
			})}),
		w(rule{name: "11.2/resumed-epoch-one", section: "11.2, 11.3, 12.4.3.1", text: "a Welcome with a reinit or branch PSK starts the new group at epoch 1",
			want: mls.ErrInvalidWelcome, join: func(t *testing.T, e *advEnv) ([]byte, *mls.JoinOptions) {
				gc := mls.GroupState(e.alice.g)
				id := wire.PreSharedKeyID{PSKType: wire.PSKTypeResumption, Usage: wire.ResumptionPSKUsageBranch,
					PSKGroupID: gc.GroupID, PSKEpoch: gc.Epoch, PSKNonce: nonce()}
				return e.forgeWelcome(t, &mls.WelcomeForge{Epoch: u64(2), PSKs: [][]byte{mls.ResumptionSecret(e.alice.g, gc.Epoch)},
					Secrets: func(gs *wire.GroupSecrets) { gs.PSKs = []wire.PreSharedKeyID{id} }}), &mls.JoinOptions{Previous: e.alice.g}
			}}),
		w(rule{name: "11.3/branch-members-subset", section: "11.3, 12.4.3.1", text: "every member of a branch is a member of the original group",
			want: mls.ErrInvalidWelcome, join: func(t *testing.T, e *advEnv) ([]byte, *mls.JoinOptions) {
				// alice branches with bob and erin, an outsider; bob
				// joins with his old group as the one resumed.
				bob2 := &client{name: "bob2", cfg: e.cfg, sig: e.bob.sig, cred: e.bob.cred}
				bkp := bob2.keyPackage(t)
				erin := newClient(t, "erin", fastSuite, e.cfg)
				_, res, err := mls.ResumeForge(e.alice.g, []byte("branch"), fastSuite, e.alice.g.Extensions(), false,
					[]*mls.KeyPackage{bkp, erin.keyPackage(t)}, nil)
				if err != nil {
					t.Fatal(err)
				}
				e.joinBundle = bob2.bundle
				return res.Welcome, &mls.JoinOptions{Previous: e.bob.g}
			}}),
		w(rule{name: "11.2/reinit-previous-was-reinit", section: "11.2, 12.4.3.1", text: "a reinit Welcome resumes a group whose last commit was a ReInit",
			want: mls.ErrInvalidWelcome, join: func(t *testing.T, e *advEnv) ([]byte, *mls.JoinOptions) {
				_, res, err := mls.ResumeForge(e.alice.g, []byte("new"), fastSuite, nil, true, []*mls.KeyPackage{e.daveKP}, nil)
				if err != nil {
					t.Fatal(err)
				}
				return res.Welcome, &mls.JoinOptions{Previous: e.alice.g}
			}}),
		w(rule{name: "11.3/branch-cipher-suite", section: "11.3, 12.4.3.1", text: "a branch keeps the version and cipher suite of the old group",
			want: mls.ErrInvalidWelcome, join: func(t *testing.T, e *advEnv) ([]byte, *mls.JoinOptions) {
				// dave's P-256 KeyPackage and signer: the new group is in
				// another suite, with the old group's resumption PSK.
				p := newClient(t, "dave p256", mls.P256_AES128GCM_SHA256_P256, e.cfg)
				kp := p.keyPackage(t)
				e.joinBundle = p.bundle
				signer, err := mls.GenerateSignatureKeyPair(mls.P256_AES128GCM_SHA256_P256, nil)
				if err != nil {
					t.Fatal(err)
				}
				_, res, err := mls.ResumeForge(e.alice.g, []byte("branch"), mls.P256_AES128GCM_SHA256_P256, nil, false, []*mls.KeyPackage{kp}, signer)
				if err != nil {
					t.Fatal(err)
				}
				return res.Welcome, &mls.JoinOptions{Previous: e.alice.g}
			}}),
	}
}

// GroupInfos given to NewPublicGroup and ExternalJoin (12.4.3.1 tree checks
// apply to both; 12.4.3.2 needs external_pub).
func groupInfoRules() []rule {
	gi := func(r rule) rule { r.kind = groupInfo; return r }
	forged := func(key func(e *advEnv) *mls.SignatureKeyPair, edit func(t *testing.T, e *advEnv, gi *wire.GroupInfo)) func(t *testing.T, e *advEnv) []byte {
		return func(t *testing.T, e *advEnv) []byte {
			var k *mls.SignatureKeyPair
			if key != nil {
				k = key(e)
			}
			b, err := mls.ForgeGroupInfo(e.alice.g, k, func(g *wire.GroupInfo) {
				if edit != nil {
					edit(t, e, g)
				}
			})
			return must(t, b, err)
		}
	}
	return []rule{
		gi(rule{name: "12.4.3/group-info-version", section: "6, 12.4.3", text: "a GroupInfo's GroupContext version is mls10", want: mls.ErrUnsupported,
			make: forged(nil, func(t *testing.T, e *advEnv, g *wire.GroupInfo) { g.GroupContext.Version = 2 })}),
		gi(rule{name: "12.4.3/group-info-signature", section: "12.4.3.1, 12.4.3.2", text: "a GroupInfo's signature verifies with its signer's leaf key",
			want: mls.ErrInvalidSignature, make: forged(func(e *advEnv) *mls.SignatureKeyPair { return e.carol.sig }, nil)}),
		gi(rule{name: "12.4.3/group-info-tree-hash", section: "12.4.3.1", text: "a GroupInfo's tree matches its tree_hash", want: mls.ErrInvalidTree,
			make: forged(nil, func(t *testing.T, e *advEnv, g *wire.GroupInfo) { g.GroupContext.TreeHash[1] ^= 1 })}),
		gi(rule{name: "12.4.3/group-info-signer-blank", section: "12.4.3.1", text: "a GroupInfo's signer is a non-blank leaf", want: mls.ErrInvalidWelcome,
			make: forged(nil, func(t *testing.T, e *advEnv, g *wire.GroupInfo) { g.Signer = blankLeaf })}),
	}
}

// Section 13.4: extension lists.
func extensionRules() []rule {
	return []rule{
		{name: "13.4/duplicate-gce-extension", section: "13.4", text: "a GroupContextExtensions list has no extension type twice", want: mls.ErrMalformed,
			make: dupExt(commitOf(func(t *testing.T, e *advEnv) *mls.Forge {
				exts := append(append([]wire.Extension{}, mls.GroupState(e.bob.g).Extensions...), dupA, dupB)
				return commitWith(pGCE(exts...))
			}))},
		{name: "13.4/duplicate-leaf-extension", section: "13.4", text: "a LeafNode's extension list has no extension type twice", want: mls.ErrMalformed,
			make: dupExt(updateWith(func(l *wire.LeafNode) {
				l.Extensions = append(l.Extensions, dupA, dupB)
				l.Capabilities.Extensions = append(l.Capabilities.Extensions, dupA.ExtensionType, dupB.ExtensionType)
			}))},
		{name: "13.4/duplicate-keypackage-extension", section: "13.4", text: "a KeyPackage's extension list has no extension type twice", want: mls.ErrMalformed,
			make: dupExt(addWith(func(kp *wire.KeyPackage) { kp.Extensions = append(kp.Extensions, dupA, dupB) }))},
		{name: "13.4/duplicate-group-info-extension", section: "13.4", text: "a GroupInfo's extension list has no extension type twice", want: mls.ErrMalformed,
			kind: groupInfo, make: dupExt(func(t *testing.T, e *advEnv) []byte {
				b, err := mls.ForgeGroupInfo(e.alice.g, nil, func(gi *wire.GroupInfo) { gi.Extensions = append(gi.Extensions, dupA, dupB) })
				return must(t, b, err)
			})},
		{name: "13.4/new-member-supports-group-extensions", section: "13.4, 12.1.1", text: "an added member's capabilities list every GroupContext extension",
			want: mls.ErrInvalidProposal, env: func(t testing.TB) *advEnv {
				return newAdvEnv(t, "group ext", mls.Extension{Type: uint16(mls.ExtensionTypeAppDataDictionary), Data: []byte{0}})
			}, make: commitOf(func(t *testing.T, e *advEnv) *mls.Forge {
				return commitWith(pAdd(e.wireKP(t, func(k *wire.KeyPackage) { k.LeafNode.Capabilities.Extensions = nil; k.LeafNode.Extensions = nil })))
			})},
	}
}

// Two extensions the structs keep distinct and the byte patch makes equal
// (type 0xfa5b becomes 0xfa5a wherever it precedes its one-byte body).
var (
	dupA = ext(0xfa5a, 'a')
	dupB = ext(0xfa5b, 'b')
)

func dupExt(make func(t *testing.T, e *advEnv) []byte) func(t *testing.T, e *advEnv) []byte {
	return func(t *testing.T, e *advEnv) []byte {
		var out []byte
		mls.WithBytePatch(func(b []byte) []byte {
			return bytes.ReplaceAll(b, []byte{0xfa, 0x5b, 1, 'b'}, []byte{0xfa, 0x5a, 1, 'b'})
		}, func() { out = make(t, e) })
		return out
	}
}
