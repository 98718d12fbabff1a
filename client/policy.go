package client

import "github.com/mlskit/mlskit/mls"

// updateDue applies the group layer's key-update policy
// (mls.KeyUpdatePolicy, RFC 9750, Sections 6 and 8.2.2): true when this
// member should refresh its leaf before sending more.
func updateDue(g *mls.Group) bool { return g.KeyUpdateStatus().Due }
