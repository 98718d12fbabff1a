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
	"net/http"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/mlskit/mlskit/as"
	v1 "github.com/mlskit/mlskit/ds/api/mlsdv1"
	"github.com/mlskit/mlskit/ds/api/mlsdv1/mlsdv1connect"
	"github.com/mlskit/mlskit/ds/store"
)

// AuthLabel is the SignWithLabel label of a login proof (RFC 9420, Section
// 5.1.2; a label of mlsd's own, outside the IANA registry's MLS labels).
const AuthLabel = "mlsd auth"

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

	// Abuse limits: token buckets (rate per second, burst). A zero rate
	// disables the limit.
	ClientRate, ClientBurst float64 // every authenticated request per client; default 200/s, 400
	GroupRate, GroupBurst   float64 // messages per group; default 2000/s, 4000
	ClaimRate, ClaimBurst   float64 // KeyPackages claimed per claimer; default 10/s, 50
	TargetRate, TargetBurst float64 // KeyPackages claimed per target client; default 2/s, 20
	LoginRate, LoginBurst   float64 // challenges per remote address; default 20/s, 50

	QueueDepth  int           // records a subscriber may fall behind live traffic; default 10000
	SendTimeout time.Duration // a stream write blocked longer ends the stream; default 10s

	// Commit fairness: after StarvationThreshold consecutive stale commits
	// in a group, a member gets the next epoch to itself for PriorityHold.
	StarvationThreshold int           // default 3
	PriorityHold        time.Duration // default 2s
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

	clientLim, groupLim, claimLim, targetLim, loginLim *limiter

	sessions sync.Map // string(token hash) -> store.Session

	flightMu sync.Mutex
	flights  map[string]*flight

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
		hub: newHub(), cache: newRecordCache(512), epochs: newEpochCache(),
		clientLim: newLimiter(cfg.ClientRate, cfg.ClientBurst),
		groupLim:  newLimiter(cfg.GroupRate, cfg.GroupBurst),
		claimLim:  newLimiter(cfg.ClaimRate, cfg.ClaimBurst),
		targetLim: newLimiter(cfg.TargetRate, cfg.TargetBurst),
		loginLim:  newLimiter(cfg.LoginRate, cfg.LoginBurst),
		losses:    map[string]int{},
		flights:   map[string]*flight{},
		done:      make(chan struct{}),
	}
	s.metrics.gauge("mlsd_subscribers", "Open subscription streams.", func() float64 { return float64(s.hub.count()) })
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

// Close stops the server's background work. Open streams end when their
// HTTP server shuts down.
func (s *Server) Close() error {
	s.cancel()
	<-s.done
	return nil
}

type rcKey struct{}

// Handler returns the HTTP handler: the connect service (gRPC, gRPC-Web and
// Connect protocols), /metrics and /healthz.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	path, h := mlsdv1connect.NewDeliveryServiceHandler(s,
		connect.WithInterceptors(&observer{s: s}),
		// MLS ciphertexts do not compress, and compressing attacker-
		// influenced data beside secrets is a known side channel.
		connect.WithCompression("gzip", nil, nil),
		// The size cap: the largest request is a commit bundle; allow
		// several maximal messages and framing.
		connect.WithReadMaxBytes(8*s.cfg.MaxMessageSize+64<<10),
		connect.WithSendMaxBytes(8*s.cfg.MaxMessageSize+64<<10),
	)
	mux.Handle(path, h)
	mux.Handle("/metrics", s.metrics)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Streams need write deadlines to shed slow consumers.
		ctx := context.WithValue(r.Context(), rcKey{}, http.NewResponseController(w))
		mux.ServeHTTP(w, r.WithContext(ctx))
	})
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
	} else {
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
		if commit && se.Epoch < se.CurrentEpoch {
			code = connect.CodeAborted
		}
		return withDetail(connect.NewError(code, fmt.Errorf("stale: epoch %d not accepted, group is at epoch %d, epoch %d was won by record %d",
			se.Epoch, se.CurrentEpoch, se.Epoch, se.WinningSeq)),
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
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeCanceled, err)
	}
	return connect.NewError(connect.CodeInternal, fmt.Errorf("storage: %w", err))
}

// Authentication: GetChallenge, Login, and the bearer token on every other
// call.

func (s *Server) GetChallenge(ctx context.Context, req *connect.Request[v1.GetChallengeRequest]) (*connect.Response[v1.GetChallengeResponse], error) {
	if !s.loginLim.allow(req.Peer().Addr, 1, s.cfg.Now()) {
		s.metrics.inc("mlsd_rate_limited_total", "limit", "login")
		return nil, connect.NewError(connect.CodeResourceExhausted, errors.New("rate limited: too many challenges"))
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
	if len(m.Credential) > 64<<10 || len(m.SignatureKey) > 1024 || len(m.Signature) > 1024 || m.CipherSuite > 0xffff {
		return nil, s.reject("malformed", invalid("login: field too large"))
	}
	suiteID := uint16(m.CipherSuite)
	if !s.suiteAllowed(suiteID) {
		return nil, s.reject("malformed", invalid("login: cipher suite %d not allowed", suiteID))
	}
	// Single use: a replayed login finds its challenge gone.
	if err := s.st.ConsumeChallenge(ctx, m.Challenge, s.cfg.Now()); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, s.reject("unauthenticated", connect.NewError(connect.CodeUnauthenticated, errors.New("login: unknown, used or expired challenge")))
		}
		return nil, s.storeError(err, false)
	}
	if err := VerifyAuth(suiteID, m.SignatureKey, m.Challenge, m.Credential, m.Signature); err != nil {
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

func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// auth resolves the bearer token and applies the per-client rate limit.
func (s *Server) auth(ctx context.Context, h http.Header) (store.Session, error) {
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
		s.sessions.Store(string(th), sess)
	}
	if !s.clientLim.allow(sess.ClientID, 1, now) {
		s.metrics.inc("mlsd_rate_limited_total", "limit", "client")
		return sess, connect.NewError(connect.CodeResourceExhausted, errors.New("rate limited: client"))
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
