package server

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/sync/semaphore"

	v1 "github.com/mlskit/mlskit/ds/api/mlsdv1"
	"github.com/mlskit/mlskit/ds/api/mlsdv1/mlsdv1connect"
	"github.com/mlskit/mlskit/ds/store"
	"github.com/mlskit/mlskit/mls"
)

// Resource limits in front of the handlers (RFC 9750, Section 8: a delivery
// service must hold in the face of malicious clients). Everything here runs
// before a request body is read, so a refused request costs no more memory
// than its headers, and what is admitted is bounded while it is read:
//   - per method, the largest request body (enforced while reading, and
//     from Content-Length before reading);
//   - the time a request body may take to arrive (slowloris), and the time a
//     unary answer may take to be written;
//   - concurrent calls per client address and in total, streams apart;
//   - open connections per client address (HTTPServer);
//   - the memory request bodies hold at once, over all calls: a request's
//     whole size is reserved before any of it is read (budget).

// requestLimit is the largest request body for a procedure. Only calls that
// carry MLS messages get more than MaxSmallRequest.
func (s *Server) requestLimit(procedure string) int {
	small := s.cfg.MaxSmallRequest
	switch procedure {
	case mlsdv1connect.DeliveryServiceSendCommitProcedure:
		// A commit bundle: the commit, its Welcomes and a GroupInfo.
		return 8*s.cfg.MaxMessageSize + small
	case mlsdv1connect.DeliveryServiceSendMessageProcedure,
		mlsdv1connect.DeliveryServiceCreateGroupProcedure,
		mlsdv1connect.DeliveryServiceUploadKeyPackagesProcedure:
		return s.cfg.MaxMessageSize + small
	}
	return small
}

// addrKey is the client's address without its port: every connection from
// one host shares one bucket. IPv6 clients are grouped by their /64, which
// one subscriber usually holds whole.
func addrKey(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if v4 := ip.To4(); v4 != nil {
		return v4.String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// slots counts concurrent calls per address and in total.
type slots struct {
	perAddr, total int
	mu             sync.Mutex
	n              int
	byAddr         map[string]int
}

func newSlots(perAddr, total int) *slots {
	return &slots{perAddr: perAddr, total: total, byAddr: map[string]int{}}
}

// take reserves a slot for addr; the reason names the cap that refused it.
func (s *slots) take(addr string) (ok bool, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.total > 0 && s.n >= s.total {
		return false, "total"
	}
	if s.perAddr > 0 && s.byAddr[addr] >= s.perAddr {
		return false, "address"
	}
	s.n++
	s.byAddr[addr]++
	return true, ""
}

func (s *slots) release(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n--
	if s.byAddr[addr]--; s.byAddr[addr] <= 0 {
		delete(s.byAddr, addr)
	}
}

func (s *slots) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// conns counts open TCP connections per client address: each costs the
// server buffers (and, for HTTP/2, a receive window), so one address may
// hold only so many, whatever it does with them.
type conns struct {
	perAddr int
	mu      sync.Mutex
	byAddr  map[string]int
	open    map[net.Conn]string // the counted ones
}

func newConns(perAddr int) *conns {
	return &conns{perAddr: perAddr, byAddr: map[string]int{}, open: map[net.Conn]string{}}
}

// connState is the http.Server ConnState hook (HTTPServer installs it): a
// new connection past its address's cap is closed before anything is read
// from it.
func (s *Server) connState(c net.Conn, st http.ConnState) {
	cs := s.conns
	switch st {
	case http.StateNew:
		addr := addrKey(c.RemoteAddr().String())
		cs.mu.Lock()
		full := cs.perAddr > 0 && cs.byAddr[addr] >= cs.perAddr
		if !full {
			cs.byAddr[addr]++
			cs.open[c] = addr
		}
		cs.mu.Unlock()
		if full {
			s.metrics.inc("mlsd_rate_limited_total", "limit", "connections")
			c.Close()
		}
	case http.StateClosed, http.StateHijacked:
		cs.mu.Lock()
		if addr, ok := cs.open[c]; ok {
			delete(cs.open, c)
			if cs.byAddr[addr]--; cs.byAddr[addr] <= 0 {
				delete(cs.byAddr, addr)
			}
		}
		cs.mu.Unlock()
	}
}

func (cs *conns) count() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.open)
}

// budget is a semaphore over the memory that request bodies hold at once.
// A request reserves its whole size before its body is read (from
// Content-Length, or from each message's length prefix when the body is
// streamed), so a request admitted can be read to its end, and one refused
// has cost nothing. Waiters are served in arrival order: a large request is
// not starved by a stream of small ones.
//
// Each request byte counts memoryPerByte times: connect reads a message
// into a buffer that grows by doubling (up to twice the message while it
// is read), and decodes the protobuf message from it into a copy; both live
// until the call ends. Measured: the 64 MiB bound of TestResourceMemory
// holds with 3, not with 2.
type budget struct {
	max  int64 // in memory bytes
	sem  *semaphore.Weighted
	used atomic.Int64 // request bytes
}

const memoryPerByte = 3

func newBudget(max int64) *budget {
	if max <= 0 {
		return nil
	}
	return &budget{max: max, sem: semaphore.NewWeighted(max)}
}

// acquire reserves the memory for n request bytes, waiting until deadline
// for it. A request larger than the whole budget is refused at once.
func (b *budget) acquire(ctx context.Context, n int64, deadline time.Time) bool {
	if b == nil || n <= 0 {
		return true
	}
	m := n * memoryPerByte
	if m > b.max {
		return false
	}
	if !b.sem.TryAcquire(m) {
		// A waiting HTTP/2 call parks up to its stream's window of data,
		// which counts against its connection's window: enough waiters
		// on one connection would stall the calls on it that hold the
		// budget, and so everyone. Past maxWaitersPerConn, refuse at once.
		if ci, ok := ctx.Value(connKey{}).(*connInfo); ok {
			if ci.waiting.Add(1) > maxWaitersPerConn {
				ci.waiting.Add(-1)
				return false
			}
			defer ci.waiting.Add(-1)
		}
		ctx, cancel := context.WithDeadline(ctx, deadline)
		defer cancel()
		if b.sem.Acquire(ctx, m) != nil {
			return false
		}
	}
	b.used.Add(n)
	return true
}

// release returns the reservation of n request bytes. A request that held
// an eighth of the budget or more is collected before its memory is handed
// on: otherwise its garbage is still resident when the next large request
// is read, and the budget bounds live memory but not resident memory (with
// GOGC=100 the heap may grow to twice what is live before a collection).
// One collection per such request is small beside reading and storing it.
func (b *budget) release(n int64) {
	if b == nil || n <= 0 {
		return
	}
	m := n * memoryPerByte
	if m >= b.max/8 {
		runtime.GC()
	}
	b.used.Add(-n)
	b.sem.Release(m)
}

// inUse is the request bytes reserved.
func (b *budget) inUse() int64 {
	if b == nil {
		return 0
	}
	return b.used.Load()
}

// HTTP/2 flow-control windows (HTTPServer): what one stream, and one
// connection, may have sent that no handler has read yet.
const (
	streamWindow = 64 << 10
	connWindow   = 512 << 10
	// Calls of one connection that may wait for the budget at once: their
	// parked data leaves room in the connection's window for the calls
	// being read.
	maxWaitersPerConn = connWindow/streamWindow - 1
)

// connInfo is per connection (HTTPServer's ConnContext).
type connInfo struct {
	waiting atomic.Int32 // calls waiting for the budget
}

type connKey struct{}

// enveloped reports whether a request body is a sequence of length-prefixed
// messages (gRPC, gRPC-Web, Connect streaming), whose sizes are known from
// their 5-byte prefixes before the bytes arrive.
func enveloped(contentType string) bool {
	return strings.HasPrefix(contentType, "application/grpc") || strings.HasPrefix(contentType, "application/connect+")
}

// body wraps a request body: it enforces the method's size limit while
// reading, reserves each length-prefixed message's bytes in the shared
// budget (and the account's byte quota) before reading them when the body
// has no Content-Length, turns a missed read deadline into a clear error,
// and lifts the deadline once the body is complete (a stream's request is
// read before it starts).
type body struct {
	io.ReadCloser
	s         *Server
	ctx       context.Context
	rc        *http.ResponseController
	remaining int64 // bytes still allowed
	limit     int64
	held      int64 // budget bytes held until the call ends
	deadline  time.Time
	stream    bool
	done      bool
	header    http.Header // of the response, for Connection: close
	http1     bool
	account   string // of a write, for the byte quota
	paid      *prepaid
	method    string

	// Enveloped bodies of unknown length: the prefix of the message being
	// read and the bytes of it still to come.
	envelope bool
	prefix   [5]byte
	npre     int
	msgLeft  int64
}

// fail ends an HTTP/1.1 connection after the answer: the rest of a refused
// or stalled body is not worth reading.
func (b *body) fail(err error) error {
	if b.http1 {
		b.header.Set("Connection", "close")
	}
	return err
}

func (b *body) busy() error {
	b.s.metrics.inc("mlsd_rate_limited_total", "limit", "memory")
	return b.fail(connect.NewError(connect.CodeResourceExhausted, errors.New("server busy: too many request bytes in flight; retry")))
}

func (b *body) oversized() error {
	b.s.metrics.inc("mlsd_rejected_total", "reason", "oversized")
	return b.fail(&http.MaxBytesError{Limit: b.limit})
}

func (b *body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	if b.remaining <= 0 {
		// One byte more than the limit tells an oversized body from one
		// of exactly the limit.
		var one [1]byte
		if n, _ := b.ReadCloser.Read(one[:]); n > 0 {
			return 0, b.oversized()
		}
	}
	if b.account != "" && b.s.isOverQuota(b.account) {
		// Another write of this account used up its quota meanwhile.
		return 0, b.fail(b.s.overQuotaError())
	}
	want := min(int64(len(p)), max(b.remaining, 1))
	if b.envelope {
		if b.npre < len(b.prefix) {
			// Only the prefix: the message's size is reserved before
			// any of its bytes are read.
			want = min(want, int64(len(b.prefix)-b.npre))
		} else {
			want = min(want, b.msgLeft)
		}
	}
	n, err := b.ReadCloser.Read(p[:want])
	b.s.metrics.add("mlsd_request_bytes_total", uint64(n))
	b.remaining -= int64(n)
	if b.envelope && n > 0 {
		if b.npre < len(b.prefix) {
			b.npre += copy(b.prefix[b.npre:], p[:n])
			if b.npre == len(b.prefix) {
				if rerr := b.reserveMessage(int64(binary.BigEndian.Uint32(b.prefix[1:]))); rerr != nil {
					return 0, rerr
				}
			}
		} else if b.msgLeft -= int64(n); b.msgLeft == 0 {
			b.npre = 0 // the next message's prefix
		}
	}
	if err == io.EOF {
		b.done = true
		if b.stream {
			if b.rc != nil {
				b.rc.SetReadDeadline(time.Time{})
			}
			// A stream's request is decoded; its bytes need not be held
			// for the stream's life.
			b.s.bodyBudget.release(b.held)
			b.held = 0
		}
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		b.s.metrics.inc("mlsd_rejected_total", "reason", "slow_request")
		return n, b.fail(connect.NewError(connect.CodeDeadlineExceeded,
			fmt.Errorf("request body not received within %v", b.s.cfg.RequestReadTimeout)))
	}
	return n, err
}

// reserveMessage admits the next length-prefixed message of size bytes of
// a body without Content-Length, before any of its bytes are read.
func (b *body) reserveMessage(size int64) error {
	if size > b.limit {
		b.s.metrics.inc("mlsd_rejected_total", "reason", "oversized")
		return b.fail(connect.NewError(connect.CodeResourceExhausted, fmt.Errorf("request of %d bytes is larger than the %d allowed for %s",
			size, b.limit, b.method)))
	}
	wait := time.Now().Add(b.s.cfg.BudgetWait)
	if b.deadline.Before(wait) {
		wait = b.deadline
	}
	if !b.s.bodyBudget.acquire(b.ctx, size, wait) {
		return b.busy()
	}
	b.held += size
	if b.paid != nil && b.account != "" {
		if err := b.s.prepay(b.ctx, b.account, size, b.paid); err != nil {
			return b.fail(err)
		}
	}
	b.msgLeft = size
	if size == 0 {
		b.npre = 0
	}
	return nil
}

// prepaid records that a write's account bytes were taken from its quota
// before its body was read (from its declared size), so that the quota
// interceptor does not take them again.
type prepaid struct{ done bool }

type prepaidKey struct{}

// prepay takes n bytes from account's byte quota before a body is read:
// a flood past the quota is refused without reading it.
func (s *Server) prepay(ctx context.Context, account string, n int64, p *prepaid) error {
	if !s.take(ctx, s.accountBytes, account, float64(n)) {
		s.overQuota.Store(account, time.Now().Add(overQuotaHold))
		s.metrics.inc("mlsd_rate_limited_total", "limit", "account_bytes")
		return s.accountQuotaError(n)
	}
	p.done = true
	return nil
}

// guard applies the resource limits to every API call before its handler.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		procedure := r.URL.Path
		stream := procedure == mlsdv1connect.DeliveryServiceSubscribeProcedure
		addr := addrKey(r.RemoteAddr)
		refuse := func(code connect.Code, limit string, err error) {
			s.metrics.inc("mlsd_rate_limited_total", "limit", limit)
			if r.ProtoMajor == 1 {
				// Do not read the refused body to reuse the connection.
				w.Header().Set("Connection", "close")
			}
			if s.errWriter.IsSupported(r) {
				s.errWriter.Write(w, r, connect.NewError(code, err))
				return
			}
			http.Error(w, err.Error(), http.StatusTooManyRequests)
		}
		sl := s.unary
		if stream {
			sl = s.streams
		}
		if ok, which := sl.take(addr); !ok {
			kind := "calls"
			if stream {
				kind = "streams"
			}
			if which == "total" {
				refuse(connect.CodeResourceExhausted, "concurrency", fmt.Errorf("server busy: too many concurrent %s; retry", kind))
			} else {
				refuse(connect.CodeResourceExhausted, "concurrency", fmt.Errorf("too many concurrent %s from your address", kind))
			}
			return
		}
		defer sl.release(addr)

		account, over := s.overQuotaAccount(r)
		if over {
			s.metrics.inc("mlsd_rate_limited_total", "limit", "account_bytes")
			if r.ProtoMajor == 1 {
				w.Header().Set("Connection", "close")
			}
			s.errWriter.Write(w, r, s.overQuotaError())
			return
		}
		limit := int64(s.requestLimit(procedure))
		method := procedure[strings.LastIndexByte(procedure, '/')+1:]
		if r.ContentLength > limit+64 {
			s.metrics.inc("mlsd_rejected_total", "reason", "oversized")
			refuse(connect.CodeResourceExhausted, "size", fmt.Errorf("request of %d bytes is larger than the %d allowed for %s",
				r.ContentLength, limit, method))
			return
		}
		rc := http.NewResponseController(w)
		now := time.Now()
		deadline := now.Add(s.cfg.RequestReadTimeout)
		rc.SetReadDeadline(deadline)
		if !stream {
			// A unary answer that the client does not take within the
			// timeout frees its slot.
			rc.SetWriteDeadline(now.Add(s.cfg.RequestReadTimeout + s.cfg.ResponseTimeout))
		}
		// Envelope prefixes and framing fit in a small allowance.
		b := &body{ReadCloser: r.Body, s: s, ctx: r.Context(), rc: rc, remaining: limit + 64, limit: limit, deadline: deadline, stream: stream,
			header: w.Header(), http1: r.ProtoMajor == 1, account: account, paid: &prepaid{}, method: method}
		defer func() { s.bodyBudget.release(b.held) }()
		// Reserve the whole request before reading it: from its
		// Content-Length, or, for a body of unknown length, per
		// length-prefixed message as each prefix arrives (body.Read), or
		// else the method's whole limit.
		reserve := r.ContentLength
		switch {
		case reserve >= 0:
		case enveloped(r.Header.Get("Content-Type")):
			b.envelope = true
		default:
			reserve = limit + 64
		}
		if reserve > 0 {
			wait := now.Add(s.cfg.BudgetWait)
			if deadline.Before(wait) {
				wait = deadline
			}
			if !s.bodyBudget.acquire(r.Context(), reserve, wait) {
				refuse(connect.CodeResourceExhausted, "memory", errors.New("server busy: too many request bytes in flight; retry"))
				return
			}
			b.held = reserve
			if account != "" {
				if err := s.prepay(r.Context(), account, reserve, b.paid); err != nil {
					if r.ProtoMajor == 1 {
						w.Header().Set("Connection", "close")
					}
					s.errWriter.Write(w, r, err)
					return
				}
			}
		}
		r.Body = b
		ctx := context.WithValue(r.Context(), rcKey{}, rc)
		ctx = context.WithValue(ctx, addrCtxKey{}, addr)
		ctx = context.WithValue(ctx, prepaidKey{}, b.paid)
		if stream {
			// Drain ends streams: their handlers return when ctx ends.
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			defer cancel()
			go func() {
				select {
				case <-s.stopping:
					cancel()
				case <-ctx.Done():
				}
			}()
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

type addrCtxKey struct{}

// clientAddr is the caller's address key (see addrKey).
func clientAddr(ctx context.Context, peer string) string {
	if a, ok := ctx.Value(addrCtxKey{}).(string); ok {
		return a
	}
	return addrKey(peer)
}

// A rate is a token bucket, kept in this node's memory or, when the store
// can share it (PostgreSQL), in the store, so that every node draws on one
// bucket.
type rate struct {
	name          string
	perSec, burst float64
	local         *limiter

	leases  sync.Map // key -> *lease, from the shared bucket
	nleases atomic.Int64
}

// A lease is tokens this node took from a shared bucket ahead of need:
// under load a large bucket (an account's or a group's bytes) is drawn on
// by one database round trip per leaseCalls requests instead of one each,
// or, for a fast bucket, per leaseSlice of its rate (a group taking
// thousands of messages a second would otherwise send its senders to the
// database, one at a time under the lease's lock, every few milliseconds).
// A node holds at most min(burst/leaseShare, max(leaseCalls requests,
// leaseSlice of the rate)) of a bucket (plus less than one request's worth
// left from its last lease), for leaseFor; what it has not used by then is
// lost. Leased
// tokens left the shared bucket when taken, so the limit only errs strict:
// nodes together never take more than the bucket gives. Buckets too small
// to lease from (burst under leaseShare requests) are drawn on exactly.
type lease struct {
	mu     sync.Mutex
	tokens float64
	until  time.Time
	// exactUntil: the bucket had no lease's worth left; until then take
	// exactly what a request lacks (one round trip, not two).
	exactUntil time.Time
}

const (
	leaseShare = 16
	leaseCalls = 16
	leaseSlice = 20 * time.Millisecond
	leaseFor   = time.Second
	maxLeases  = 100_000 // keys with a lease; past it they start over
)

// takeShared takes n tokens from key's shared bucket of r, through this
// node's lease when the bucket is large enough to lease from.
func (s *Server) takeShared(ctx context.Context, r *rate, key string, n float64) (bool, error) {
	now := s.cfg.Now()
	bucket := r.name + "\x00" + key
	chunk := min(r.burst/leaseShare, max(leaseCalls*n, r.perSec*leaseSlice.Seconds()))
	if chunk <= n {
		return s.shared.TakeTokens(ctx, bucket, r.perSec, r.burst, n, now)
	}
	v, loaded := r.leases.LoadOrStore(key, &lease{})
	if !loaded && r.nleases.Add(1) > maxLeases {
		// Bounded: forget every lease (their tokens are lost, which
		// errs strict) and start over.
		r.leases.Clear()
		r.nleases.Store(0)
	}
	l := v.(*lease)
	l.mu.Lock()
	defer l.mu.Unlock()
	if !now.Before(l.until) {
		l.tokens = 0 // expired: lost
	}
	if l.tokens >= n {
		l.tokens -= n
		return true, nil
	}
	// The lease lacks need; take a new lease (kept with what is left of
	// the old one), or, while the bucket has no lease's worth, just need.
	need := n - l.tokens
	take := need
	if !now.Before(l.exactUntil) {
		take = max(chunk, need)
	}
	ok, err := s.shared.TakeTokens(ctx, bucket, r.perSec, r.burst, take, now)
	if err == nil && !ok && take > need {
		l.exactUntil = now.Add(leaseFor)
		take = need
		ok, err = s.shared.TakeTokens(ctx, bucket, r.perSec, r.burst, take, now)
	}
	if err != nil || !ok {
		return false, err
	}
	l.tokens += take - n
	if take > need {
		l.until = now.Add(leaseFor)
	}
	return true, nil
}

func newRate(name string, perSec, burst float64) *rate {
	return &rate{name: name, perSec: perSec, burst: burst, local: newLimiter(perSec, burst)}
}

// take takes n tokens from key's bucket of r.
func (s *Server) take(ctx context.Context, r *rate, key string, n float64) bool {
	if r.perSec <= 0 {
		return true
	}
	if n > r.burst {
		return false
	}
	if s.shared != nil {
		ok, err := s.takeShared(ctx, r, key, n)
		if err == nil {
			return ok
		}
		// The database is the shared arbiter; without it this node still
		// limits on its own.
		s.log.Warn("shared rate limit unavailable, limiting locally", "limit", r.name, "err", err)
	}
	return r.local.allow(key, n, s.cfg.Now())
}

// retryIn says how long until key's local view of r has n tokens, for error
// messages.
func retryIn(r *rate, n float64) string {
	if r.perSec <= 0 {
		return ""
	}
	secs := n / r.perSec
	if secs < 1 {
		return "; retry in a second"
	}
	return "; retry in " + strconv.Itoa(int(secs+0.5)) + "s"
}

// quota checks the byte quotas of an account and a group before a write of
// size bytes: the rate quotas (bytes per window) and the stored bytes.
// The account's bytes are taken before the body is read, from its declared
// size, when the guard could (paid); otherwise here.
func (s *Server) quota(ctx context.Context, account string, groupID []byte, size int, paid bool) error {
	n := float64(size)
	if !paid && !s.take(ctx, s.accountBytes, account, n) {
		// For a moment, refuse this account's writes before reading them.
		s.overQuota.Store(account, time.Now().Add(overQuotaHold))
		s.metrics.inc("mlsd_rate_limited_total", "limit", "account_bytes")
		return s.accountQuotaError(int64(size))
	}
	if groupID != nil && !s.take(ctx, s.groupBytes, string(groupID), n) {
		s.metrics.inc("mlsd_rate_limited_total", "limit", "group_bytes")
		return connect.NewError(connect.CodeResourceExhausted, fmt.Errorf("quota: the group received more than %s recently (refills at %s/s)%s",
			sizeString(s.cfg.GroupByteBurst), sizeString(s.cfg.GroupByteRate), retryIn(s.groupBytes, n)))
	}
	if s.usage == nil {
		return nil
	}
	if s.cfg.MaxAccountStoredBytes > 0 {
		used, err := s.usage.Usage(ctx, usageAccount(account))
		if err != nil {
			return s.storeError(err, false)
		}
		if used+int64(size) > s.cfg.MaxAccountStoredBytes {
			s.metrics.inc("mlsd_rate_limited_total", "limit", "account_stored")
			return connect.NewError(connect.CodeResourceExhausted, fmt.Errorf("quota: this account stores %s, the most allowed is %s",
				sizeString(float64(used)), sizeString(float64(s.cfg.MaxAccountStoredBytes))))
		}
	}
	if groupID != nil && s.cfg.MaxGroupStoredBytes > 0 {
		used, err := s.usage.Usage(ctx, usageGroup(groupID))
		if err != nil {
			return s.storeError(err, false)
		}
		if used+int64(size) > s.cfg.MaxGroupStoredBytes {
			s.metrics.inc("mlsd_rate_limited_total", "limit", "group_stored")
			return connect.NewError(connect.CodeResourceExhausted, fmt.Errorf("quota: the group stores %s, the most allowed is %s",
				sizeString(float64(used)), sizeString(float64(s.cfg.MaxGroupStoredBytes))))
		}
	}
	return nil
}

// overQuotaHold is how long an account whose byte quota refused a write
// has its next writes refused before their bodies are read: a flood then
// costs the server one body per hold, not one per request.
const overQuotaHold = time.Second

// writeProcedures store what their request carries (the byte quotas).
var writeProcedures = map[string]bool{
	mlsdv1connect.DeliveryServiceSendMessageProcedure:       true,
	mlsdv1connect.DeliveryServiceSendCommitProcedure:        true,
	mlsdv1connect.DeliveryServiceCreateGroupProcedure:       true,
	mlsdv1connect.DeliveryServiceUploadKeyPackagesProcedure: true,
}

// overQuotaAccount returns the account of a write request whose account was
// refused by its byte quota within overQuotaHold.
func (s *Server) overQuotaAccount(r *http.Request) (string, bool) {
	if !writeProcedures[r.URL.Path] {
		return "", false
	}
	sess, err := s.session(r.Context(), r.Header)
	if err != nil {
		return "", false
	}
	return sess.ClientID, s.isOverQuota(sess.ClientID)
}

func (s *Server) isOverQuota(account string) bool {
	v, ok := s.overQuota.Load(account)
	if !ok {
		return false
	}
	if time.Now().Before(v.(time.Time)) {
		return true
	}
	s.overQuota.Delete(account)
	return false
}

func (s *Server) accountQuotaError(n int64) error {
	return connect.NewError(connect.CodeResourceExhausted, fmt.Errorf("quota: this account sent more than %s recently (refills at %s/s)%s",
		sizeString(s.cfg.AccountByteBurst), sizeString(s.cfg.AccountByteRate), retryIn(s.accountBytes, float64(n))))
}

func (s *Server) overQuotaError() error {
	return connect.NewError(connect.CodeResourceExhausted, fmt.Errorf("quota: this account sent more than %s recently (refills at %s/s); retry in a second",
		sizeString(s.cfg.AccountByteBurst), sizeString(s.cfg.AccountByteRate)))
}

// stored counts bytes a write added to the account's and the group's stored
// total. The check before the write and this count are not one transaction:
// concurrent writes can overshoot a stored-bytes quota by what they carry.
func (s *Server) stored(ctx context.Context, account string, groupID []byte, n int64) {
	if s.usage == nil || n == 0 {
		return
	}
	if err := s.usage.AddUsage(ctx, usageAccount(account), n); err != nil {
		s.log.Warn("counting stored bytes", "err", err)
	}
	if groupID == nil {
		return
	}
	if err := s.usage.AddUsage(ctx, usageGroup(groupID), n); err != nil {
		s.log.Warn("counting stored bytes", "err", err)
	}
}

func usageAccount(c string) string { return "a:" + c }
func usageGroup(g []byte) string   { return "g:" + string(g) }
func sizeString(n float64) string {
	switch {
	case n >= 1<<30:
		return strconv.FormatFloat(n/(1<<30), 'f', -1, 64) + " GiB"
	case n >= 1<<20:
		return strconv.FormatFloat(n/(1<<20), 'f', -1, 64) + " MiB"
	case n >= 1<<10:
		return strconv.FormatFloat(n/(1<<10), 'f', -1, 64) + " KiB"
	}
	return strconv.FormatFloat(n, 'f', -1, 64) + " B"
}

// quotaInterceptor applies the byte quotas to the calls that store data,
// before their handler, and counts what they stored after it.
type quotaInterceptor struct{ s *Server }

// writeSize is what a request would store, and the group it is for.
func writeSize(msg any) (size int, groupID []byte, ok bool) {
	switch m := msg.(type) {
	case *v1.SendMessageRequest:
		if h, err := mls.InspectMessage(m.Message); err == nil {
			groupID = h.GroupID
		}
		return len(m.Message), groupID, true
	case *v1.SendCommitRequest:
		if h, err := mls.InspectMessage(m.Commit); err == nil {
			groupID = h.GroupID
		}
		size = len(m.Commit) + len(m.GroupInfo)
		for _, w := range m.Welcomes {
			size += len(w.GetWelcome())
		}
		return size, groupID, true
	case *v1.CreateGroupRequest:
		return len(m.GroupInfo), m.GroupId, true
	case *v1.UploadKeyPackagesRequest:
		size = len(m.LastResort)
		for _, kp := range m.KeyPackages {
			size += len(kp)
		}
		return size, nil, true
	}
	return 0, nil, false
}

func (q *quotaInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		// Sequence numbers are below 2^63 in every engine (store.MaxSeq):
		// a cursor beyond is refused the same way on all of them.
		switch m := req.Any().(type) {
		case *v1.FetchRequest:
			if m.AfterSeq != nil && *m.AfterSeq > store.MaxSeq {
				return nil, q.s.reject("malformed", invalid("fetch: after_seq %d is beyond any sequence number (at most 2^63-1)", *m.AfterSeq))
			}
		case *v1.AckRequest:
			if m.Seq > store.MaxSeq {
				return nil, q.s.reject("malformed", invalid("ack: seq %d is beyond any sequence number (at most 2^63-1)", m.Seq))
			}
		}
		size, groupID, ok := writeSize(req.Any())
		if !ok {
			return next(ctx, req)
		}
		sess, err := q.s.session(ctx, req.Header())
		if err != nil {
			return next(ctx, req) // the handler refuses it
		}
		if len(groupID) > store.MaxGroupIDLen {
			groupID = nil // the handler refuses it
		}
		paid, _ := ctx.Value(prepaidKey{}).(*prepaid)
		if err := q.s.quota(ctx, sess.ClientID, groupID, size, paid != nil && paid.done); err != nil {
			return nil, err
		}
		resp, err := next(ctx, req)
		if err == nil {
			q.s.stored(ctx, sess.ClientID, groupID, int64(size))
		}
		return resp, err
	}
}

func (q *quotaInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (q *quotaInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}
