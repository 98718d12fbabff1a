// Package server is mlsd, the mlskit delivery service (RFC 9750, Section
// 5): a KeyPackage directory, one ordered hash-chained log per group with
// exactly one commit winning each epoch, delivery by stream and by fetch
// with acknowledgement, GroupInfo publication, client authentication by
// proof of possession of the MLS signature key, abuse limits and metrics.
//
// # What the server sees
//
// Only the MLSMessage header: group id, epoch, content type and wire format,
// plus sizes, senders and recipients (RFC 9750, Section 8.4.3.2). Bodies are
// stored and forwarded as opaque bytes; they never reach a log line or a
// metric.
//
// # Ordering
//
// See ds/store: every accepted record gets the next gapless sequence number
// and a chain hash; a commit bundle (commit, Welcomes, GroupInfo) is
// accepted whole only for the group's current epoch, and a loser is told the
// current epoch and the winning commit's sequence number.
package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/mlskit/mlskit/as"
	v1 "github.com/mlskit/mlskit/ds/api/mlsdv1"
	"github.com/mlskit/mlskit/ds/api/mlsdv1/mlsdv1connect"
	"github.com/mlskit/mlskit/ds/dsproto"
	"github.com/mlskit/mlskit/ds/store"
)

// Config configures a Server. Zero values take the defaults noted.
type Config struct {
	Store     store.Store
	Validator as.Validator // default as.BasicValidator{}
	Logger    *slog.Logger // default slog.Default()
	Now       func() time.Time

	MaxMessageSize        int           // bytes per MLS message; default 1 MiB
	MaxKeyPackageLifetime time.Duration // default 90 days (RFC 9750, Section 7)
	EpochWindow           uint64        // past epochs accepted for proposals and application messages; default 3
	SessionTTL            time.Duration // default 24h
	ChallengeTTL          time.Duration // default 2m
	AllowedSuites         []uint16      // default 1, 2, 3, 5, 7

	// Abuse limits: token buckets (rate per second, burst). A negative rate
	// disables the limit. See docs/mlsd.md, "Limits", for the flags.
	ClientRate, ClientBurst float64 // every authenticated request per client; default 200/s, 400
	GroupRate, GroupBurst   float64 // messages per group; default 2000/s, 4000
	ClaimRate, ClaimBurst   float64 // KeyPackages claimed per claimer; default 10/s, 50
	TargetRate, TargetBurst float64 // KeyPackages claimed per target client, all claimers; default 2/s, 20
	// PairRate, PairBurst: KeyPackages one claimer may take of one target
	// (RFC 9420, Section 16.8: no one claimer drains a target, nor uses up
	// the target's allowance for other inviters); default 1 per 10 minutes, 3.
	PairRate, PairBurst   float64
	LoginRate, LoginBurst float64 // challenges per client address (not address:port); default 20/s, 50

	// Quotas. Bytes of MLS messages (and GroupInfo, KeyPackages) an
	// account may send and a group may receive, per window (token buckets
	// in bytes), and bytes each may keep stored (records are not pruned).
	AccountByteRate, AccountByteBurst float64 // default 256 KiB/s, 32 MiB
	GroupByteRate, GroupByteBurst     float64 // default 1 MiB/s, 64 MiB
	MaxAccountStoredBytes             int64   // default 1 GiB
	MaxGroupStoredBytes               int64   // default 4 GiB
	MaxKeyPackagesPerClient           int     // stored KeyPackages per client; default 1000

	// Request limits, enforced before and while a request is read.
	MaxSmallRequest    int           // request bytes for calls without MLS messages (Login, Fetch, ...); default 64 KiB
	RequestReadTimeout time.Duration // a request body must arrive within this; default 10s
	ResponseTimeout    time.Duration // a unary answer must be taken within this after the body; default 30s
	MaxCallsPerAddr    int           // concurrent unary calls per client address; default 64
	MaxCalls           int           // concurrent unary calls in total; default 2048
	MaxStreamsPerAddr  int           // concurrent Subscribe streams per client address; default 1024
	MaxStreams         int           // concurrent Subscribe streams in total; default 20000
	MaxConnsPerAddr    int           // open TCP connections per client address (HTTPServer); default 256, negative: no cap
	// MaxInflightBytes bounds the memory request bodies hold at once, all
	// calls: a request reserves three times its size (read buffer and
	// decoded copy) before its body is read, from Content-Length or its
	// messages' length prefixes; default 32 MiB, room for one largest
	// commit bundle (8 MiB) beside smaller calls. Below three times a
	// method's largest request (24.2 MiB for SendCommit by default), its
	// largest requests are refused.
	MaxInflightBytes int64
	BudgetWait       time.Duration // how long a request waits for MaxInflightBytes to free up (first come, first served); default 2s
	CacheBytes       int64         // recent-records cache, bytes over all groups; default 32 MiB
	// FollowerCacheBytes bounds the PublicGroups kept for groups with
	// public handshakes (estimated from their ratchet trees); the least
	// recently used are evicted and rebuilt from the store on demand.
	// Default 64 MiB.
	FollowerCacheBytes int64

	QueueDepth  int           // records a subscriber may fall behind live traffic; default 10000
	SendTimeout time.Duration // a stream write blocked longer ends the stream; default 10s

	// Commit fairness: after StarvationThreshold consecutive stale commits
	// in a group, a member gets the next epoch to itself for PriorityHold.
	StarvationThreshold int           // default 3
	PriorityHold        time.Duration // default 2s
}

// DefaultConfig returns a Config with every limit at its default (and no
// Store): what a zero field means.
func DefaultConfig() Config {
	var c Config
	c.defaults()
	c.Validator, c.Logger, c.Now = nil, nil, nil
	return c
}

func (c *Config) defaults() {
	if c.Validator == nil {
		c.Validator = as.BasicValidator{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	defd := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	deff := func(p *float64, v float64) {
		if *p == 0 {
			*p = v
		}
	}
	def(&c.MaxMessageSize, 1<<20)
	defd(&c.MaxKeyPackageLifetime, 90*24*time.Hour)
	if c.EpochWindow == 0 {
		c.EpochWindow = 3
	}
	defd(&c.SessionTTL, 24*time.Hour)
	defd(&c.ChallengeTTL, 2*time.Minute)
	if c.AllowedSuites == nil {
		c.AllowedSuites = []uint16{1, 2, 3, 5, 7}
	}
	deff(&c.ClientRate, 200)
	deff(&c.ClientBurst, 400)
	deff(&c.GroupRate, 2000)
	deff(&c.GroupBurst, 4000)
	deff(&c.ClaimRate, 10)
	deff(&c.ClaimBurst, 50)
	deff(&c.TargetRate, 2)
	deff(&c.TargetBurst, 20)
	deff(&c.LoginRate, 20)
	deff(&c.LoginBurst, 50)
	deff(&c.PairRate, 1.0/600)
	deff(&c.PairBurst, 3)
	deff(&c.AccountByteRate, 256<<10)
	deff(&c.AccountByteBurst, 32<<20)
	deff(&c.GroupByteRate, 1<<20)
	deff(&c.GroupByteBurst, 64<<20)
	def64 := func(p *int64, v int64) {
		if *p == 0 {
			*p = v
		}
	}
	def64(&c.MaxAccountStoredBytes, 1<<30)
	def64(&c.MaxGroupStoredBytes, 4<<30)
	def(&c.MaxKeyPackagesPerClient, 1000)
	def(&c.MaxSmallRequest, 64<<10)
	defd(&c.RequestReadTimeout, 10*time.Second)
	defd(&c.ResponseTimeout, 30*time.Second)
	def(&c.MaxCallsPerAddr, 64)
	def(&c.MaxCalls, 2048)
	def(&c.MaxStreamsPerAddr, 1024)
	def(&c.MaxStreams, 20000)
	def(&c.MaxConnsPerAddr, 256)
	def64(&c.MaxInflightBytes, 32<<20)
	defd(&c.BudgetWait, 2*time.Second)
	def64(&c.CacheBytes, 32<<20)
	def64(&c.FollowerCacheBytes, 64<<20)
	def(&c.QueueDepth, 10000)
	defd(&c.SendTimeout, 10*time.Second)
	def(&c.StarvationThreshold, 3)
	defd(&c.PriorityHold, 2*time.Second)
}

// Server implements the mlsd API.
type Server struct {
	cfg     Config
	st      store.Store
	log     *slog.Logger
	metrics *metrics
	hub     *hub
	cache   *recordCache
	epochs  *epochCache
	pols    policies
	follows followers

	clientLim, groupLim *limiter // hot path: per node
	// Shared through the store when it can (PostgreSQL).
	claimLim, targetLim, pairLim, loginLim, accountBytes, groupBytes *rate
	shared                                                           store.SharedLimiter
	usage                                                            store.UsageCounter

	unary, streams *slots
	conns          *conns
	bodyBudget     *budget
	errWriter      *connect.ErrorWriter

	// storage health: the last time a store call failed unexpectedly
	storeFailMu sync.Mutex
	storeFail   time.Time

	overQuota sync.Map // account -> time.Time: refuse its writes unread until then

	stopping chan struct{} // closed by Drain: streams end
	stopOnce sync.Once

	sessions  sync.Map // string(token hash) -> store.Session
	nsessions atomic.Int64

	flightMu sync.Mutex
	flights  map[string]*flight
	encoded  encodedCache // fan-out: each record encoded once for all streams

	fairMu sync.Mutex
	losses map[string]int // group id + "\x00" + client -> consecutive stale commits

	cancel context.CancelFunc
	done   chan struct{}
}

var _ mlsdv1connect.DeliveryServiceHandler = (*Server)(nil)

// New starts a Server over cfg.Store. Close stops it; it does not close the
// store.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("mlsd: Config.Store is nil")
	}
	cfg.defaults()
	s := &Server{
		cfg: cfg, st: cfg.Store, log: cfg.Logger, metrics: newMetrics(),
		hub: newHub(), cache: newRecordCache(512, cfg.CacheBytes), epochs: newEpochCache(),
		clientLim:    newLimiter(cfg.ClientRate, cfg.ClientBurst),
		groupLim:     newLimiter(cfg.GroupRate, cfg.GroupBurst),
		claimLim:     newRate("claimer", cfg.ClaimRate, cfg.ClaimBurst),
		targetLim:    newRate("target", cfg.TargetRate, cfg.TargetBurst),
		pairLim:      newRate("pair", cfg.PairRate, cfg.PairBurst),
		loginLim:     newRate("login", cfg.LoginRate, cfg.LoginBurst),
		accountBytes: newRate("account_bytes", cfg.AccountByteRate, cfg.AccountByteBurst),
		groupBytes:   newRate("group_bytes", cfg.GroupByteRate, cfg.GroupByteBurst),
		unary:        newSlots(cfg.MaxCallsPerAddr, cfg.MaxCalls),
		streams:      newSlots(cfg.MaxStreamsPerAddr, cfg.MaxStreams),
		conns:        newConns(cfg.MaxConnsPerAddr),
		bodyBudget:   newBudget(cfg.MaxInflightBytes),
		errWriter:    connect.NewErrorWriter(),
		losses:       map[string]int{},
		flights:      map[string]*flight{},
		done:         make(chan struct{}),
		stopping:     make(chan struct{}),
	}
	s.follows.maxBytes = cfg.FollowerCacheBytes
	s.shared, _ = cfg.Store.(store.SharedLimiter)
	s.usage, _ = cfg.Store.(store.UsageCounter)
	s.metrics.gauge("mlsd_subscribers", "Open subscription streams.", func() float64 { return float64(s.hub.count()) })
	s.metrics.gauge("mlsd_connections", "Open TCP connections (HTTPServer).", func() float64 { return float64(s.conns.count()) })
	s.metrics.gauge("mlsd_calls_in_flight", "Unary calls being served.", func() float64 { return float64(s.unary.count()) })
	s.metrics.gauge("mlsd_request_bytes_in_flight", "Request bytes held in memory.", func() float64 { return float64(s.bodyBudget.inUse()) })
	s.metrics.gauge("mlsd_follower_cache_bytes", "Estimated bytes of the PublicGroups followed in memory.", func() float64 { _, n := s.follows.stats(); return float64(n) })
	s.metrics.gauge("mlsd_follower_cache_groups", "Groups whose PublicGroup is in memory.", func() float64 { n, _ := s.follows.stats(); return float64(n) })
	s.metrics.gauge("mlsd_cache_bytes", "Bytes in the recent-records cache.", func() float64 { return float64(s.cache.bytes()) })
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		defer close(s.done)
		if err := s.st.Watch(ctx, s.hub.notify); err != nil && ctx.Err() == nil {
			s.log.Error("store watch ended", "err", err)
		}
	}()
	return s, nil
}

// Drain ends every open stream (Unavailable: the client reconnects,
// elsewhere or later) and makes new ones end at once, so that an HTTP
// server's Shutdown returns as soon as the calls in progress are done.
// Register it with http.Server.RegisterOnShutdown.
func (s *Server) Drain() {
	s.stopOnce.Do(func() { close(s.stopping) })
}

// Close stops the server's background work and ends open streams.
func (s *Server) Close() error {
	s.Drain()
	s.cancel()
	<-s.done
	return nil
}

// Stopping is closed once Drain was called.
func (s *Server) Stopping() <-chan struct{} { return s.stopping }

type rcKey struct{}

// Handler returns the HTTP handler: the connect service (gRPC, gRPC-Web and
// Connect protocols) behind the resource limits, /metrics and /healthz.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	// One connect handler per size class: connect enforces its read limit
	// per message as it reads (an oversized gRPC message is refused from
	// its length prefix), and the guard enforces the same limit on bytes.
	for _, limit := range []int{s.requestLimit(""), s.requestLimit(mlsdv1connect.DeliveryServiceSendMessageProcedure),
		s.requestLimit(mlsdv1connect.DeliveryServiceSendCommitProcedure)} {
		_, h := mlsdv1connect.NewDeliveryServiceHandler(s,
			connect.WithInterceptors(&observer{s: s}, &quotaInterceptor{s: s}),
			// MLS ciphertexts do not compress, and compressing attacker-
			// influenced data beside secrets is a known side channel.
			connect.WithCompression("gzip", nil, nil),
			connect.WithReadMaxBytes(limit),
			connect.WithSendMaxBytes(8*s.cfg.MaxMessageSize+64<<10),
		)
		for _, p := range procedures {
			if s.requestLimit(p) == limit {
				mux.Handle(p, h)
			}
		}
	}
	mux.Handle("/metrics", s.metrics)
	mux.HandleFunc("/healthz", s.healthz)
	api := s.guard(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/"+mlsdv1connect.DeliveryServiceName+"/") {
			api.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

var procedures = []string{
	mlsdv1connect.DeliveryServiceGetChallengeProcedure, mlsdv1connect.DeliveryServiceLoginProcedure,
	mlsdv1connect.DeliveryServiceUploadKeyPackagesProcedure, mlsdv1connect.DeliveryServiceClaimKeyPackagesProcedure,
	mlsdv1connect.DeliveryServiceGetKeyPackageStockProcedure, mlsdv1connect.DeliveryServiceCreateGroupProcedure,
	mlsdv1connect.DeliveryServiceSendMessageProcedure, mlsdv1connect.DeliveryServiceSendCommitProcedure,
	mlsdv1connect.DeliveryServiceGetGroupInfoProcedure, mlsdv1connect.DeliveryServiceListGroupsProcedure,
	mlsdv1connect.DeliveryServiceFetchProcedure, mlsdv1connect.DeliveryServiceAckProcedure,
	mlsdv1connect.DeliveryServiceSubscribeProcedure,
}

// HTTPServer returns an http.Server for Handler with the connection-level
// limits: connections per client address, header and idle timeouts, header
// size, and for HTTP/2 (h2c) the
// streams per connection and keep-alive pings that find dead peers of
// long-lived streams.
func (s *Server) HTTPServer() *http.Server {
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	hs := &http.Server{
		Handler:           s.Handler(),
		Protocols:         &protos,
		ReadHeaderTimeout: s.cfg.RequestReadTimeout,
		IdleTimeout:       2 * time.Minute,
		ConnState:         s.connState,
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, &connInfo{})
		},
		MaxHeaderBytes: 64 << 10,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: 256,
			// Flow-control windows bound what a connection can make the
			// server buffer before a handler reads it, outside
			// MaxInflightBytes: a call waiting for the budget parks at
			// most its stream's window (64 KiB; with 256 KiB, 40 waiting
			// 8 MiB commits parked 10 MiB), a connection at most 512 KiB
			// (and maxWaitersPerConn keeps room in it for the calls
			// being read).
			MaxReceiveBufferPerConnection: connWindow,
			MaxReceiveBufferPerStream:     streamWindow,
			SendPingTimeout:               30 * time.Second,
			PingTimeout:                   15 * time.Second,
		},
	}
	hs.RegisterOnShutdown(s.Drain)
	return hs
}

// healthz answers 200 "ok" when the store answers and reads its tables, and
// no store call failed unexpectedly in the last 30 seconds; 503 otherwise.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	var err error
	if hc, ok := s.st.(store.HealthChecker); ok {
		err = hc.Check(ctx)
	}
	s.storeFailMu.Lock()
	recent := !s.storeFail.IsZero() && time.Since(s.storeFail) < 30*time.Second
	s.storeFailMu.Unlock()
	if err != nil || recent {
		if err != nil {
			s.log.Error("health check failed", "err", err)
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("storage failing\n"))
		return
	}
	w.Write([]byte("ok\n"))
}

// Metrics writes the Prometheus text exposition (also served at /metrics).
func (s *Server) Metrics() http.Handler { return s.metrics }

// observer counts and logs every RPC: method, code, duration and the
// authenticated client; never a body.
type observer struct{ s *Server }

func (o *observer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		start := time.Now()
		resp, err := next(ctx, req)
		o.done(req.Spec().Procedure, err, time.Since(start))
		return resp, err
	}
}

func (o *observer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (o *observer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		start := time.Now()
		err := next(ctx, conn)
		o.done(conn.Spec().Procedure, err, time.Since(start))
		return err
	}
}

func (o *observer) done(procedure string, err error, d time.Duration) {
	method := procedure[strings.LastIndexByte(procedure, '/')+1:]
	code := "ok"
	if err != nil {
		code = connect.CodeOf(err).String()
	}
	o.s.metrics.inc("mlsd_requests_total", "method", method, "code", code)
	if err != nil && connect.CodeOf(err) == connect.CodeInternal {
		o.s.log.Error("rpc failed", "method", method, "code", code, "err", err, "duration", d)
	} else if o.s.log.Enabled(context.Background(), slog.LevelDebug) {
		// Asked first: the arguments alone cost allocations on every RPC
		// at mlsd's default level, which drops the line.
		o.s.log.Debug("rpc", "method", method, "code", code, "duration", d)
	}
}

// Errors. Messages name the check that failed, never a secret or a body.

func invalid(format string, args ...any) error {
	return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf(format, args...))
}

func (s *Server) reject(reason string, err error) error {
	s.metrics.inc("mlsd_rejected_total", "reason", reason)
	return err
}

func withDetail(err *connect.Error, m proto.Message) error {
	if d, derr := connect.NewErrorDetail(m); derr == nil {
		err.AddDetail(d)
	}
	return err
}

// storeError maps store errors to API errors.
func (s *Server) storeError(err error, commit bool) error {
	var se *store.StaleEpochError
	var de *store.DuplicateError
	var fe *store.DeferredError
	switch {
	case errors.As(err, &se):
		code := connect.CodeFailedPrecondition
		var msg error
		switch {
		case se.Epoch > se.CurrentEpoch:
			msg = fmt.Errorf("future epoch: epoch %d not reached, group is at epoch %d", se.Epoch, se.CurrentEpoch)
		case commit:
			code = connect.CodeAborted
			msg = fmt.Errorf("stale: epoch %d was won by record %d, group is at epoch %d", se.Epoch, se.WinningSeq, se.CurrentEpoch)
		default:
			msg = fmt.Errorf("too old: epoch %d is outside the window of %d epochs before the group's epoch %d",
				se.Epoch, s.cfg.EpochWindow, se.CurrentEpoch)
		}
		return withDetail(connect.NewError(code, msg),
			&v1.StaleEpoch{CurrentEpoch: se.CurrentEpoch, WinningSeq: se.WinningSeq, WinningChainHash: se.WinningHash})
	case errors.As(err, &de):
		s.metrics.inc("mlsd_rejected_total", "reason", "replay")
		return withDetail(connect.NewError(connect.CodeAlreadyExists, fmt.Errorf("replay: already accepted as record %d", de.Seq)),
			&v1.Duplicate{Seq: de.Seq})
	case errors.As(err, &fe):
		return withDetail(connect.NewError(connect.CodeUnavailable, errors.New("commit deferred: a starved member has this epoch; retry")),
			&v1.Deferred{RetryAfterMs: max(1, time.Until(fe.Until).Milliseconds())})
	case errors.Is(err, store.ErrDuplicate):
		s.metrics.inc("mlsd_rejected_total", "reason", "replay")
		return connect.NewError(connect.CodeAlreadyExists, errors.New("replay: already accepted"))
	case errors.Is(err, store.ErrNotFound):
		return connect.NewError(connect.CodeNotFound, errors.New("no such group"))
	case errors.Is(err, store.ErrNotMember):
		return connect.NewError(connect.CodePermissionDenied, errors.New("not a member of the group"))
	case errors.Is(err, store.ErrExists):
		return connect.NewError(connect.CodeAlreadyExists, errors.New("group already exists"))
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, errors.New("canceled"))
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, errors.New("deadline exceeded"))
	}
	return s.internal("storage", err)
}

// internal logs an unexpected failure with a reference and answers the
// client with only that reference: driver errors name tables, queries and
// files, which are the operator's business, not the client's.
func (s *Server) internal(what string, err error) error {
	ref := make([]byte, 6)
	rand.Read(ref)
	id := base64.RawURLEncoding.EncodeToString(ref)
	if what == "storage" {
		s.storeFailMu.Lock()
		s.storeFail = time.Now()
		s.storeFailMu.Unlock()
	}
	s.metrics.inc("mlsd_internal_errors_total", "what", what)
	s.log.Error("internal error", "what", what, "ref", id, "err", err)
	return connect.NewError(connect.CodeInternal, fmt.Errorf("internal error (ref %s)", id))
}

// Authentication: GetChallenge, Login, and the bearer token on every other
// call.

func (s *Server) GetChallenge(ctx context.Context, req *connect.Request[v1.GetChallengeRequest]) (*connect.Response[v1.GetChallengeResponse], error) {
	// Keyed on the address without its port: each new connection must not
	// get a fresh bucket.
	if !s.take(ctx, s.loginLim, clientAddr(ctx, req.Peer().Addr), 1) {
		s.metrics.inc("mlsd_rate_limited_total", "limit", "login")
		return nil, connect.NewError(connect.CodeResourceExhausted, errors.New("rate limited: too many challenges from your address"+retryIn(s.loginLim, 1)))
	}
	c := make([]byte, 32)
	rand.Read(c)
	exp := s.cfg.Now().Add(s.cfg.ChallengeTTL)
	if err := s.st.PutChallenge(ctx, c, exp); err != nil {
		return nil, s.storeError(err, false)
	}
	return connect.NewResponse(&v1.GetChallengeResponse{Challenge: c, ExpiresUnix: exp.Unix()}), nil
}

func (s *Server) Login(ctx context.Context, req *connect.Request[v1.LoginRequest]) (*connect.Response[v1.LoginResponse], error) {
	m := req.Msg
	switch {
	case m.CipherSuite > 0xffff || !s.suiteAllowed(uint16(m.CipherSuite)):
		return nil, s.reject("malformed", invalid("login: cipher suite %d not allowed (allowed: %v)", m.CipherSuite, s.cfg.AllowedSuites))
	case len(m.Credential) > 64<<10:
		return nil, s.reject("malformed", invalid("login: credential of %d bytes, at most %d", len(m.Credential), 64<<10))
	case len(m.SignatureKey) > 1024:
		return nil, s.reject("malformed", invalid("login: signature key of %d bytes, at most 1024", len(m.SignatureKey)))
	case len(m.Signature) > 1024:
		return nil, s.reject("malformed", invalid("login: signature of %d bytes, at most 1024", len(m.Signature)))
	}
	suiteID := uint16(m.CipherSuite)
	// Single use: a replayed login finds its challenge gone.
	if err := s.st.ConsumeChallenge(ctx, m.Challenge, s.cfg.Now()); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, s.reject("unauthenticated", connect.NewError(connect.CodeUnauthenticated, errors.New("login: unknown, used or expired challenge")))
		}
		return nil, s.storeError(err, false)
	}
	if err := dsproto.VerifyAuth(suiteID, m.SignatureKey, m.Challenge, m.Credential, m.Signature); err != nil {
		return nil, s.reject("unauthenticated", connect.NewError(connect.CodeUnauthenticated, err))
	}
	id, err := s.cfg.Validator.Validate(ctx, m.Credential, suiteID, m.SignatureKey)
	if err != nil {
		return nil, s.reject("unauthenticated", connect.NewError(connect.CodeUnauthenticated, fmt.Errorf("login: credential: %w", err)))
	}
	if !id.Vouched {
		// Nothing vouches for a basic credential's key: pin the first.
		if err := s.st.BindClientKey(ctx, id.ClientID, m.SignatureKey); err != nil {
			if errors.Is(err, store.ErrKeyBound) {
				return nil, s.reject("unauthenticated", connect.NewError(connect.CodePermissionDenied, errors.New("login: identity is bound to another signature key")))
			}
			return nil, s.storeError(err, false)
		}
	}
	tok := make([]byte, 32)
	rand.Read(tok)
	token := base64.RawURLEncoding.EncodeToString(tok)
	sess := store.Session{ClientID: id.ClientID, SignatureKey: m.SignatureKey, Expires: s.cfg.Now().Add(s.cfg.SessionTTL)}
	if err := s.st.PutSession(ctx, tokenHash(token), sess); err != nil {
		return nil, s.storeError(err, false)
	}
	s.log.Info("login", "client", id.ClientID, "vouched", id.Vouched)
	return connect.NewResponse(&v1.LoginResponse{ClientId: id.ClientID, Token: token, ExpiresUnix: sess.Expires.Unix()}), nil
}

const maxCachedSessions = 100000

func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// auth resolves the bearer token and applies the per-client rate limit.
func (s *Server) auth(ctx context.Context, h http.Header) (store.Session, error) {
	sess, err := s.session(ctx, h)
	if err != nil {
		return sess, err
	}
	if !s.clientLim.allow(sess.ClientID, 1, s.cfg.Now()) {
		s.metrics.inc("mlsd_rate_limited_total", "limit", "client")
		return sess, connect.NewError(connect.CodeResourceExhausted, errors.New("rate limited: too many requests from this client"))
	}
	return sess, nil
}

// session resolves the bearer token.
func (s *Server) session(ctx context.Context, h http.Header) (store.Session, error) {
	v := h.Get("Authorization")
	token, ok := strings.CutPrefix(v, "Bearer ")
	if !ok || token == "" {
		return store.Session{}, s.reject("unauthenticated", connect.NewError(connect.CodeUnauthenticated, errors.New("missing bearer token")))
	}
	th := tokenHash(token)
	now := s.cfg.Now()
	var sess store.Session
	if c, ok := s.sessions.Load(string(th)); ok && now.Before(c.(store.Session).Expires) {
		sess = c.(store.Session)
	} else {
		var err error
		sess, err = s.st.Session(ctx, th, now)
		if errors.Is(err, store.ErrNotFound) {
			return sess, s.reject("unauthenticated", connect.NewError(connect.CodeUnauthenticated, errors.New("unknown or expired token")))
		}
		if err != nil {
			return sess, s.storeError(err, false)
		}
		if s.nsessions.Add(1) > maxCachedSessions {
			// Bounded: forget them all, they reload from the store.
			s.sessions.Clear()
			s.nsessions.Store(0)
		}
		s.sessions.Store(string(th), sess)
	}
	return sess, nil
}

func (s *Server) suiteAllowed(id uint16) bool {
	for _, a := range s.cfg.AllowedSuites {
		if a == id {
			return true
		}
	}
	return false
}
