package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"

	"github.com/mlskit/mlskit/as"
	v1 "github.com/mlskit/mlskit/ds/api/mlsdv1"
	"github.com/mlskit/mlskit/ds/store"
	"github.com/mlskit/mlskit/mls"
)

// MaxKeyPackagesPerUpload bounds one upload.
const MaxKeyPackagesPerUpload = 100

// UploadKeyPackages checks each KeyPackage against policy (RFC 9420,
// Section 10.1: signatures, suite, lifetime; RFC 9750, Section 7: bounded
// lifetime) and that its credential names the uploader, then stores it.
// Duplicates are refused. The request is all or nothing only per
// KeyPackage: the first failure stops it and is reported.
func (s *Server) UploadKeyPackages(ctx context.Context, req *connect.Request[v1.UploadKeyPackagesRequest]) (*connect.Response[v1.UploadKeyPackagesResponse], error) {
	sess, err := s.auth(ctx, req.Header())
	if err != nil {
		return nil, err
	}
	m := req.Msg
	n := len(m.KeyPackages)
	if m.LastResort != nil {
		n++
	}
	if n == 0 || len(m.KeyPackages) > MaxKeyPackagesPerUpload {
		return nil, s.reject("malformed", invalid("upload: between 1 and %d KeyPackages per request", MaxKeyPackagesPerUpload))
	}
	type item struct {
		data       []byte
		lastResort bool
	}
	items := make([]item, 0, n)
	for _, d := range m.KeyPackages {
		items = append(items, item{data: d})
	}
	if m.LastResort != nil {
		items = append(items, item{data: m.LastResort, lastResort: true})
	}
	if max := s.cfg.MaxKeyPackagesPerClient; max > 0 {
		stock, err := s.st.KeyPackageStock(ctx, sess.ClientID, s.cfg.Now())
		if err != nil {
			return nil, s.storeError(err, false)
		}
		have := 0
		for _, x := range stock {
			have += x.Count
		}
		if have+len(m.KeyPackages) > max {
			s.metrics.inc("mlsd_rate_limited_total", "limit", "keypackages_stored")
			return nil, connect.NewError(connect.CodeResourceExhausted, fmt.Errorf("quota: %d KeyPackages stored, at most %d per client", have, max))
		}
	}
	var refs [][]byte
	now := s.cfg.Now()
	for i, it := range items {
		rec, err := s.checkKeyPackage(ctx, sess, it.data, now)
		if err != nil {
			return nil, fmt.Errorf("KeyPackage %d: %w", i, err)
		}
		rec.LastResort = rec.LastResort || it.lastResort
		if err := s.st.PutKeyPackage(ctx, rec); err != nil {
			if errors.Is(err, store.ErrDuplicate) {
				return nil, s.reject("replay", connect.NewError(connect.CodeAlreadyExists, fmt.Errorf("KeyPackage %d: duplicate", i)))
			}
			return nil, s.storeError(err, false)
		}
		s.metrics.inc("mlsd_keypackages_uploaded_total")
		refs = append(refs, rec.Ref)
	}
	return connect.NewResponse(&v1.UploadKeyPackagesResponse{Refs: refs}), nil
}

func (s *Server) checkKeyPackage(ctx context.Context, sess store.Session, data []byte, now time.Time) (store.KeyPackage, error) {
	if len(data) > s.cfg.MaxMessageSize {
		return store.KeyPackage{}, s.reject("oversized", connect.NewError(connect.CodeResourceExhausted, errors.New("too large")))
	}
	// RFC 9420, Section 10.1: version, suite, leaf source, both
	// signatures, init_key (the library's one decoder and checks).
	kp, err := mls.ParseKeyPackage(data)
	if err != nil {
		return store.KeyPackage{}, s.reject("malformed", invalid("%v", err))
	}
	suite := uint16(kp.CipherSuite())
	if !s.suiteAllowed(suite) {
		return store.KeyPackage{}, s.reject("policy", invalid("cipher suite %d not allowed", suite))
	}
	// RFC 9750, Section 7: valid now, and for no longer than the policy.
	notBefore, notAfter := kp.Lifetime()
	if now.Before(notBefore) || now.After(notAfter) {
		return store.KeyPackage{}, s.reject("policy", invalid("KeyPackage lifetime %v to %v does not include now", notBefore.UTC(), notAfter.UTC()))
	}
	if max := s.cfg.MaxKeyPackageLifetime; max > 0 && notAfter.Sub(notBefore) > max {
		return store.KeyPackage{}, s.reject("policy", invalid("KeyPackage lifetime of %v is longer than %v", notAfter.Sub(notBefore), max))
	}
	signatureKey := kp.SignatureKey()
	id, err := s.cfg.Validator.Validate(ctx, kp.Credential().Bytes(), suite, signatureKey)
	if err != nil {
		if errors.Is(err, as.ErrUnsupportedCredential) || errors.Is(err, as.ErrInvalidCredential) ||
			errors.Is(err, as.ErrKeyMismatch) || errors.Is(err, as.ErrRevoked) {
			return store.KeyPackage{}, s.reject("policy", connect.NewError(connect.CodePermissionDenied, fmt.Errorf("credential: %w", err)))
		}
		return store.KeyPackage{}, s.internal("validator", err)
	}
	if id.ClientID != sess.ClientID {
		return store.KeyPackage{}, s.reject("policy", connect.NewError(connect.CodePermissionDenied, errors.New("credential names another client")))
	}
	if !id.Vouched && !bytes.Equal(signatureKey, sess.SignatureKey) {
		// A basic credential is only as good as the pinned key.
		return store.KeyPackage{}, s.reject("policy", connect.NewError(connect.CodePermissionDenied, errors.New("signature key differs from the logged-in key")))
	}
	return store.KeyPackage{Ref: kp.Ref(), Owner: sess.ClientID, Suite: suite, LastResort: kp.IsLastResort(),
		Data: data, NotAfter: notAfter}, nil
}

// ClaimKeyPackages hands out exactly one KeyPackage per named client for the
// suite, atomically in the store, so two mlsd nodes never hand out the same
// one. Claims are rate-limited (RFC 9420, Section 16.8) per claimer, per
// pair of claimer and target, and per target over all claimers, checked in
// that order and each only if the ones before allow: one claimer can take
// only its pair allowance of a target's KeyPackages, and its refused claims
// take nothing from the target's allowance, which other inviters share.
func (s *Server) ClaimKeyPackages(ctx context.Context, req *connect.Request[v1.ClaimKeyPackagesRequest]) (*connect.Response[v1.ClaimKeyPackagesResponse], error) {
	sess, err := s.auth(ctx, req.Header())
	if err != nil {
		return nil, err
	}
	m := req.Msg
	if m.CipherSuite > 0xffff || !s.suiteAllowed(uint16(m.CipherSuite)) {
		return nil, s.reject("malformed", invalid("claim: cipher suite %d not allowed (allowed: %v)", m.CipherSuite, s.cfg.AllowedSuites))
	}
	if len(m.ClientIds) == 0 || len(m.ClientIds) > 100 {
		return nil, s.reject("malformed", invalid("claim: between 1 and 100 clients, not %d", len(m.ClientIds)))
	}
	suiteID := uint16(m.CipherSuite)
	seen := map[string]bool{}
	for _, c := range m.ClientIds {
		if seen[c] || len(c) == 0 || len(c) > store.MaxClientIDLen {
			return nil, s.reject("malformed", invalid("claim: empty, too long or repeated client id"))
		}
		seen[c] = true
	}
	now := s.cfg.Now()
	if !s.take(ctx, s.claimLim, sess.ClientID, float64(len(m.ClientIds))) {
		s.metrics.inc("mlsd_rate_limited_total", "limit", "claimer")
		return nil, connect.NewError(connect.CodeResourceExhausted, errors.New("rate limited: KeyPackage claims by this client"+retryIn(s.claimLim, float64(len(m.ClientIds)))))
	}
	resp := &v1.ClaimKeyPackagesResponse{}
	// Decide every target before claiming any, so a refused request claims
	// nothing.
	lastResortOnly := map[string]bool{}
	for _, c := range m.ClientIds {
		if c == sess.ClientID {
			continue // one's own KeyPackages are one's own business
		}
		if !s.take(ctx, s.pairLim, sess.ClientID+"\x00"+c, 1) {
			// This claimer had its share of c's KeyPackages: it gets the
			// last resort, which is never used up (RFC 9420, Section
			// 16.8), and takes nothing from c's allowance for others.
			if _, ok := s.st.(store.LastResortClaimer); !ok {
				s.metrics.inc("mlsd_rate_limited_total", "limit", "pair")
				return nil, connect.NewError(connect.CodeResourceExhausted, fmt.Errorf("rate limited: this client claimed %q's KeyPackages %v times recently%s",
					c, s.cfg.PairBurst, retryIn(s.pairLim, 1)))
			}
			s.metrics.inc("mlsd_rate_limited_total", "limit", "pair")
			lastResortOnly[c] = true
			continue
		}
		if !s.take(ctx, s.targetLim, c, 1) {
			s.metrics.inc("mlsd_rate_limited_total", "limit", "target")
			return nil, connect.NewError(connect.CodeResourceExhausted, fmt.Errorf("rate limited: KeyPackage claims for %q by all clients%s", c, retryIn(s.targetLim, 1)))
		}
	}
	for _, c := range m.ClientIds {
		var kp store.KeyPackage
		var err error
		if lastResortOnly[c] {
			kp, err = s.st.(store.LastResortClaimer).ClaimLastResort(ctx, sess.ClientID, c, suiteID, now)
		} else {
			kp, err = s.st.ClaimKeyPackage(ctx, sess.ClientID, c, suiteID, now)
		}
		switch {
		case errors.Is(err, store.ErrNotFound):
			s.metrics.inc("mlsd_keypackages_claimed_total", "result", "missing")
			resp.Missing = append(resp.Missing, c)
			continue
		case err != nil:
			return nil, s.storeError(err, false)
		}
		result := "regular"
		if kp.LastResort {
			result = "last_resort"
		}
		s.metrics.inc("mlsd_keypackages_claimed_total", "result", result)
		resp.KeyPackages = append(resp.KeyPackages, &v1.ClaimedKeyPackage{ClientId: c, KeyPackage: kp.Data, Ref: kp.Ref, LastResort: kp.LastResort})
	}
	return connect.NewResponse(resp), nil
}

func (s *Server) GetKeyPackageStock(ctx context.Context, req *connect.Request[v1.GetKeyPackageStockRequest]) (*connect.Response[v1.GetKeyPackageStockResponse], error) {
	sess, err := s.auth(ctx, req.Header())
	if err != nil {
		return nil, err
	}
	st, err := s.st.KeyPackageStock(ctx, sess.ClientID, s.cfg.Now())
	if err != nil {
		return nil, s.storeError(err, false)
	}
	resp := &v1.GetKeyPackageStockResponse{}
	for _, x := range st {
		resp.Stock = append(resp.Stock, &v1.SuiteStock{CipherSuite: uint32(x.Suite), Count: uint32(x.Count),
			HasLastResort: x.HasLastResort, LastResortUsed: x.LastResortUsed})
	}
	return connect.NewResponse(resp), nil
}
