package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/mlskit/mlskit/client"
)

// X.509 identities (docs/CLI.md, "X.509 identities"): "mls init --ca-cert"
// makes the key and prints the command the CA operator runs; "mls cert
// import" installs the certificate and publishes KeyPackages.

const certUsage = `usage: mls cert <command> [--dir DIR]

X.509 identities (made with "mls init --ca-cert CA.pem"):
  import --cert FILE   install your certificate (PEM, leaf first, or DER) from
                       "mlsd ca issue", then publish KeyPackages that carry it
  crl --crl FILE       install the CA's revocation list ("mlsd ca crl")
  request              print the "mlsd ca issue" command for your key again
`

// initX509 runs "mls init --ca-cert": it creates the identity and tells the
// user what the CA operator has to run. Nothing is published: the server
// accepts this client only once it has its certificate.
func initX509(ctx context.Context, dir string, o client.InitOptions, caPath string, allowBasic bool, stdout io.Writer, fail func(error) int) int {
	ca, err := os.ReadFile(caPath)
	if err != nil {
		return fail(fmt.Errorf("--ca-cert: %w", err))
	}
	c, err := client.InitX509(ctx, dir, o, client.X509Options{CACert: ca, AllowBasic: allowBasic})
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	id := c.Identity()
	fmt.Fprintf(stdout, "created identity %q in %s; it needs a certificate from the CA before it can use the server\n", o.Name, dir)
	fmt.Fprintf(stdout, "signature public key (cipher suite %d): %x\n", id.Suite, c.SignaturePublicKey())
	fmt.Fprintf(stdout, "ask the CA operator to run:\n  mlsd ca issue -dir CA_DIR -client %s -suite %d -key %x > %s.pem\n", o.Name, id.Suite, c.SignaturePublicKey(), o.Name)
	fmt.Fprintf(stdout, "then run:\n  mls cert import --cert %s.pem --dir %s\n", o.Name, dir)
	return 0
}

func runCert(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, certUsage)
		return 2
	}
	if isHelp(args[0]) {
		fmt.Fprint(stdout, certUsage)
		return 0
	}
	sub := args[0]
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	label := "mls cert " + sub
	fs := flag.NewFlagSet(label, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s [flags]\n\n%s\nflags:\n", label, certUsage)
		fs.PrintDefaults()
	}
	dir := fs.String("dir", defaultDir(), "state directory")
	var file *string
	switch sub {
	case "import":
		file = fs.String("cert", "", "certificate file from \"mlsd ca issue\" (PEM chain leaf first, or DER)")
	case "crl":
		file = fs.String("crl", "", "CRL file from \"mlsd ca crl\"")
	case "request":
	default:
		fmt.Fprintf(stderr, "mls cert: unknown command %q\n\n%s", sub, certUsage)
		return 2
	}
	pos, code := parseFlags(fs, args[1:], true, stdout, stderr)
	if code != flagsOK {
		return code
	}
	if len(pos) > 0 || file != nil && *file == "" {
		fmt.Fprintf(stderr, "%s: bad arguments\n\n%s", label, certUsage)
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "%s: %s\n", label, clean(err.Error()))
		if errors.Is(err, client.ErrUsage) {
			return 2
		}
		return 1
	}
	c, err := client.Open(*dir)
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	var data []byte
	if file != nil {
		if data, err = os.ReadFile(*file); err != nil {
			return fail(err)
		}
	}
	switch sub {
	case "request":
		if x, _ := c.X509(); !x {
			return fail(fmt.Errorf("%s is a Basic identity (made without --ca-cert)", *dir))
		}
		fmt.Fprintf(stdout, "mlsd ca issue -dir CA_DIR -client %s -suite %d -key %x > %s.pem\n",
			c.Identity().Name, c.Identity().Suite, c.SignaturePublicKey(), c.Identity().Name)
	case "crl":
		n, err := c.ImportCRL(data)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "installed the CA's CRL (%d revoked certificates)\n", n)
	case "import":
		info, err := c.ImportCertificate(data)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "installed certificate for %q (serial %s, valid until %s)\n", info.Subject, info.Serial, info.NotAfter.UTC().Format("2006-01-02"))
		if c.Identity().Server != "" {
			n, err := c.Publish(ctx)
			if err != nil {
				return fail(fmt.Errorf("certificate installed, but publishing KeyPackages failed (run \"mls publish\" later): %w", err))
			}
			fmt.Fprintf(stdout, "published %d KeyPackages to %s\n", n, c.Identity().Server)
		}
	}
	return 0
}
