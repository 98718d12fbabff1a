// Command mlsd runs the mlskit delivery service (RFC 9750, Section 5) and
// administers its authentication service's CA.
//
//	mlsd [serve] [-listen 127.0.0.1:7420] [-data ./mlsd-data] [-postgres DSN] [-ca-cert ca.pem] [-crl crl.der]
//	mlsd ca init   -dir DIR [-name NAME] [-force]
//	mlsd ca issue  -dir DIR -client ID -suite N -key HEX [-days N]   (PEM certificate on stdout)
//	mlsd ca revoke -dir DIR -serial N
//	mlsd ca crl    -dir DIR > crl.der
//
// With no flags it serves on 127.0.0.1:7420 with SQLite in ./mlsd-data and
// accepts basic credentials, pinning each identity to its first key. With
// -ca-cert it accepts x509 credentials issued by that CA (and basic ones
// only with -allow-basic).
package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"encoding/pem"

	"github.com/mlskit/mlskit/as"
	"github.com/mlskit/mlskit/ds/server"
	"github.com/mlskit/mlskit/ds/store"
	"github.com/mlskit/mlskit/ds/store/postgres"
	"github.com/mlskit/mlskit/ds/store/sqlite"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := exitCode(run(ctx, os.Args[1:], os.Stdout, os.Stderr), os.Stderr)
	stop()
	os.Exit(code)
}

// run runs one command line. Help (errHelp) and bad usage (*usageError)
// have been printed when it returns; exitCode turns its error into the
// exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && isHelp(args[0]) {
		fmt.Fprint(stdout, usage)
		return errHelp
	}
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "serve":
			return serve(ctx, args[1:], stdout, stderr)
		case "ca":
			return caCmd(args[1:], stdout, stderr)
		default:
			fmt.Fprintf(stderr, "mlsd: unknown command %q\n\n%s", args[0], usage)
			return &usageError{fmt.Errorf("unknown command %q (want serve or ca)", args[0])}
		}
	}
	return serve(ctx, args, stdout, stderr)
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mlsd serve", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: mlsd [serve] [flags]\n\nRuns the delivery service (RFC 9750, Section 5); docs/mlsd.md explains every flag.\n\nflags:\n")
		fs.PrintDefaults()
	}
	listen := fs.String("listen", "127.0.0.1:7420", "address to serve gRPC, gRPC-Web and Connect on (h2c and HTTP/1.1)")
	data := fs.String("data", "mlsd-data", "SQLite data directory (ignored with -postgres)")
	pg := fs.String("postgres", os.Getenv("MLSD_POSTGRES"), "PostgreSQL DSN; nodes sharing it form one service")
	schema := fs.String("schema", "mlsd", "PostgreSQL schema")
	caCert := fs.String("ca-cert", "", "CA certificate (PEM) whose x509 credentials are accepted")
	crl := fs.String("crl", "", "CRL (DER) from the CA, reloaded every minute")
	allowBasic := fs.Bool("allow-basic", false, "with -ca-cert, also accept basic credentials")
	maxMsg := fs.Int("max-message-size", 1<<20, "largest MLS message accepted, bytes")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	shutdownTimeout := fs.Duration("shutdown-timeout", 5*time.Second, "longest wait for calls in progress on SIGTERM")
	cfg := server.Config{}
	limitFlags(fs, &cfg)
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "mlsd serve: -log-level %q: want debug, info, warn or error\n", *logLevel)
		return &usageError{err}
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))

	var st store.Store
	var where string
	if *pg != "" {
		s, err := postgres.Open(ctx, *pg, postgres.Options{Schema: *schema})
		if err != nil {
			return err
		}
		st, where = s, "postgres schema "+*schema
	} else {
		s, err := sqlite.Open(*data)
		if err != nil {
			return err
		}
		st, where = s, "sqlite in "+*data
	}
	defer st.Close()

	var validator as.Validator = as.BasicValidator{}
	if *caCert != "" {
		cert, err := as.LoadCertificate(*caCert)
		if err != nil {
			return err
		}
		xv := as.NewX509Validator(cert)
		if *crl != "" {
			load := func() error {
				der, err := os.ReadFile(*crl)
				if err != nil {
					return err
				}
				return xv.SetCRL(der)
			}
			if err := load(); err != nil {
				return err
			}
			go func() {
				t := time.NewTicker(time.Minute)
				defer t.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-t.C:
						if err := load(); err != nil {
							log.Warn("reloading CRL", "err", err)
						}
					}
				}
			}()
		}
		validator = xv
		if *allowBasic {
			validator = as.Chain{xv, as.BasicValidator{}}
		}
	}

	cfg.Store, cfg.Validator, cfg.Logger, cfg.MaxMessageSize = st, validator, log, *maxMsg
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	// Header, idle and keep-alive limits; Shutdown drains streams.
	hs := srv.HTTPServer()
	fmt.Fprintf(stdout, "mlsd listening on http://%s (%s)\n", ln.Addr(), where)
	log.Info("mlsd started", "addr", ln.Addr().String(), "store", where)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("mlsd shutting down")
	start := time.Now()
	sctx, cancel := context.WithTimeout(context.Background(), *shutdownTimeout)
	defer cancel()
	// Shutdown closes the listener, ends streams (Drain, registered by
	// HTTPServer), and returns once the calls in progress are answered.
	err = hs.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		log.Warn("calls still in progress at the shutdown timeout; closing them")
		hs.Close()
		err = nil
	}
	log.Info("mlsd stopped", "after", time.Since(start).Round(time.Millisecond))
	return err
}

func caCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, caUsage)
		return &usageError{errors.New("ca: want init, issue, revoke or crl")}
	}
	if isHelp(args[0]) {
		fmt.Fprint(stdout, caUsage)
		return errHelp
	}
	switch args[0] {
	case "init", "issue", "revoke", "crl":
	default:
		fmt.Fprintf(stderr, "mlsd ca: unknown command %q\n\n%s", args[0], caUsage)
		return &usageError{fmt.Errorf("ca: unknown command %q", args[0])}
	}
	fs := flag.NewFlagSet("mlsd ca "+args[0], flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: mlsd ca %s\n\n%s\n\nflags:\n", caArgs[args[0]], caHelp[args[0]])
		fs.PrintDefaults()
	}
	dir := fs.String("dir", "mlsd-ca", "CA state directory")
	name := fs.String("name", "mlskit device CA", "CA name (init)")
	client := fs.String("client", "", "client identity (issue)")
	suiteID := fs.Uint("suite", 1, "MLS cipher suite of the key (issue)")
	keyHex := fs.String("key", "", "MLS signature public key, hex (issue)")
	days := fs.Int("days", 365, "validity in days")
	serial := fs.String("serial", "", "certificate serial number, decimal (revoke)")
	force := fs.Bool("force", false, "init: replace an existing CA (its key and revocation list are lost)")
	if err := parseFlags(fs, args[1:], stdout, stderr); err != nil {
		return err
	}
	switch args[0] {
	case "init":
		if !*force {
			if f, ok := as.CAExists(*dir); ok {
				return fmt.Errorf("ca init: %s already holds a CA (%s); refusing to replace its key and revocation list (use -force to replace it)", *dir, f)
			}
		}
		ca, err := as.NewCA(*name, time.Duration(*days)*24*time.Hour*10)
		if err != nil {
			return err
		}
		if err := ca.Save(*dir); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "CA created in %s\n", *dir)
	case "issue":
		ca, err := as.LoadCA(*dir)
		if err != nil {
			return err
		}
		key, err := hex.DecodeString(*keyHex)
		if err != nil {
			return fmt.Errorf("-key: %w", err)
		}
		der, err := ca.Issue(*client, uint16(*suiteID), key, time.Duration(*days)*24*time.Hour)
		if err != nil {
			return err
		}
		return pem.Encode(stdout, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	case "revoke":
		ca, err := as.LoadCA(*dir)
		if err != nil {
			return err
		}
		n, ok := new(big.Int).SetString(*serial, 10)
		if !ok {
			return errors.New("-serial: want a decimal number")
		}
		return ca.Revoke(n)
	case "crl":
		ca, err := as.LoadCA(*dir)
		if err != nil {
			return err
		}
		der, err := ca.CRL(7 * 24 * time.Hour)
		if err != nil {
			return err
		}
		_, err = stdout.Write(der)
		return err
	default:
		return fmt.Errorf("ca: unknown command %q", args[0])
	}
	return nil
}
