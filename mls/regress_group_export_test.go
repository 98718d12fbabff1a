package mls

import "github.com/mlskit/mlskit/internal/wire"

// Hooks for regress_group_test.go: they let a test act as a member that
// breaks a rule the public API refuses to break, so that the receiver's
// check is what the test exercises.

// CommitAfterReInit has g commit (with no proposals) although its last
// commit was a ReInit, as a member ignoring RFC 9420, Section 11.2 would,
// and returns the commit. g is left as it was, without a pending commit.
func CommitAfterReInit(g *Group) ([]byte, error) {
	ri := g.st.reinit
	g.st.reinit = nil
	defer func() { g.st.reinit = ri; g.pending = nil }()
	res, err := g.Commit(nil)
	if err != nil {
		return nil, err
	}
	return res.Commit, nil
}

// ResumeUnchecked creates a ReInit (reinit true) or branch group of g
// adding keyPackages, with the resumption PSK of pskEpoch, skipping the
// creator's membership checks (RFC 9420, Sections 11.2 and 11.3), and
// returns the Welcome.
func ResumeUnchecked(g *Group, groupID []byte, reinit bool, pskEpoch uint64, keyPackages []*KeyPackage, opts *ResumeOptions) ([]byte, error) {
	cs, exts, usage := g.CipherSuite(), g.Extensions(), wire.ResumptionPSKUsageBranch
	if reinit {
		ri := g.st.reinit
		cs, exts, usage = CipherSuite(ri.CipherSuite), extensionsFromWire(ri.Extensions), wire.ResumptionPSKUsageReInit
		groupID = ri.GroupID
	}
	_, res, err := g.resume(groupID, cs, exts, usage, pskEpoch, keyPackages, opts)
	if err != nil {
		return nil, err
	}
	return res.Welcome, nil
}
