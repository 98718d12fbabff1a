package conformance

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"

	"github.com/mlskit/mlskit/internal/ratchettree"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/wire"
)

func init() { register("treekem.json", checkTreeKEM) }

// checkTreeKEM processes each UpdatePath as every other member, then creates
// a fresh UpdatePath from the same sender and processes that as every other
// member too (RFC 9420, Sections 7.4-7.6, 7.9 and 12.4.2).
func checkTreeKEM(data []byte) ([]Case, error) {
	type pathSecret struct {
		Node       uint32 `json:"node"`
		PathSecret Hex    `json:"path_secret"`
	}
	var tcs []struct {
		CipherSuite             uint16 `json:"cipher_suite"`
		GroupID                 Hex    `json:"group_id"`
		Epoch                   Num    `json:"epoch"`
		ConfirmedTranscriptHash Hex    `json:"confirmed_transcript_hash"`
		RatchetTree             Hex    `json:"ratchet_tree"`
		LeavesPrivate           []struct {
			Index          uint32       `json:"index"`
			EncryptionPriv Hex          `json:"encryption_priv"`
			SignaturePriv  Hex          `json:"signature_priv"`
			PathSecrets    []pathSecret `json:"path_secrets"`
		} `json:"leaves_private"`
		UpdatePaths []struct {
			Sender        uint32 `json:"sender"`
			UpdatePath    Hex    `json:"update_path"`
			PathSecrets   []Hex  `json:"path_secrets"`
			CommitSecret  Hex    `json:"commit_secret"`
			TreeHashAfter Hex    `json:"tree_hash_after"`
		} `json:"update_paths"`
	}
	if err := json.Unmarshal(data, &tcs); err != nil {
		return nil, err
	}
	var out []Case
	for i, tc := range tcs {
		out = append(out, Case{Name: caseName(i, tc.CipherSuite), Err: func() error {
			s, err := suite.Lookup(suite.ID(tc.CipherSuite))
			if err != nil {
				return err
			}
			t, err := ratchettree.Decode(s, tc.RatchetTree)
			if err != nil {
				return fmt.Errorf("ratchet_tree: %w", err)
			}
			privs := map[ratchettree.LeafIndex]*ratchettree.PrivateState{}
			sigPrivs := map[ratchettree.LeafIndex][]byte{}
			for _, lp := range tc.LeavesPrivate {
				l := ratchettree.LeafIndex(lp.Index)
				ps, err := ratchettree.NewPrivateState(t, l, lp.EncryptionPriv)
				if err != nil {
					return fmt.Errorf("leaf %d: %w", l, err)
				}
				for _, p := range lp.PathSecrets {
					if err := ps.SetPathSecret(t, ratchettree.NodeIndex(p.Node), p.PathSecret); err != nil {
						return fmt.Errorf("leaf %d: %w", l, err)
					}
				}
				if err := ps.Consistent(t); err != nil {
					return err
				}
				privs[l], sigPrivs[l] = ps, lp.SignaturePriv
			}
			ctx := &wire.GroupContext{
				Version:                 wire.ProtocolVersionMLS10,
				CipherSuite:             wire.CipherSuite(tc.CipherSuite),
				GroupID:                 tc.GroupID,
				Epoch:                   uint64(tc.Epoch),
				ConfirmedTranscriptHash: tc.ConfirmedTranscriptHash,
			}
			pol := &ratchettree.Policy{Credentials: acceptCredentials{}}
			for k, up := range tc.UpdatePaths {
				sender := ratchettree.LeafIndex(up.Sender)
				path, err := wire.Decode[wire.UpdatePath](up.UpdatePath)
				if err != nil {
					return fmt.Errorf("update path %d: %w", k, err)
				}
				// The public view: merge and parent-hash check only.
				pub := t.Clone()
				if _, err := pub.ApplyUpdatePath(sender, path, nil, ctx, nil, pol); err != nil {
					return fmt.Errorf("update path %d: %w", k, err)
				}
				if h := pub.TreeHash(); !bytes.Equal(h, up.TreeHashAfter) {
					return mismatch(fmt.Sprintf("update path %d: tree_hash_after", k), h, up.TreeHashAfter)
				}
				for j, ps := range privs {
					if j == sender {
						continue
					}
					tj := t.Clone()
					rp, err := tj.ApplyUpdatePath(sender, path, nil, ctx, ps, pol)
					if err != nil {
						return fmt.Errorf("update path %d, leaf %d: %w", k, j, err)
					}
					if int(j) >= len(up.PathSecrets) || !bytes.Equal(rp.PathSecret, up.PathSecrets[j]) {
						return fmt.Errorf("update path %d, leaf %d: wrong path secret", k, j)
					}
					if !bytes.Equal(rp.CommitSecret, up.CommitSecret) {
						return fmt.Errorf("update path %d, leaf %d: wrong commit secret", k, j)
					}
					if h := tj.TreeHash(); !bytes.Equal(h, up.TreeHashAfter) {
						return mismatch(fmt.Sprintf("update path %d, leaf %d: tree hash", k, j), h, up.TreeHashAfter)
					}
				}
				// A fresh UpdatePath from the same sender must be
				// processed by every other member to the same secret.
				signer, err := s.NewSigner(sigPrivs[sender])
				if err != nil {
					return fmt.Errorf("update path %d: signature key: %w", k, err)
				}
				ts := t.Clone()
				created, err := ts.CreateUpdatePath(&ratchettree.PathParams{
					Sender: sender, Leaf: t.Leaf(sender), Signer: signer, GroupContext: ctx, Rand: rand.Reader})
				if err != nil {
					return fmt.Errorf("update path %d: creating: %w", k, err)
				}
				for j, ps := range privs {
					if j == sender {
						continue
					}
					tj := t.Clone()
					rp, err := tj.ApplyUpdatePath(sender, created.Path, nil, ctx, ps, pol)
					if err != nil {
						return fmt.Errorf("update path %d, leaf %d, created path: %w", k, j, err)
					}
					if !bytes.Equal(rp.CommitSecret, created.CommitSecret) {
						return fmt.Errorf("update path %d, leaf %d: created path gives another commit secret", k, j)
					}
					if !bytes.Equal(tj.TreeHash(), ts.TreeHash()) {
						return fmt.Errorf("update path %d, leaf %d: trees differ after created path", k, j)
					}
				}
			}
			return nil
		}()})
	}
	return out, nil
}
