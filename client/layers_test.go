package client_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestClientLinksNoServerCode: the client package and the mls command link
// nothing of the delivery service's server side (issue 13: what client and
// server share lives in packages both import, ds/chain and ds/dsproto).
func TestClientLinksNoServerCode(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps",
		"github.com/mlskit/mlskit/client", "github.com/mlskit/mlskit/cmd/mls").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list listed only %d packages: %q", len(deps), deps)
	}
	for _, p := range deps {
		for _, server := range []string{"/ds/store", "/ds/server", "/ds/model", "/cmd/mlsd"} {
			if strings.HasPrefix(p, "github.com/mlskit/mlskit"+server) {
				t.Errorf("a client links server code: %s", p)
			}
		}
	}
}
