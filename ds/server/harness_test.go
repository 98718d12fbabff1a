package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/mlskit/mlskit/ds/client"
	"github.com/mlskit/mlskit/ds/server"
	"github.com/mlskit/mlskit/ds/store"
	"github.com/mlskit/mlskit/ds/store/sqlite"
	"github.com/mlskit/mlskit/internal/fakemsg"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/mls"
)

// syncBuffer collects log output for the "no bodies in logs" check.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b.Bytes()...)
}

type env struct {
	t    testing.TB
	st   store.Store
	srv  *server.Server
	http *httptest.Server
	logs *syncBuffer
	url  string
}

func newEnv(t testing.TB, cfg server.Config) *env {
	t.Helper()
	if cfg.Store == nil {
		st, err := sqlite.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		cfg.Store = st
	}
	logs := &syncBuffer{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The production http.Server: its connection limits and HTTP/2
	// windows are part of what the tests check.
	hs := httptest.NewUnstartedServer(nil)
	hs.Config = srv.HTTPServer()
	hs.Start()
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
		srv.Close()
	})
	return &env{t: t, st: cfg.Store, srv: srv, http: hs, logs: logs, url: hs.URL}
}

type member struct {
	*client.Client
	signer suite.Signer
	sig    *mls.SignatureKeyPair // the same key, for mls
	cred   []byte
	name   string
}

const testSuite = 1

func signer(t testing.TB) suite.Signer {
	sg, _ := keys(t)
	return sg
}

// keys makes a signature key pair, as the client's login signer and as
// the mls library's.
func keys(t testing.TB) (suite.Signer, *mls.SignatureKeyPair) {
	sig, err := mls.GenerateSignatureKeyPair(testSuite, rand.Reader)
	must(t, err)
	s, _ := suite.Lookup(testSuite)
	sg, err := s.NewSigner(sig.PrivateKey())
	must(t, err)
	return sg, sig
}

func (e *env) login(name string) *member {
	e.t.Helper()
	sg, sig := keys(e.t)
	m := &member{Client: client.New(e.url, nil), signer: sg, sig: sig, cred: mls.BasicCredential([]byte(name)).Bytes(), name: name}
	if err := m.Login(context.Background(), testSuite, sg, m.cred); err != nil {
		e.t.Fatalf("login %s: %v", name, err)
	}
	return m
}

func (m *member) keyPackage(t testing.TB, lastResort bool) []byte {
	t.Helper()
	now := time.Now()
	return newKeyPackage(t, m.sig, m.cred, now.Add(-time.Hour), now.Add(7*24*time.Hour), lastResort)
}

// newKeyPackage makes a real KeyPackage (mls.NewKeyPackage) valid from
// notBefore to notAfter (at least an hour apart).
func newKeyPackage(t testing.TB, sig *mls.SignatureKeyPair, cred []byte, notBefore, notAfter time.Time, lastResort bool) []byte {
	t.Helper()
	c, err := mls.ParseCredential(cred)
	must(t, err)
	cfg := &mls.Config{Now: func() time.Time { return notBefore.Add(time.Hour) }, KeyPackageLifetime: notAfter.Sub(notBefore) - time.Hour,
		MaxLeafLifetime: -1}
	b, err := mls.NewKeyPackage(cfg, c, sig, &mls.KeyPackageOptions{LastResort: lastResort})
	must(t, err)
	return b.KeyPackage.Bytes()
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func appMsg(gid []byte, epoch uint64, body string) []byte {
	return fakemsg.PrivateMessage(gid, epoch, fakemsg.ContentApplication, randBytes(16), []byte(body))
}

func commitMsg(gid []byte, epoch uint64, tag string) []byte {
	return fakemsg.PrivateMessage(gid, epoch, fakemsg.ContentCommit, randBytes(16), []byte(tag))
}

var ctx = context.Background()

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func gidOf(s string) []byte { return []byte(fmt.Sprintf("group-%s", s)) }
