package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCAInitRefusesExisting: `mlsd ca init` on a directory that holds a CA
// exits non-zero with a clear message and leaves the CA as it was; -force
// replaces it (issue 16, finding 9).
func TestCAInitRefusesExisting(t *testing.T) {
	dir := t.TempDir()
	var out strings.Builder
	if err := run(context.Background(), []string{"ca", "init", "-dir", dir}, &out, &out); err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(filepath.Join(dir, "ca-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	// Through the binary: the exit status is what scripts see.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "MLSD_CHILD_ARGS=ca init -dir "+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("second ca init: %v (want a non-zero exit)", err)
	}
	if !strings.Contains(stderr.String(), "already holds a CA") || !strings.Contains(stderr.String(), "-force") {
		t.Fatalf("second ca init said %q", stderr.String())
	}
	if now, _ := os.ReadFile(filepath.Join(dir, "ca-key.pem")); !bytes.Equal(now, key) {
		t.Fatal("refused ca init changed the CA key")
	}
	if err := run(context.Background(), []string{"ca", "init", "-dir", dir, "-force"}, &out, &out); err != nil {
		t.Fatalf("ca init -force: %v", err)
	}
	if now, _ := os.ReadFile(filepath.Join(dir, "ca-key.pem")); bytes.Equal(now, key) {
		t.Fatal("ca init -force kept the old key")
	}
}

// TestShutdownEndsStreams: on SIGTERM mlsd ends open streams and exits as
// soon as the calls in progress are done, well before its shutdown timeout
// (issue 16, finding 12).
func TestShutdownEndsStreams(t *testing.T) {
	ch := startChild(t, t.TempDir())
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		c := login(t, ch.url, "s"+string(rune('a'+i)), newSigner())
		st, err := c.Subscribe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		ended := make(chan error, 1)
		go func() {
			for {
				if _, err := st.Next(); err != nil {
					ended <- err
					return
				}
			}
		}()
		t.Cleanup(func() {
			select {
			case <-ended:
			case <-time.After(5 * time.Second):
				t.Error("a stream did not end at shutdown")
			}
		})
	}
	time.Sleep(200 * time.Millisecond) // the streams are open
	start := time.Now()
	if err := ch.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := ch.cmd.Wait()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("mlsd exited with %v after SIGTERM", err)
	}
	// The shutdown timeout is 5 s; with three open streams the old code
	// always took all of it.
	if took > 2*time.Second {
		t.Fatalf("shutdown with open streams took %v", took)
	}
	t.Logf("shutdown with 3 open streams took %v (timeout 5s)", took)
}
