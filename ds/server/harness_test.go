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
	"github.com/mlskit/mlskit/ds/mlsmsg"
	"github.com/mlskit/mlskit/ds/server"
	"github.com/mlskit/mlskit/ds/store"
	"github.com/mlskit/mlskit/ds/store/sqlite"
	"github.com/mlskit/mlskit/internal/suite"
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
	cred   []byte
	name   string
}

const testSuite = 1

func signer(t testing.TB) suite.Signer {
	s, _ := suite.Lookup(testSuite)
	priv, _, err := s.GenerateSignatureKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sg, err := s.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return sg
}

func (e *env) login(name string) *member {
	e.t.Helper()
	sg := signer(e.t)
	m := &member{Client: client.New(e.url, nil), signer: sg, cred: mlsmsg.BasicCredential([]byte(name)), name: name}
	if err := m.Login(context.Background(), testSuite, sg, m.cred); err != nil {
		e.t.Fatalf("login %s: %v", name, err)
	}
	return m
}

func (m *member) keyPackage(t testing.TB, lastResort bool) []byte {
	t.Helper()
	now := time.Now()
	kp, err := mlsmsg.BuildKeyPackage(testSuite, m.signer, m.cred, mlsmsg.KeyPackageOptions{
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(7 * 24 * time.Hour), LastResort: lastResort,
		InitKey: randBytes(32)})
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func appMsg(gid []byte, epoch uint64, body string) []byte {
	return mlsmsg.PrivateMessage(gid, epoch, mlsmsg.ContentApplication, randBytes(16), []byte(body))
}

func commitMsg(gid []byte, epoch uint64, tag string) []byte {
	return mlsmsg.PrivateMessage(gid, epoch, mlsmsg.ContentCommit, randBytes(16), []byte(tag))
}

var ctx = context.Background()

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func gidOf(s string) []byte { return []byte(fmt.Sprintf("group-%s", s)) }
