package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/mlskit/mlskit/internal/ratchettree"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/wire"
)

func init() { register("tree-validation.json", checkTreeValidation) }

// checkTreeValidation checks every node's resolution and tree hash, the
// parent hashes as a joiner verifies them, and every leaf's signature
// (RFC 9420, Sections 4.1.1, 7.8, 7.9.2 and 7.3).
// acceptCredentials accepts every credential: the vectors test tree rules,
// not an application's identity policy.
type acceptCredentials struct{}

func (acceptCredentials) Validate(wire.Credential, []byte) error { return nil }

func checkTreeValidation(data []byte) ([]Case, error) {
	var tcs []struct {
		CipherSuite uint16     `json:"cipher_suite"`
		Tree        Hex        `json:"tree"`
		GroupID     Hex        `json:"group_id"`
		Resolutions [][]uint32 `json:"resolutions"`
		TreeHashes  []Hex      `json:"tree_hashes"`
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
			t, err := ratchettree.Decode(s, tc.Tree)
			if err != nil {
				return fmt.Errorf("tree: %w", err)
			}
			w := t.Width()
			if uint32(len(tc.Resolutions)) != w || uint32(len(tc.TreeHashes)) != w {
				return fmt.Errorf("vector has %d resolutions and %d hashes for %d nodes", len(tc.Resolutions), len(tc.TreeHashes), w)
			}
			for x := range w {
				got := t.Resolution(ratchettree.NodeIndex(x))
				want := tc.Resolutions[x]
				if len(got) != len(want) {
					return fmt.Errorf("resolution(%d) = %v, want %v", x, got, want)
				}
				for k := range got {
					if uint32(got[k]) != want[k] {
						return fmt.Errorf("resolution(%d) = %v, want %v", x, got, want)
					}
				}
				if h := t.NodeHash(ratchettree.NodeIndex(x)); !bytes.Equal(h, tc.TreeHashes[x]) {
					return mismatch(fmt.Sprintf("tree hash of node %d", x), h, tc.TreeHashes[x])
				}
			}
			if err := t.VerifyParentHashes(); err != nil {
				return err
			}
			var err2 error
			t.Members(func(l ratchettree.LeafIndex, _ *wire.LeafNode) bool {
				err2 = t.VerifyLeafSignature(l, tc.GroupID)
				return err2 == nil
			})
			if err2 != nil {
				return err2
			}
			// The whole joiner check of Section 12.4.3.1, credentials
			// accepted as they are (the vectors carry basic ones).
			return t.Validate(tc.TreeHashes[t.Root()], &ratchettree.Policy{
				GroupID: tc.GroupID, Credentials: acceptCredentials{}})
		}()})
	}
	return out, nil
}
