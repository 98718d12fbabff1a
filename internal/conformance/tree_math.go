package conformance

import (
	"encoding/json"
	"fmt"

	"github.com/mlskit/mlskit/internal/treemath"
)

func init() { register("tree-math.json", checkTreeMath) }

// checkTreeMath verifies the array-tree arithmetic (RFC 9420, Appendix C).
func checkTreeMath(data []byte) ([]Case, error) {
	var tcs []struct {
		NLeaves uint32    `json:"n_leaves"`
		NNodes  uint32    `json:"n_nodes"`
		Root    uint32    `json:"root"`
		Left    []*uint32 `json:"left"`
		Right   []*uint32 `json:"right"`
		Parent  []*uint32 `json:"parent"`
		Sibling []*uint32 `json:"sibling"`
	}
	if err := json.Unmarshal(data, &tcs); err != nil {
		return nil, err
	}
	var out []Case
	for i, tc := range tcs {
		out = append(out, Case{Name: caseName(i, 0), Err: treeMathCase(tc.NLeaves, tc.NNodes, tc.Root,
			tc.Left, tc.Right, tc.Parent, tc.Sibling)})
	}
	return out, nil
}

func treeMathCase(n, nodes, root uint32, left, right, parent, sibling []*uint32) error {
	if w := treemath.Width(n); w != nodes {
		return fmt.Errorf("width(%d) = %d, want %d", n, w, nodes)
	}
	if r := treemath.Root(n); uint32(r) != root {
		return fmt.Errorf("root(%d) = %d, want %d", n, r, root)
	}
	for _, f := range []struct {
		name string
		want []*uint32
		fn   func(treemath.NodeIndex) (treemath.NodeIndex, bool)
	}{
		{"left", left, treemath.Left},
		{"right", right, treemath.Right},
		{"parent", parent, func(x treemath.NodeIndex) (treemath.NodeIndex, bool) { return treemath.Parent(x, n) }},
		{"sibling", sibling, func(x treemath.NodeIndex) (treemath.NodeIndex, bool) { return treemath.Sibling(x, n) }},
	} {
		if uint32(len(f.want)) != nodes {
			return fmt.Errorf("%s has %d entries for %d nodes", f.name, len(f.want), nodes)
		}
		for x, w := range f.want {
			got, ok := f.fn(treemath.NodeIndex(x))
			switch {
			case w == nil && ok:
				return fmt.Errorf("%s(%d) = %d, want none", f.name, x, got)
			case w != nil && (!ok || uint32(got) != *w):
				return fmt.Errorf("%s(%d) = %d (ok=%v), want %d", f.name, x, got, ok, *w)
			}
		}
	}
	return nil
}
