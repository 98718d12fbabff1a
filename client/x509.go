package client

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mlskit/mlskit/as"
	"github.com/mlskit/mlskit/mls"
)

// X.509 identities (RFC 9420, Section 5.3; RFC 9750, Section 4).
//
// An identity made with a CA certificate (InitX509) uses an X.509
// credential, leaf first, issued by the operator's authentication service
// ("mlsd ca issue") for the signature key Init generated, and it validates
// every credential its groups meet against that CA: the chain must verify
// to it, no certificate may be on the installed CRL, the leaf must bind the
// member's signature key, and the client id is the leaf's common name.
// Basic credentials are accepted only if the user allowed them at init.
//
// The trust settings live in trustFile in the state directory. Without that
// file the client is a Basic identity and the group layer's default
// (Basic credentials only) applies.

// trustFile holds the CA certificate, the latest CRL and the Basic policy.
const trustFile = "trust.json"

// ErrUntrusted: a credential did not pass the authentication service's
// checks (another CA, revoked, expired, wrong key, wrong name), or this
// client has no certificate installed yet.
var ErrUntrusted = errors.New("credential not trusted")

type trust struct {
	CACert     []byte `json:"ca_cert"`       // DER
	CRL        []byte `json:"crl,omitempty"` // DER, from "mlsd ca crl"
	AllowBasic bool   `json:"allow_basic,omitempty"`
}

func loadTrust(h home) (*trust, error) {
	var t trust
	found, err := loadJSON(context.Background(), h, trustFile, &t)
	if err != nil || !found {
		return nil, err
	}
	if len(t.CACert) == 0 {
		return nil, &UserError{Msg: fmt.Sprintf("%s is damaged: no CA certificate", h.where(trustFile)), Err: ErrDamaged}
	}
	return &t, nil
}

func saveTrust(h home, t *trust) error {
	return saveJSON(context.Background(), h, trustFile, t, true)
}

// trustValidator is the group layer's CredentialValidator for an X.509
// identity.
type trustValidator struct {
	as.GroupValidator
	ca *x509.Certificate
	// crlErr is set when the installed CRL no longer applies (out of
	// date): then no X.509 credential is accepted, since revocations
	// since cannot be known (fail closed).
	crlErr     error
	allowBasic bool
}

func newTrustValidator(t *trust, suite mls.CipherSuite) (*trustValidator, error) {
	ca, err := x509.ParseCertificate(t.CACert)
	if err != nil {
		return nil, fmt.Errorf("%s: CA certificate: %w", trustFile, err)
	}
	xv := as.NewX509Validator(ca)
	tv := &trustValidator{ca: ca, allowBasic: t.AllowBasic}
	if len(t.CRL) > 0 {
		if err := xv.SetCRL(t.CRL); err != nil {
			tv.crlErr = err
		}
	}
	var v as.Validator = xv
	if t.AllowBasic {
		v = as.Chain{xv, as.BasicValidator{}}
	}
	tv.GroupValidator = as.GroupValidator{Validator: v, Suite: uint16(suite)}
	return tv, nil
}

// Identify implements the checks; ValidateCredential (promoted) calls the
// embedded one, so override both.
func (tv *trustValidator) Identify(c mls.Credential, key []byte) (as.Identity, error) {
	if c.Type == mls.CredentialTypeBasic && !tv.allowBasic {
		return as.Identity{}, fmt.Errorf("%w: Basic credentials are not accepted (this identity was set up without --allow-basic)", as.ErrUnsupportedCredential)
	}
	if c.Type == mls.CredentialTypeX509 && tv.crlErr != nil {
		return as.Identity{}, fmt.Errorf("%w: %v: import a current one with \"mls cert crl\"", as.ErrInvalidCredential, tv.crlErr)
	}
	return tv.GroupValidator.Identify(c, key)
}

// ValidateCredential implements mls.CredentialValidator.
func (tv *trustValidator) ValidateCredential(c mls.Credential, key []byte) error {
	_, err := tv.Identify(c, key)
	return err
}

// validatorFor returns the CredentialValidator for a home: nil (Basic only,
// the mls default) when it has no trust settings.
func validatorFor(h home, suite mls.CipherSuite) (mls.CredentialValidator, error) {
	t, err := loadTrust(h)
	if err != nil || t == nil {
		return nil, err
	}
	return newTrustValidator(t, suite)
}

func (c *Client) trust() *trustValidator {
	nc, _ := c.cfg.CredentialValidator.(nameChecker)
	tv, _ := nc.next.(*trustValidator)
	return tv
}

// X509 reports whether this identity uses X.509 credentials, and whether
// its certificate is installed.
func (c *Client) X509() (x509Identity, installed bool) {
	return c.trust() != nil, len(c.id.X509Chain) > 0
}

// needCertificate fails when this identity waits for its certificate: it
// cannot log in or publish KeyPackages before "mls cert import".
func (c *Client) needCertificate() error {
	if c.trust() != nil && len(c.id.X509Chain) == 0 {
		return userErr(ErrUntrusted, "no certificate installed in %s yet: %s", c.home, c.IssueHint("CA_DIR"))
	}
	return nil
}

// SignaturePublicKey returns the public signature key (what the CA
// certifies).
func (c *Client) SignaturePublicKey() []byte { return c.sig.PublicKey() }

// IssueHint is the command the CA operator runs to certify this client's
// key, and what the user runs with its output.
func (c *Client) IssueHint(caDir string) string {
	if c.dir == "" {
		return fmt.Sprintf("ask the CA operator to run \"mlsd ca issue -dir %s -client %s -suite %d -key %x > %s.pem\", then install it with ImportCertificate",
			caDir, c.id.Name, c.id.Suite, c.sig.PublicKey(), c.id.Name)
	}
	return fmt.Sprintf("ask the CA operator to run \"mlsd ca issue -dir %s -client %s -suite %d -key %x > %s.pem\", then run \"mls cert import --cert %s.pem --dir %s\"",
		caDir, c.id.Name, c.id.Suite, c.sig.PublicKey(), c.id.Name, c.id.Name, c.dir)
}

// X509Options configures an X.509 identity.
type X509Options struct {
	// CACert is the authentication service's CA certificate (PEM or DER):
	// every credential is checked against it.
	CACert []byte
	// AllowBasic also accepts members with Basic credentials (nothing
	// vouches for their keys).
	AllowBasic bool
}

// InitX509 creates an identity like Init that will use an X.509 credential
// and validates every credential against the CA. Until its certificate is
// installed (ImportCertificate) it cannot use the server.
func InitX509(ctx context.Context, dir string, o InitOptions, x X509Options) (*Client, error) {
	ca, err := parseCerts(x.CACert)
	if err != nil || len(ca) != 1 {
		return nil, userErr(ErrUsage, "--ca-cert: want one CA certificate (PEM or DER)")
	}
	if _, err := x509.ParseCertificate(ca[0]); err != nil {
		return nil, userErr(ErrUsage, "--ca-cert: %v", err)
	}
	if dir == "" && o.Store != nil {
		return initHome(ctx, storeHome{o.Store}, "", o, &trust{CACert: ca[0], AllowBasic: x.AllowBasic})
	}
	return initHome(ctx, dirHome(dir), dir, o, &trust{CACert: ca[0], AllowBasic: x.AllowBasic})
}

// parseCerts reads PEM CERTIFICATE blocks, or one DER certificate.
func parseCerts(data []byte) ([][]byte, error) {
	var out [][]byte
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		out = append(out, b.Bytes)
	}
	if len(out) == 0 {
		out = [][]byte{data}
	}
	for _, der := range out {
		if _, err := x509.ParseCertificate(der); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// CertificateInfo describes an installed certificate.
type CertificateInfo struct {
	Subject  string
	Serial   string
	NotAfter time.Time
}

// ImportCertificate installs this client's certificate chain (PEM blocks
// leaf first, or one DER certificate) after checking that it verifies to
// the CA, is not revoked, binds this client's signature key and names this
// client (RFC 9420, Section 5.3.1). KeyPackages made afterwards carry it;
// groups joined before keep their credential.
func (c *Client) ImportCertificate(data []byte) (*CertificateInfo, error) {
	tv := c.trust()
	if tv == nil {
		return nil, userErr(ErrUsage, "%s is a Basic identity: X.509 needs an identity made with \"mls init --ca-cert\"", c.home)
	}
	chain, err := parseCerts(data)
	if err != nil {
		return nil, userErr(ErrUsage, "not a certificate: %v", err)
	}
	cred := mls.X509Credential(chain)
	id, err := tv.Identify(cred, c.sig.PublicKey())
	switch {
	case errors.Is(err, as.ErrKeyMismatch):
		return nil, userErr(ErrUntrusted, "the certificate is for another signature key, not this identity's (%x)", c.sig.PublicKey())
	case err != nil:
		return nil, userErr(ErrUntrusted, "the certificate is not valid under the CA certificate in %s: %v", c.home, err)
	case id.ClientID != c.id.Name:
		return nil, userErr(ErrUntrusted, "the certificate names %q, but this identity is %q", id.ClientID, c.id.Name)
	}
	next := *c.id
	next.X509Chain = chain
	if err := saveIdentity(c.home, &next); err != nil {
		return nil, fmt.Errorf("writing the identity: %w", err)
	}
	c.id = &next
	leaf, _ := x509.ParseCertificate(chain[0])
	return &CertificateInfo{Subject: leaf.Subject.CommonName, Serial: leaf.SerialNumber.String(), NotAfter: leaf.NotAfter}, nil
}

// ImportCRL installs a certificate revocation list from the CA ("mlsd ca
// crl"), after checking the CA signed it and it is current. Credentials
// with a revoked certificate are rejected from then on.
func (c *Client) ImportCRL(der []byte) (revoked int, err error) {
	t, err := loadTrust(c.home)
	if err != nil {
		return 0, err
	}
	if t == nil {
		return 0, userErr(ErrUsage, "%s is a Basic identity: it has no CA to take a CRL from", c.home)
	}
	if b, _ := pem.Decode(der); b != nil {
		der = b.Bytes
	}
	ca, err := x509.ParseCertificate(t.CACert)
	if err != nil {
		return 0, err
	}
	if err := as.NewX509Validator(ca).SetCRL(der); err != nil {
		return 0, userErr(ErrUntrusted, "%v", err)
	}
	crl, _ := x509.ParseRevocationList(der)
	t.CRL = der
	if err := saveTrust(c.home, t); err != nil {
		return 0, fmt.Errorf("writing %s: %w", trustFile, err)
	}
	tv, err := newTrustValidator(t, c.id.Suite)
	if err != nil {
		return 0, err
	}
	c.cfg.CredentialValidator = nameChecker{tv}
	return len(crl.RevokedCertificateEntries), nil
}

// checkInvitee validates a claimed KeyPackage's credential before it is
// committed, so that an untrusted user is refused with a clear message.
func (c *Client) checkInvitee(user string, kp *mls.KeyPackage) error {
	if err := CheckName(NameOf(kp.Credential())); err != nil {
		return userErr(ErrBadName, "%s cannot be invited: %v", user, err)
	}
	tv := c.trust()
	if tv == nil {
		return nil // the group layer's default applies
	}
	id, err := tv.Identify(kp.Credential(), kp.SignatureKey())
	if err != nil {
		reason := err.Error()
		reason = strings.TrimPrefix(reason, "as: ")
		return userErr(ErrUntrusted, "%s cannot be invited: their credential is not trusted: %s", user, reason)
	}
	if id.ClientID != user {
		return userErr(ErrUntrusted, "%s cannot be invited: their credential names %q", user, id.ClientID)
	}
	return nil
}
