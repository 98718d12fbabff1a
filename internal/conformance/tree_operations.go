package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/mlskit/mlskit/internal/ratchettree"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/wire"
)

func init() { register("tree-operations.json", checkTreeOperations) }

// checkTreeOperations applies one Add, Update or Remove proposal to a tree
// and compares the resulting tree and tree hashes (RFC 9420, Sections 7.7,
// 7.8 and 12.1.1-12.1.3).
func checkTreeOperations(data []byte) ([]Case, error) {
	var tcs []struct {
		CipherSuite    uint16 `json:"cipher_suite"`
		TreeBefore     Hex    `json:"tree_before"`
		Proposal       Hex    `json:"proposal"`
		ProposalSender uint32 `json:"proposal_sender"`
		TreeHashBefore Hex    `json:"tree_hash_before"`
		TreeAfter      Hex    `json:"tree_after"`
		TreeHashAfter  Hex    `json:"tree_hash_after"`
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
			t, err := ratchettree.Decode(s, tc.TreeBefore)
			if err != nil {
				return fmt.Errorf("tree_before: %w", err)
			}
			if h := t.TreeHash(); !bytes.Equal(h, tc.TreeHashBefore) {
				return mismatch("tree_hash_before", h, tc.TreeHashBefore)
			}
			p, err := wire.Decode[wire.Proposal](tc.Proposal)
			if err != nil {
				return fmt.Errorf("proposal: %w", err)
			}
			switch p.ProposalType {
			case wire.ProposalTypeAdd:
				_, err = t.AddLeaf(&p.Add.KeyPackage.LeafNode)
			case wire.ProposalTypeUpdate:
				err = t.UpdateLeaf(ratchettree.LeafIndex(tc.ProposalSender), &p.Update.LeafNode)
			case wire.ProposalTypeRemove:
				err = t.RemoveLeaf(ratchettree.LeafIndex(p.Remove.Removed))
			default:
				return fmt.Errorf("unexpected proposal type %d", p.ProposalType)
			}
			if err != nil {
				return err
			}
			enc, err := t.Encode()
			if err != nil {
				return err
			}
			if !bytes.Equal(enc, tc.TreeAfter) {
				return mismatch("tree_after", enc, tc.TreeAfter)
			}
			if h := t.TreeHash(); !bytes.Equal(h, tc.TreeHashAfter) {
				return mismatch("tree_hash_after", h, tc.TreeHashAfter)
			}
			// A fresh decode of the result must agree with the
			// incrementally maintained caches.
			t2, err := ratchettree.Decode(s, enc)
			if err != nil {
				return fmt.Errorf("decoding tree_after: %w", err)
			}
			if h := t2.TreeHash(); !bytes.Equal(h, tc.TreeHashAfter) {
				return mismatch("tree_hash_after (decoded)", h, tc.TreeHashAfter)
			}
			return nil
		}()})
	}
	return out, nil
}
