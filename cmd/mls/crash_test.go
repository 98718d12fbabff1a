package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dsclient "github.com/mlskit/mlskit/ds/client"
)

// commitProxy stands between a client and mlsd and can hold the next
// SendCommit: the test kills the client while it waits.
type commitProxy struct {
	url     string
	mu      sync.Mutex
	mode    string        // "", "drop", "forward-after-kill", "lose-response"
	holding chan struct{} // closed when the armed request is held
	release chan struct{} // closed by the test after the kill
}

const sendCommitPath = "/mlsd.v1.DeliveryService/SendCommit"

func startCommitProxy(t *testing.T, target string) *commitProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = dsclient.HTTPClient().Transport
	rp.FlushInterval = -1
	p := &commitProxy{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		mode := ""
		var holding, release chan struct{}
		if r.URL.Path == sendCommitPath && p.mode != "" {
			mode, holding, release = p.mode, p.holding, p.release
			p.mode = ""
		}
		p.mu.Unlock()
		switch mode {
		case "":
			rp.ServeHTTP(w, r)
		case "drop":
			close(holding)
			<-release
			// The request never reaches mlsd.
		case "forward-after-kill":
			body, _ := io.ReadAll(r.Body)
			close(holding)
			<-release
			// mlsd gets the request only after the client died.
			r2 := r.Clone(r.Context())
			r2.Body = io.NopCloser(bytes.NewReader(body))
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, r2.WithContext(detached{}))
		case "lose-response":
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, r.WithContext(detached{}))
			close(holding)
			<-release
			// mlsd accepted; the answer never reaches the client.
		}
	}))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Start()
	t.Cleanup(srv.Close)
	p.url = srv.URL
	return p
}

// detached is a context that is never cancelled: the held request goes on
// after the client's connection is gone.
type detached struct{}

func (detached) Deadline() (time.Time, bool) { return time.Time{}, false }
func (detached) Done() <-chan struct{}       { return nil }
func (detached) Err() error                  { return nil }
func (detached) Value(any) any               { return nil }
func (p *commitProxy) arm(mode string) (holding, release chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode, p.holding, p.release = mode, make(chan struct{}), make(chan struct{})
	return p.holding, p.release
}

// killDuringCommit runs an mls command that commits in a new process, and
// kills it (SIGKILL) while the proxy holds its SendCommit.
func killDuringCommit(t *testing.T, p *commitProxy, mode string, args ...string) {
	t.Helper()
	holding, release := p.arm(mode)
	enc, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "MLS_CHILD_ARGS="+string(enc))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-holding:
	case err := <-exited:
		t.Fatalf("mls %s ended before its commit was held: %v\n%s", strings.Join(args, " "), err, out.String())
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("mls %s never sent its commit", strings.Join(args, " "))
	}
	cmd.Process.Kill()
	err := <-exited
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != -1 {
		t.Fatalf("mls %s was not killed: %v", strings.Join(args, " "), err)
	}
	close(release)
}

// TestKilledDuringCommit: the client is killed (SIGKILL) at each step of
// sending a commit; the next run settles the pending commit from the log
// (merged if mlsd accepted it, dropped if not) and every operation works,
// with no "commit is pending".
func TestKilledDuringCommit(t *testing.T) {
	mlsd := startMLSD(t)
	p := startCommitProxy(t, mlsd)
	root := t.TempDir()
	alice, bob := filepath.Join(root, "alice"), filepath.Join(root, "bob")
	ok(t, alice, "init", "--name", "alice", "--server", p.url)
	ok(t, bob, "init", "--name", "bob", "--server", mlsd)
	ok(t, alice, "create", "team")
	ok(t, alice, "invite", "team", "bob")
	ok(t, bob, "join")
	epoch := func(dir string) string {
		out := ok(t, dir, "members", "team")
		return strings.Fields(out[strings.Index(out, "epoch"):])[1]
	}

	for _, c := range []struct {
		mode     string
		accepted bool
	}{
		{"drop", false},              // killed before the commit reached mlsd
		{"forward-after-kill", true}, // killed while the request was on its way; mlsd accepts it
		{"lose-response", true},      // killed after mlsd accepted, before the answer arrived
	} {
		t.Run(c.mode, func(t *testing.T) {
			before := epoch(alice)
			killDuringCommit(t, p, c.mode, "update", "team", "--dir", alice)
			// Wait for mlsd to have sequenced it (or not).
			if c.accepted {
				deadline := time.Now().Add(10 * time.Second)
				for !strings.Contains(ok(t, bob, "read", "team"), "alice updated their keys") {
					if time.Now().After(deadline) {
						t.Fatal("mlsd never sequenced the held commit")
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
			// The next run: no "commit is pending", and alice is where the log says.
			out := childMLS(t, "read", "team", "--dir", alice)
			if c.accepted {
				contains(t, out, "your commit was accepted")
			} else {
				contains(t, out, "never reached the group")
				if e := epoch(alice); e != before {
					t.Fatalf("epoch %s after a dropped commit, want %s", e, before)
				}
			}
			childMLS(t, "update", "team", "--dir", alice)
			ok(t, bob, "read", "team")
			childMLS(t, "send", "team", "after "+c.mode, "--dir", alice)
			contains(t, ok(t, bob, "read", "team"), "alice: after "+c.mode)
			ok(t, bob, "update", "team")
			ok(t, alice, "read")
			if a, b := authenticator(t, alice, "team"), authenticator(t, bob, "team"); a != b {
				t.Fatalf("alice and bob disagree on the group after %s", c.mode)
			}
		})
	}
}
