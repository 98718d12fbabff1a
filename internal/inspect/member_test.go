package inspect

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mlskit/mlskit/internal/wire"
	"github.com/mlskit/mlskit/mls"
	"github.com/mlskit/mlskit/storage"
	"github.com/mlskit/mlskit/storage/memory"
)

// storeMember is a Member over a storage.Store, as mls inspect -state has.
type storeMember struct {
	st  storage.Store
	cfg *mls.Config
}

func (m storeMember) Group(id []byte) (*mls.Group, error) {
	g, err := mls.LoadGroup(context.Background(), m.cfg, m.st, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	return g, err
}

func (m storeMember) KeyPackage(ref []byte) (*mls.KeyPackageBundle, error) {
	b, err := mls.LoadKeyPackage(context.Background(), m.st, ref)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	return b, err
}

func TestMemberState(t *testing.T) {
	ctx := context.Background()
	now := goldenNow
	cfg := &mls.Config{Now: func() time.Time { return now }}
	cs := mls.X25519_AES128GCM_SHA256_Ed25519
	sigA, _ := mls.GenerateSignatureKeyPair(cs, nil)
	sigB, _ := mls.GenerateSignatureKeyPair(cs, nil)
	alice, err := mls.NewGroup(cfg, []byte("member test"), mls.BasicCredential([]byte("alice")), sigA, nil)
	if err != nil {
		t.Fatal(err)
	}
	bobStore := memory.New()
	bobKP, err := mls.NewKeyPackage(cfg, mls.BasicCredential([]byte("bob")), sigB, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := mls.SaveKeyPackage(ctx, bobStore, bobKP); err != nil {
		t.Fatal(err)
	}
	bob := storeMember{bobStore, cfg}
	res, err := alice.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(bobKP.KeyPackage)}, GroupInfo: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}

	t.Run("welcome", func(t *testing.T) {
		rep := mustInspect(t, res.Welcome, "", Context{Now: now, Member: bob})
		wantStatus(t, rep, "welcome.secrets[0]", "encrypted_group_secrets decrypt with the stored KeyPackage's init_key", StatusOK, "")
		wantStatus(t, rep, "welcome", "encrypted_group_info decrypts with the welcome_secret", StatusOK, "")
		wantStatus(t, rep, "welcome.group_info", "signature", StatusOK, "signed by leaf 0")
		wantStatus(t, rep, "welcome.group_info.ratchet_tree", "tree hash matches group_context.tree_hash", StatusOK, "")
		text := rep.Text(false)
		if !strings.Contains(text, "joiner_secret: 32 bytes (secret, not shown)") {
			t.Fatalf("the joiner_secret is not redacted:\n%s", text)
		}
		js, _ := rep.JSON()
		if !bytes.Contains(js, []byte(`"joiner_secret":{"length":32,"redacted":true}`)) {
			t.Fatalf("the JSON joiner_secret is not redacted")
		}
		// Without the state, and with a state holding no matching KeyPackage.
		rep = mustInspect(t, res.Welcome, "", Context{Now: now})
		wantStatus(t, rep, "welcome", "encrypted_group_secrets", StatusNotVerified, "give -state")
		rep = mustInspect(t, res.Welcome, "", Context{Now: now, Member: storeMember{memory.New(), cfg}})
		wantStatus(t, rep, "welcome", "encrypted_group_secrets", StatusNotVerified, "no entry is for a KeyPackage in the state")
	})

	if _, err := mls.JoinFromStore(ctx, cfg, bobStore, res.Welcome, nil); err != nil {
		t.Fatal(err)
	}
	msg, err := alice.Encrypt([]byte("hello bob"), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("private message", func(t *testing.T) {
		// Twice: the inspection never saves, so the stored key is not used up.
		for range 2 {
			rep := mustInspect(t, msg, "", Context{Now: now, Member: bob})
			wantStatus(t, rep, "private_message", "decryption and verification as this client's member of the group", StatusOK, "by the member at leaf 1")
			if text := rep.Text(false); !strings.Contains(text, `application_data: 9 bytes 68656c6c6f20626f62 "hello bob"`) {
				t.Fatalf("no plaintext in\n%s", text)
			}
		}
		m, _ := wire.UnmarshalMLSMessage(msg)
		pm := *m.PrivateMessage
		pm.Ciphertext = bytes.Clone(pm.Ciphertext)
		pm.Ciphertext[len(pm.Ciphertext)-1] ^= 1
		bad := encodeMessage(t, &wire.MLSMessage{WireFormat: wire.WireFormatPrivateMessage, PrivateMessage: &pm})
		rep := mustInspect(t, bad, "", Context{Now: now, Member: bob})
		wantStatus(t, rep, "private_message", "decryption and verification as this client's member of the group", StatusFailed, "decrypt")
		// Reported once, clearly: not "decryption failed: decryption failed (...): decryption failed".
		if d := findCheck(rep, "private_message", "decryption and verification as this client's member of the group").Detail; strings.Count(d, "decryption failed") != 1 {
			t.Fatalf("the failure repeats itself: %q", d)
		}
		// The bare PrivateMessage decrypts too.
		bare, err := wire.Encode(m.PrivateMessage)
		if err != nil {
			t.Fatal(err)
		}
		rep = mustInspect(t, bare, "PrivateMessage", Context{Now: now, Member: bob})
		wantStatus(t, rep, "private_message", "decryption and verification as this client's member of the group", StatusOK, "")
		rep = mustInspect(t, msg, "", Context{Now: now, Member: storeMember{memory.New(), cfg}})
		wantStatus(t, rep, "private_message", "decryption and verification as this client's member of the group", StatusNotVerified, "the state holds no group")
	})

	t.Run("group info confirmation tag", func(t *testing.T) {
		// res.GroupInfo is alice's for epoch 1, where bob's state is.
		rep := mustInspect(t, res.GroupInfo, "", Context{Now: now, Member: bob})
		wantStatus(t, rep, "group_info", "confirmation_tag", StatusOK, "by the member at leaf 1")
		rep = mustInspect(t, res.GroupInfo, "", Context{Now: now})
		wantStatus(t, rep, "group_info", "confirmation_tag", StatusNotVerified, "give -state")
		m, _ := wire.UnmarshalMLSMessage(res.GroupInfo)
		gi := *m.GroupInfo
		gi.ConfirmationTag = bytes.Clone(gi.ConfirmationTag)
		gi.ConfirmationTag[0] ^= 1
		bad := encodeMessage(t, &wire.MLSMessage{WireFormat: wire.WireFormatGroupInfo, GroupInfo: &gi})
		rep = mustInspect(t, bad, "", Context{Now: now, Member: bob})
		wantStatus(t, rep, "group_info", "confirmation_tag", StatusFailed, "is not MAC(confirmation_key")
		// A group info of another epoch: the member has not that epoch's key.
		old, err := alice.GroupInfo(true, false)
		if err != nil {
			t.Fatal(err)
		}
		m, _ = wire.UnmarshalMLSMessage(old)
		gi = *m.GroupInfo
		gi.GroupContext.Epoch = 7
		other := encodeMessage(t, &wire.MLSMessage{WireFormat: wire.WireFormatGroupInfo, GroupInfo: &gi})
		rep = mustInspect(t, other, "", Context{Now: now, Member: bob})
		wantStatus(t, rep, "group_info", "confirmation_tag", StatusNotVerified, "the state holds epoch 1 of the group, the group info is for epoch 7")
	})

	t.Run("external commit leaf", func(t *testing.T) {
		gi, err := alice.GroupInfo(true, true)
		if err != nil {
			t.Fatal(err)
		}
		sigD, _ := mls.GenerateSignatureKeyPair(cs, nil)
		join, err := mls.ExternalJoin(cfg, gi, mls.BasicCredential([]byte("dave")), sigD, nil)
		if err != nil {
			t.Fatal(err)
		}
		const leaf = "public_message.content.commit.path.leaf_node"
		// With the group info of the commit's epoch the joiner's leaf (2,
		// after alice and bob) is known, so the leaf's signature is checked.
		rep := mustInspect(t, join.Commit, "", Context{Now: now, GroupInfo: gi})
		wantStatus(t, rep, leaf, "signature", StatusOK, "")
		wantStatus(t, rep, "public_message", "signature", StatusOK, "the key in the commit's path")
		rep = mustInspect(t, join.Commit, "", Context{Now: now, Suite: wire.CipherSuite(cs)})
		wantStatus(t, rep, leaf, "signature", StatusNotVerified, "not known here")
		// -state alone: the member's group at that epoch tells the leaf.
		rep = mustInspect(t, join.Commit, "", Context{Now: now, Member: bob})
		wantStatus(t, rep, leaf, "signature", StatusOK, "")
		wantStatus(t, rep, "public_message", "membership_tag and validity as this client's member of the group", StatusOK, "")
		// A leaf signed for another position fails.
		m, _ := wire.UnmarshalMLSMessage(join.Commit)
		pm := *m.PublicMessage
		c := *pm.Content.Commit
		path := *c.Path
		path.LeafNode.Signature = bytes.Clone(path.LeafNode.Signature)
		path.LeafNode.Signature[0] ^= 1
		c.Path = &path
		pm.Content.Commit = &c
		bad := encodeMessage(t, &wire.MLSMessage{WireFormat: wire.WireFormatPublicMessage, PublicMessage: &pm})
		rep = mustInspect(t, bad, "", Context{Now: now, GroupInfo: gi})
		wantStatus(t, rep, leaf, "signature", StatusFailed, "signature does not verify")
	})

	t.Run("public message", func(t *testing.T) {
		pub := true
		res, err := alice.Commit(&mls.CommitOptions{PublicMessage: &pub})
		if err != nil {
			t.Fatal(err)
		}
		rep := mustInspect(t, res.Commit, "", Context{Now: now, Member: bob})
		wantStatus(t, rep, "public_message", "membership_tag and validity as this client's member of the group", StatusOK, "by the member at leaf 1")
		// The member's state gives the group context -group-info would.
		wantStatus(t, rep, "public_message", "signature", StatusOK, "by member at leaf 0")
		wantStatus(t, rep, "public_message.content.commit.path.leaf_node", "signature", StatusOK, "")
		if c := findCheck(rep, "public_message", "membership_tag"); c != nil {
			t.Fatalf("membership_tag reported as %s though the member checked it", c.Status)
		}
		m, _ := wire.UnmarshalMLSMessage(res.Commit)
		pm := *m.PublicMessage
		pm.MembershipTag = bytes.Clone(pm.MembershipTag)
		pm.MembershipTag[0] ^= 1
		bad := encodeMessage(t, &wire.MLSMessage{WireFormat: wire.WireFormatPublicMessage, PublicMessage: &pm})
		rep = mustInspect(t, bad, "", Context{Now: now, Member: bob})
		wantStatus(t, rep, "public_message", "membership_tag and validity as this client's member of the group", StatusFailed, "membership tag")
	})
}
