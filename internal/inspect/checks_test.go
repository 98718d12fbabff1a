package inspect

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/wire"
)

func mustInspect(t *testing.T, data []byte, typ string, ctx Context) *Report {
	t.Helper()
	rep, err := Inspect(data, typ, ctx)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func wantStatus(t *testing.T, rep *Report, path, name string, want Status, detail string) {
	t.Helper()
	c := findCheck(rep, path, name)
	if c == nil {
		t.Fatalf("no check %s: %s in\n%s", path, name, rep.Text(false))
	}
	if c.Status != want || !strings.Contains(c.Detail, detail) {
		t.Fatalf("check %s: %s is %s (%s), want %s containing %q", path, name, c.Status, c.Detail, want, detail)
	}
}

func computedValue(rep *Report, path, name string) []byte {
	for _, c := range rep.Computed {
		if c.Path == path && c.Name == name {
			return c.Value
		}
	}
	return nil
}

// encodeMessage wraps a body in an MLSMessage.
func encodeMessage(t *testing.T, m *wire.MLSMessage) []byte {
	t.Helper()
	m.Version = wire.ProtocolVersionMLS10
	b, err := wire.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func signer(t *testing.T, g *goldenGroup, name string) suite.Signer {
	t.Helper()
	s, _ := suite.Lookup(suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	sg, err := s.NewSigner(g.sigs[name].PrivateKey())
	if err != nil {
		t.Fatal(err)
	}
	return sg
}

func TestKeyPackageChecksFail(t *testing.T) {
	g := newGoldenGroup(t)
	m, err := wire.UnmarshalMLSMessage(g.keyPackage)
	if err != nil {
		t.Fatal(err)
	}
	kp := m.KeyPackage

	t.Run("tampered signature", func(t *testing.T) {
		bad := bytes.Clone(g.keyPackage)
		bad[len(bad)-1] ^= 1 // the last byte is the KeyPackage signature's
		rep := mustInspect(t, bad, "", Context{Now: goldenNow})
		wantStatus(t, rep, "key_package", "signature", StatusFailed, "does not verify")
		wantStatus(t, rep, "key_package.leaf_node", "signature", StatusOK, "")
		if !rep.Failed() {
			t.Fatal("Failed() is false")
		}
	})
	t.Run("expired", func(t *testing.T) {
		rep := mustInspect(t, g.keyPackage, "", Context{Now: goldenNow.Add(10 * 365 * 24 * time.Hour)})
		wantStatus(t, rep, "key_package.leaf_node", "lifetime", StatusFailed, "expired at 2035")
	})
	t.Run("not yet valid", func(t *testing.T) {
		rep := mustInspect(t, g.keyPackage, "", Context{Now: goldenNow.Add(-24 * time.Hour)})
		wantStatus(t, rep, "key_package.leaf_node", "lifetime", StatusFailed, "not yet valid")
	})
	t.Run("no clock", func(t *testing.T) {
		rep := mustInspect(t, g.keyPackage, "", Context{})
		wantStatus(t, rep, "key_package.leaf_node", "lifetime", StatusNotVerified, "no current time")
	})
	t.Run("init_key equals encryption_key, validly signed", func(t *testing.T) {
		k := *kp
		k.InitKey = k.LeafNode.EncryptionKey
		if k.Signature, err = signer(t, g, "bob").SignWithLabel(labelKeyPackageTBS, k.TBS()); err != nil {
			t.Fatal(err)
		}
		rep := mustInspect(t, encodeMessage(t, &wire.MLSMessage{WireFormat: wire.WireFormatKeyPackage, KeyPackage: &k}), "", Context{Now: goldenNow})
		wantStatus(t, rep, "key_package", "signature", StatusOK, "")
		wantStatus(t, rep, "key_package", "init_key differs from leaf_node.encryption_key", StatusFailed, "equal")
	})
	t.Run("extension data that does not decode", func(t *testing.T) {
		k := *kp
		k.Extensions = []wire.Extension{{ExtensionType: wire.ExtensionTypeExternalSenders, ExtensionData: []byte{0x05, 0x01}}}
		if k.Signature, err = signer(t, g, "bob").SignWithLabel(labelKeyPackageTBS, k.TBS()); err != nil {
			t.Fatal(err)
		}
		rep := mustInspect(t, encodeMessage(t, &wire.MLSMessage{WireFormat: wire.WireFormatKeyPackage, KeyPackage: &k}), "", Context{Now: goldenNow})
		wantStatus(t, rep, "key_package.extensions[0]", "extension_data decodes", StatusFailed, "malformed ExternalSenders at byte 1: truncated")
		if c := findCheck(rep, "key_package.extensions[0]", "extension_data decodes"); c.Section != "12.1.8.1" {
			t.Fatalf("section %s", c.Section)
		}
		if !strings.Contains(rep.Text(false), "extension_data: 2 bytes 0501 (does not decode: malformed ExternalSenders at byte 1: truncated)") {
			t.Fatalf("the undecodable data is not marked:\n%s", rep.Text(false))
		}
	})
	t.Run("leaf source", func(t *testing.T) {
		k := *kp
		k.LeafNode.LeafNodeSource = wire.LeafNodeSourceUpdate
		rep := mustInspect(t, encodeMessage(t, &wire.MLSMessage{WireFormat: wire.WireFormatKeyPackage, KeyPackage: &k}), "", Context{Now: goldenNow})
		wantStatus(t, rep, "key_package.leaf_node", "leaf_node_source", StatusFailed, "is update, must be key_package")
	})
	t.Run("key_package_ref is the Welcome's new_member", func(t *testing.T) {
		rep := mustInspect(t, g.keyPackage, "", Context{Now: goldenNow})
		ref := computedValue(rep, "key_package", "key_package_ref")
		if !bytes.Equal(ref, g.bob.KeyPackage.Ref()) {
			t.Fatalf("key_package_ref %x, want %x", ref, g.bob.KeyPackage.Ref())
		}
		w := mustInspect(t, g.welcome, "", Context{})
		if !strings.Contains(w.Text(false), "new_member: 32 bytes "+hex.EncodeToString(ref)) {
			t.Fatalf("the Welcome does not show new_member %x:\n%s", ref, w.Text(false))
		}
		wantStatus(t, w, "welcome", "encrypted_group_secrets", StatusNotVerified, "init_key private key")
	})
}

func TestGroupInfoChecks(t *testing.T) {
	g := newGoldenGroup(t)
	rep := mustInspect(t, g.groupInfo0, "", Context{Now: goldenNow})
	for _, name := range []string{"tree hash matches group_context.tree_hash", "parent hashes", "leaf signatures",
		"tree validation, every credential accepted"} {
		wantStatus(t, rep, "group_info.ratchet_tree", name, StatusOK, "")
	}
	wantStatus(t, rep, "group_info", "signature", StatusOK, "signed by leaf 0")
	wantStatus(t, rep, "group_info", "confirmation_tag", StatusNotVerified, "confirmation_key")

	m, err := wire.UnmarshalMLSMessage(g.groupInfo0)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("wrong tree hash, validly signed", func(t *testing.T) {
		gi := *m.GroupInfo
		gi.GroupContext.TreeHash = bytes.Repeat([]byte{7}, 32)
		if gi.Signature, err = signer(t, g, "alice").SignWithLabel(labelGroupInfoTBS, gi.TBS()); err != nil {
			t.Fatal(err)
		}
		rep := mustInspect(t, encodeMessage(t, &wire.MLSMessage{WireFormat: wire.WireFormatGroupInfo, GroupInfo: &gi}), "", Context{Now: goldenNow})
		wantStatus(t, rep, "group_info.ratchet_tree", "tree hash matches group_context.tree_hash", StatusFailed, "")
		wantStatus(t, rep, "group_info", "signature", StatusOK, "")
	})
	t.Run("signed by another key", func(t *testing.T) {
		gi := *m.GroupInfo
		if gi.Signature, err = signer(t, g, "bob").SignWithLabel(labelGroupInfoTBS, gi.TBS()); err != nil {
			t.Fatal(err)
		}
		rep := mustInspect(t, encodeMessage(t, &wire.MLSMessage{WireFormat: wire.WireFormatGroupInfo, GroupInfo: &gi}), "", Context{Now: goldenNow})
		wantStatus(t, rep, "group_info", "signature", StatusFailed, "does not verify")
	})
	t.Run("without the tree", func(t *testing.T) {
		gi := *m.GroupInfo
		var tree []byte
		gi.Extensions = nil
		for _, x := range m.GroupInfo.Extensions {
			if x.ExtensionType == wire.ExtensionTypeRatchetTree {
				tree = x.ExtensionData
			} else {
				gi.Extensions = append(gi.Extensions, x)
			}
		}
		if gi.Signature, err = signer(t, g, "alice").SignWithLabel(labelGroupInfoTBS, gi.TBS()); err != nil {
			t.Fatal(err)
		}
		bare := encodeMessage(t, &wire.MLSMessage{WireFormat: wire.WireFormatGroupInfo, GroupInfo: &gi})
		rep := mustInspect(t, bare, "", Context{Now: goldenNow})
		wantStatus(t, rep, "group_info", "signature and tree", StatusNotVerified, "no ratchet tree")
		rep = mustInspect(t, bare, "", Context{Now: goldenNow, Tree: tree})
		wantStatus(t, rep, "group_info", "signature", StatusOK, "")
		wantStatus(t, rep, "tree (-tree)", "parent hashes", StatusOK, "")
		// The bare tree, with the suite and group from the group info.
		rep = mustInspect(t, tree, "ratchet_tree", Context{Now: goldenNow, GroupInfo: bare, Tree: tree})
		wantStatus(t, rep, "ratchet_tree", "tree hash matches group_context.tree_hash", StatusOK, "")
		rep = mustInspect(t, tree, "ratchet_tree", Context{})
		wantStatus(t, rep, "ratchet_tree", "tree hash, parent hashes and leaf signatures", StatusNotVerified, "cipher suite is unknown")
	})
}

func TestPublicMessageChecks(t *testing.T) {
	g := newGoldenGroup(t)
	t.Run("no context", func(t *testing.T) {
		rep := mustInspect(t, g.commit, "", Context{})
		wantStatus(t, rep, "public_message", "signature", StatusNotVerified, "cipher suite is unknown")
		wantStatus(t, rep, "public_message", "membership_tag", StatusNotVerified, "membership_key")
		wantStatus(t, rep, "public_message", "confirmation_tag", StatusNotVerified, "confirmation_key")
		wantStatus(t, rep, "public_message.content.commit.path.leaf_node", "signature", StatusNotVerified, "cipher suite is unknown")
	})
	t.Run("suite only", func(t *testing.T) {
		rep := mustInspect(t, g.commit, "", Context{Suite: 1})
		wantStatus(t, rep, "public_message", "signature", StatusNotVerified, "GroupContext")
		// The path's leaf signs the group id and the sender's leaf, which
		// the message itself gives.
		wantStatus(t, rep, "public_message.content.commit.path.leaf_node", "signature", StatusOK, "")
	})
	t.Run("group info of another epoch", func(t *testing.T) {
		rep := mustInspect(t, g.commit, "", Context{GroupInfo: g.groupInfo1})
		wantStatus(t, rep, "public_message", "signature", StatusNotVerified, "the group info is for epoch 1")
	})
	t.Run("tampered signature", func(t *testing.T) {
		m, err := wire.UnmarshalMLSMessage(g.commit)
		if err != nil {
			t.Fatal(err)
		}
		pm := *m.PublicMessage
		pm.Auth.Signature = bytes.Clone(pm.Auth.Signature)
		pm.Auth.Signature[3] ^= 0x10
		bad := encodeMessage(t, &wire.MLSMessage{WireFormat: wire.WireFormatPublicMessage, PublicMessage: &pm})
		rep := mustInspect(t, bad, "", Context{Now: goldenNow, GroupInfo: g.groupInfo0})
		wantStatus(t, rep, "public_message", "signature", StatusFailed, "by member at leaf 0: signature does not verify")
		wantStatus(t, rep, "public_message", "valid for the group, as a public observer sees it", StatusFailed, "signature")
	})
	t.Run("proposal ref is the commit's reference", func(t *testing.T) {
		rep := mustInspect(t, g.proposal, "", Context{Now: goldenNow, GroupInfo: g.groupInfo0})
		wantStatus(t, rep, "public_message", "signature", StatusOK, "")
		wantStatus(t, rep, "public_message", "valid for the group, as a public observer sees it", StatusOK, "")
		ref := computedValue(rep, "public_message", "proposal_ref")
		m, err := wire.UnmarshalMLSMessage(g.byRef)
		if err != nil {
			t.Fatal(err)
		}
		ps := m.PublicMessage.Content.Commit.Proposals
		if len(ps) != 1 || ps[0].Type != wire.ProposalOrRefTypeReference || !bytes.Equal(ps[0].Reference, ref) {
			t.Fatalf("proposal_ref %x; the commit holds %+v", ref, ps)
		}
		c := mustInspect(t, g.byRef, "", Context{Now: goldenNow, GroupInfo: g.groupInfo0})
		wantStatus(t, c, "public_message", "valid for the group, as a public observer sees it", StatusNotVerified, "by reference")
	})
}

func TestBareTypes(t *testing.T) {
	g := newGoldenGroup(t)
	m, err := wire.UnmarshalMLSMessage(g.keyPackage)
	if err != nil {
		t.Fatal(err)
	}
	leaf := m.KeyPackage.LeafNode.Raw()
	rep := mustInspect(t, leaf, "LeafNode", Context{Suite: 1, Now: goldenNow})
	wantStatus(t, rep, "leaf_node", "signature", StatusOK, "")
	rep = mustInspect(t, leaf, "leaf_node", Context{})
	wantStatus(t, rep, "leaf_node", "signature", StatusNotVerified, "cipher suite is unknown")
	rep = mustInspect(t, m.KeyPackage.Raw(), "KeyPackage", Context{Now: goldenNow})
	wantStatus(t, rep, "key_package", "signature", StatusOK, "")

	// A bare struct is not guessed: as an MLSMessage it is malformed.
	_, err = Inspect(m.KeyPackage.Raw(), "", Context{})
	var de *wire.DecodeError
	if !errors.As(err, &de) || de.Type != "MLSMessage" {
		t.Fatalf("a bare KeyPackage as MLSMessage: %v", err)
	}
	if _, err := Inspect(leaf, "NoSuchType", Context{}); !errors.Is(err, ErrUnknownType) {
		t.Fatalf("unknown type: %v", err)
	}
	for _, name := range []string{"KeyPackage", "key_package", "KEY-PACKAGE", "add_proposal", "ratchet_tree", "tree"} {
		if _, ok := findType(name); !ok {
			t.Errorf("type %q not found", name)
		}
	}
}

func TestContextErrors(t *testing.T) {
	g := newGoldenGroup(t)
	var ie *InputError
	if _, err := Inspect(g.commit, "", Context{GroupInfo: g.keyPackage}); !errors.As(err, &ie) || ie.Input != "group info" {
		t.Fatalf("a KeyPackage as group info: %v", err)
	}
	if _, err := Inspect(g.commit, "", Context{GroupInfo: g.groupInfo0[:20]}); !errors.As(err, &ie) || !strings.Contains(err.Error(), "malformed MLSMessage at byte") {
		t.Fatalf("a truncated group info: %v", err)
	}
	if _, err := Inspect(g.commit, "", Context{Suite: 0x0a0a}); !errors.As(err, &ie) || ie.Input != "suite" {
		t.Fatalf("a GREASE suite: %v", err)
	}
	if _, err := Inspect(g.commit, "", Context{Suite: 2, GroupInfo: g.groupInfo0}); !errors.As(err, &ie) || ie.Input != "suite" {
		t.Fatalf("a suite other than the group info's: %v", err)
	}
}

func TestParseInput(t *testing.T) {
	bin := []byte{0x00, 0x01, 0x00, 0x05, 0xab}
	for _, tc := range []struct {
		in   string
		enc  Encoding
		want []byte
		used string
		err  string
	}{
		{"0001 0005\nab\n", Auto, bin, "hex", ""},
		{"  0x000100\t05AB  ", Auto, bin, "hex", ""},
		{string(bin), Auto, bin, "binary", ""},
		{"000100", Binary, []byte("000100"), "binary", ""},
		{"00010", Auto, nil, "", "odd number of digits"},
		{"0001 zz", Hex, nil, "", "byte 5"},
		{"", Auto, nil, "", "empty"},
		{" \n", Auto, nil, "", "whitespace"},
		{"", Hex, nil, "", "empty"},
	} {
		got, used, err := ParseInput([]byte(tc.in), tc.enc)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseInput(%q): error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, tc.want) || used != tc.used {
			t.Errorf("ParseInput(%q) = %x, %q, %v; want %x, %q", tc.in, got, used, err, tc.want, tc.used)
		}
	}
}

func TestGREASENames(t *testing.T) {
	for _, v := range []uint16{0x0a0a, 0x1a1a, 0xeaea} {
		if !isGREASE(v) {
			t.Errorf("0x%04x is GREASE", v)
		}
	}
	for _, v := range []uint16{0xfafa, 0x0a0b, 0x1a2a, 0x0001} {
		if isGREASE(v) {
			t.Errorf("0x%04x is not GREASE", v)
		}
	}
}

// TestErrTextSaysEachPartOnce: a wrapped error that repeats its class is
// worded with each part once.
func TestErrTextSaysEachPartOnce(t *testing.T) {
	for in, want := range map[string]string{
		"mls: decryption failed: decryption failed (failed check: content decrypts, RFC 9420, Section 6.3.1): mls: decryption failed": "decryption failed (failed check: content decrypts, RFC 9420, Section 6.3.1)",
		"mls: invalid signature: leaf signature (RFC 9420, Section 7.3)":                                                              "invalid signature: leaf signature (RFC 9420, Section 7.3)",
		"a: b: a":                               "a: b",
		"wrong epoch: epoch 3 (want 4): (a: b)": "wrong epoch: epoch 3 (want 4): (a: b)",
	} {
		if got := errText(errors.New(in)); got != want {
			t.Errorf("errText(%q) = %q, want %q", in, got, want)
		}
	}
}
