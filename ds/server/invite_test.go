package server_test

import (
	"testing"

	v1 "github.com/mlskit/mlskit/ds/api/mlsdv1"
	"github.com/mlskit/mlskit/internal/fakemsg"
)

// invite adds members the only way mlsd now admits them in a group with
// encrypted handshakes: each publishes a KeyPackage, the committer claims
// them from the directory, and its commit carries a Welcome to exactly
// those KeyPackages (the commit and Welcome bodies are opaque here; the
// server cannot read them and does not need to).
func invite(t testing.TB, by *member, gid []byte, epoch uint64, who ...*member) (*v1.SendCommitResponse, error) {
	t.Helper()
	var names []string
	for _, w := range who {
		_, err := w.UploadKeyPackages(ctx, [][]byte{w.keyPackage(t, false)}, nil)
		must(t, err)
		names = append(names, w.name)
	}
	var refs [][]byte
	for i := 0; i < len(names); i += 50 {
		claimed, err := by.ClaimKeyPackages(ctx, testSuite, names[i:min(i+50, len(names))]...)
		must(t, err)
		for _, kp := range claimed.KeyPackages {
			refs = append(refs, kp.Ref)
		}
	}
	if len(refs) != len(who) {
		t.Fatalf("claimed %d KeyPackages for %d members", len(refs), len(who))
	}
	return by.Commit(ctx, &v1.SendCommitRequest{
		Commit:     commitMsg(gid, epoch, "add "+names[0]),
		Welcomes:   []*v1.Welcome{{Welcome: fakemsg.Welcome(testSuite, refs, randBytes(32))}},
		AddMembers: names,
	})
}
