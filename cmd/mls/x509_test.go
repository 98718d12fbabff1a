package main

import (
	"bufio"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// buildMLSD builds cmd/mlsd once for a test.
func buildMLSD(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs mlsd")
	}
	bin := filepath.Join(t.TempDir(), "mlsd")
	gobin := goBinary(t)
	if out, err := exec.Command(gobin, "build", "-o", bin, "github.com/mlskit/mlskit/cmd/mlsd").CombinedOutput(); err != nil {
		t.Fatalf("building mlsd: %v\n%s", err, out)
	}
	return bin
}

// serveMLSD runs "mlsd serve" with extra flags on a free loopback port.
func serveMLSD(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "-listen", "127.0.0.1:0", "-log-level", "error", "-data", t.TempDir()}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("mlsd did not start: %v", err)
	}
	f := strings.Fields(line)
	if len(f) < 4 || !strings.HasPrefix(f[3], "http") {
		t.Fatalf("mlsd said %q", line)
	}
	return f[3]
}

// mlsdCA runs an "mlsd ca" command as the operator and returns its stdout.
func mlsdCA(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("mlsd %s: %v\n%s", strings.Join(args, " "), err, msg)
	}
	return out
}

var issueLine = regexp.MustCompile(`(?m)^\s+mlsd (ca issue -dir CA_DIR .*) > (\S+)$`)

// x509User runs "mls init --ca-cert", has the operator run exactly the
// "mlsd ca issue" command it printed against caDir, and returns the
// certificate file.
func x509User(t *testing.T, bin, url, caPEM, caDir, dir, name string) string {
	t.Helper()
	out := ok(t, dir, "init", "--name", name, "--server", url, "--ca-cert", caPEM)
	contains(t, out, "needs a certificate", "mls cert import --cert "+name+".pem --dir "+dir)
	m := issueLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("init printed no mlsd ca issue command:\n%s", out)
	}
	args := strings.Fields(strings.Replace(m[1], "CA_DIR", caDir, 1))
	cert := filepath.Join(filepath.Dir(dir), name+"-"+filepath.Base(caDir)+".pem")
	if err := os.WriteFile(cert, mlsdCA(t, bin, args...), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestChatX509: mlsd requires X.509 device credentials from one CA; three
// users get certificates from it and chat; users with a certificate from
// another CA, a revoked certificate or a Basic credential are refused with
// a clear error.
func TestChatX509(t *testing.T) {
	bin := buildMLSD(t)
	root := t.TempDir()
	caDir, otherCA := filepath.Join(root, "ca"), filepath.Join(root, "other-ca")
	mlsdCA(t, bin, "ca", "init", "-dir", caDir)
	mlsdCA(t, bin, "ca", "init", "-dir", otherCA, "-name", "someone else's CA")
	caPEM := filepath.Join(caDir, "ca.pem")
	// -allow-basic lets a Basic user reach the server, so that the
	// clients' own refusal is what the test sees.
	url := serveMLSD(t, bin, "-ca-cert", caPEM, "-allow-basic")

	dirs := map[string]string{}
	certs := map[string]string{}
	for _, n := range []string{"alice", "bob", "carol", "dave"} {
		dirs[n] = filepath.Join(root, n)
		certs[n] = x509User(t, bin, url, caPEM, caDir, dirs[n], n)
	}
	alice, bob, carol, dave := dirs["alice"], dirs["bob"], dirs["carol"], dirs["dave"]

	// Before its certificate is installed an identity cannot use the server.
	fails(t, alice, "no certificate installed", "publish")
	// A certificate for someone else's key is refused.
	fails(t, alice, "another signature key", "cert", "import", "--cert", certs["bob"])
	for _, n := range []string{"alice", "bob", "carol", "dave"} {
		contains(t, ok(t, dirs[n], "cert", "import", "--cert", certs[n]), "installed certificate for \""+n+"\"", "published 11 KeyPackages")
	}

	ok(t, alice, "create", "team")
	contains(t, ok(t, alice, "invite", "team", "bob", "carol"), "invited bob, carol", "epoch 1")
	contains(t, ok(t, bob, "join"), "alice added you", "alice, bob, carol")
	contains(t, ok(t, carol, "join"), "alice added you")
	ok(t, alice, "send", "team", "hello", "x509")
	ok(t, bob, "send", "team", "hi alice")
	contains(t, ok(t, carol, "read", "team"), "alice: hello x509", "bob: hi alice")
	// A commit path with bob's credential, validated by the others.
	contains(t, ok(t, bob, "update", "team"), "epoch 2")
	contains(t, ok(t, alice, "read"), "bob: hi alice", "bob updated their keys (epoch 2)")
	contains(t, ok(t, carol, "read"), "bob updated their keys (epoch 2)")

	// A certificate from another CA: its holder's client refuses it against
	// alice's CA, and with that CA as its own, the server refuses its login.
	eve := filepath.Join(root, "eve")
	eveCert := x509User(t, bin, url, caPEM, otherCA, eve, "eve")
	fails(t, eve, "not valid under the CA certificate", "cert", "import", "--cert", eveCert)
	eve2 := filepath.Join(root, "eve2")
	eve2Cert := x509User(t, bin, url, filepath.Join(otherCA, "ca.pem"), otherCA, eve2, "eve")
	fails(t, eve2, "did not accept this client's login", "cert", "import", "--cert", eve2Cert)
	fails(t, alice, "no KeyPackage for eve", "invite", "team", "eve")

	// A Basic user the server lets in is refused by the X.509 clients.
	ok(t, filepath.Join(root, "mallory"), "init", "--name", "mallory", "--server", url)
	fails(t, alice, "mallory cannot be invited: their credential is not trusted: unsupported credential type: Basic credentials are not accepted", "invite", "team", "mallory")

	// The operator revokes dave; once alice has the CRL she refuses him
	// (mlsd here has no CRL, so only the client's check stands between).
	info := ok(t, dave, "cert", "request")
	contains(t, info, "mlsd ca issue -dir CA_DIR -client dave")
	serial := certSerial(t, certs["dave"])
	mlsdCA(t, bin, "ca", "revoke", "-dir", caDir, "-serial", serial)
	crl := filepath.Join(root, "crl.der")
	if err := os.WriteFile(crl, mlsdCA(t, bin, "ca", "crl", "-dir", caDir), 0o600); err != nil {
		t.Fatal(err)
	}
	contains(t, ok(t, alice, "cert", "crl", "--crl", crl), "1 revoked")
	fails(t, alice, "dave cannot be invited: their credential is not trusted: certificate revoked: serial "+serial, "invite", "team", "dave")
	contains(t, ok(t, alice, "members", "team"), "epoch 2, 3 members")
	// A CRL signed by another CA is refused.
	bad := filepath.Join(root, "bad-crl.der")
	if err := os.WriteFile(bad, mlsdCA(t, bin, "ca", "crl", "-dir", otherCA), 0o600); err != nil {
		t.Fatal(err)
	}
	fails(t, alice, "not signed by the CA", "cert", "crl", "--crl", bad)
}

func certSerial(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s: no PEM", path)
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert.SerialNumber.String()
}
