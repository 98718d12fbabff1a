// Package client is the Go client of mlsd, the mlskit delivery service. It
// speaks the Connect protocol (over HTTP/1.1, or HTTP/2 with TLS) by
// default, and gRPC when asked, logs in by proving
// possession of the MLS signature key, and checks the hash chain of every
// group log it reads, so a server that reorders, drops or forks records is
// caught.
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"connectrpc.com/connect"

	v1 "github.com/mlskit/mlskit/ds/api/mlsdv1"
	"github.com/mlskit/mlskit/ds/api/mlsdv1/mlsdv1connect"
	"github.com/mlskit/mlskit/ds/chain"
	"github.com/mlskit/mlskit/ds/dsproto"
	"github.com/mlskit/mlskit/internal/suite"
)

// Client is one authenticated mlsd client. It is safe for concurrent use
// once logged in.
type Client struct {
	api      mlsdv1connect.DeliveryServiceClient
	token    string
	ClientID string

	mu     sync.Mutex
	chains map[string]chainPos // group id -> last verified position
}

type chainPos struct {
	seq  uint64
	hash []byte
}

// HTTPClient returns the default HTTP client: HTTP/1.1 over plain TCP, and
// over TLS what the server offers (HTTP/2 first). With the Connect protocol,
// the default, it carries every call and stream. A connection per
// concurrent call costs less than HTTP/2's framing: on loopback a
// SendMessage took about half the CPU (client and server) of gRPC over h2c
// (docs/BENCHMARKS.md, "Session 19").
func HTTPClient() *http.Client {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	return newHTTPClient(&p)
}

// H2CClient returns an HTTP client that speaks HTTP/2 over TLS, and with
// prior knowledge over plain TCP (h2c), as gRPC without TLS needs: pass it
// to New with connect.WithGRPC(). All calls share one connection.
func H2CClient() *http.Client {
	// HTTP/2 only: with HTTP/1 enabled the transport would choose HTTP/1.1
	// for http:// URLs.
	var p http.Protocols
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(true)
	return newHTTPClient(&p)
}

func newHTTPClient(p *http.Protocols) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Protocols: p, DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		TLSClientConfig: &tls.Config{}, MaxIdleConnsPerHost: 64,
	}}
}

// New returns a client for the server at baseURL (for example
// "http://127.0.0.1:7420"). With no options it uses the Connect protocol
// with binary protobuf; opts replace that (connect.WithGRPC() with
// H2CClient() for gRPC).
func New(baseURL string, httpClient *http.Client, opts ...connect.ClientOption) *Client {
	if httpClient == nil {
		httpClient = HTTPClient()
	}
	return &Client{api: mlsdv1connect.NewDeliveryServiceClient(httpClient, baseURL, opts...), chains: map[string]chainPos{}}
}

func req[T any](c *Client, m *T) *connect.Request[T] {
	r := connect.NewRequest(m)
	if c.token != "" {
		r.Header().Set("Authorization", "Bearer "+c.token)
	}
	return r
}

// Login proves possession of signer's key, bound to credential (an encoded
// MLS Credential), and keeps the session token.
func (c *Client) Login(ctx context.Context, suiteID uint16, signer suite.Signer, credential []byte) error {
	ch, err := c.api.GetChallenge(ctx, connect.NewRequest(&v1.GetChallengeRequest{}))
	if err != nil {
		return err
	}
	sig, err := dsproto.SignAuth(suiteID, signer, ch.Msg.Challenge, credential)
	if err != nil {
		return err
	}
	resp, err := c.api.Login(ctx, connect.NewRequest(&v1.LoginRequest{
		Credential: credential, CipherSuite: uint32(suiteID), SignatureKey: signer.PublicKey(),
		Challenge: ch.Msg.Challenge, Signature: sig,
	}))
	if err != nil {
		return err
	}
	c.token, c.ClientID = resp.Msg.Token, resp.Msg.ClientId
	return nil
}

// SetToken uses an existing session token.
func (c *Client) SetToken(token string) { c.token = token }

// Token returns the session token.
func (c *Client) Token() string { return c.token }

// UploadKeyPackages uploads KeyPackage MLSMessages and an optional
// last-resort one; it returns their KeyPackageRefs.
func (c *Client) UploadKeyPackages(ctx context.Context, kps [][]byte, lastResort []byte) ([][]byte, error) {
	resp, err := c.api.UploadKeyPackages(ctx, req(c, &v1.UploadKeyPackagesRequest{KeyPackages: kps, LastResort: lastResort}))
	if err != nil {
		return nil, err
	}
	return resp.Msg.Refs, nil
}

// ClaimKeyPackages claims one KeyPackage of each client for the suite.
func (c *Client) ClaimKeyPackages(ctx context.Context, suiteID uint16, clientIDs ...string) (*v1.ClaimKeyPackagesResponse, error) {
	resp, err := c.api.ClaimKeyPackages(ctx, req(c, &v1.ClaimKeyPackagesRequest{ClientIds: clientIDs, CipherSuite: uint32(suiteID)}))
	if err != nil {
		return nil, err
	}
	return resp.Msg, nil
}

// KeyPackageStock reports this client's KeyPackage stock.
func (c *Client) KeyPackageStock(ctx context.Context) ([]*v1.SuiteStock, error) {
	resp, err := c.api.GetKeyPackageStock(ctx, req(c, &v1.GetKeyPackageStockRequest{}))
	if err != nil {
		return nil, err
	}
	return resp.Msg.Stock, nil
}

// CreateGroup registers a new group with this client as its only member.
func (c *Client) CreateGroup(ctx context.Context, groupID, groupInfo []byte) error {
	return c.CreateGroupWithPolicy(ctx, groupID, groupInfo, nil)
}

// CreateGroupWithPolicy registers a group with a policy (public handshakes,
// external joins), fixed for the group's life.
func (c *Client) CreateGroupWithPolicy(ctx context.Context, groupID, groupInfo []byte, policy *v1.GroupPolicy) error {
	resp, err := c.api.CreateGroup(ctx, req(c, &v1.CreateGroupRequest{GroupId: groupID, GroupInfo: groupInfo, Policy: policy}))
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.chains[string(groupID)] = chainPos{hash: resp.Msg.ChainHash}
	c.mu.Unlock()
	return nil
}

// Send sends a proposal or application message (an MLSMessage).
func (c *Client) Send(ctx context.Context, msg []byte) (*v1.SendMessageResponse, error) {
	resp, err := c.api.SendMessage(ctx, req(c, &v1.SendMessageRequest{Message: msg}))
	if err != nil {
		return nil, err
	}
	return resp.Msg, nil
}

// Commit sends a commit bundle.
func (c *Client) Commit(ctx context.Context, b *v1.SendCommitRequest) (*v1.SendCommitResponse, error) {
	resp, err := c.api.SendCommit(ctx, req(c, b))
	if err != nil {
		return nil, err
	}
	return resp.Msg, nil
}

// GroupInfo fetches the published GroupInfo, for an external join.
func (c *Client) GroupInfo(ctx context.Context, groupID []byte) (*v1.GetGroupInfoResponse, error) {
	resp, err := c.api.GetGroupInfo(ctx, req(c, &v1.GetGroupInfoRequest{GroupId: groupID}))
	if err != nil {
		return nil, err
	}
	return resp.Msg, nil
}

// ListGroups lists this client's groups with their heads and its cursors.
func (c *Client) ListGroups(ctx context.Context) ([]*v1.GroupStatus, error) {
	resp, err := c.api.ListGroups(ctx, req(c, &v1.ListGroupsRequest{}))
	if err != nil {
		return nil, err
	}
	return resp.Msg.Groups, nil
}

// Fetch reads records after a cursor (nil: after the acknowledged one).
// Records are not chain-checked here; Verify does that.
func (c *Client) Fetch(ctx context.Context, groupID []byte, after *uint64, limit uint32) (*v1.FetchResponse, error) {
	resp, err := c.api.Fetch(ctx, req(c, &v1.FetchRequest{GroupId: groupID, AfterSeq: after, Limit: limit}))
	if err != nil {
		return nil, err
	}
	return resp.Msg, nil
}

// Ack acknowledges every record up to seq.
func (c *Client) Ack(ctx context.Context, groupID []byte, seq uint64) error {
	_, err := c.api.Ack(ctx, req(c, &v1.AckRequest{GroupId: groupID, Seq: seq}))
	return err
}

// FetchAll reads as much of a group's log as the client may read (from its
// join on: the server gives a member nothing from before it was added) and
// verifies its chain: from the genesis hash for the creator, else from the
// first record's predecessor hash, trusting that one (as Verify does).
func (c *Client) FetchAll(ctx context.Context, groupID []byte) ([]chain.Record, error) {
	var out []chain.Record
	after := uint64(0)
	for {
		resp, err := c.Fetch(ctx, groupID, &after, 1000)
		if err != nil {
			return nil, err
		}
		for _, r := range resp.Records {
			out = append(out, dsproto.RecordFromProto(r))
		}
		if len(resp.Records) == 0 || out[len(out)-1].Seq >= resp.HeadSeq {
			break
		}
		after = out[len(out)-1].Seq
	}
	seq, hash := uint64(0), chain.GenesisHash(groupID)
	if len(out) > 0 && out[0].Seq > 1 {
		seq, hash = out[0].Seq-1, out[0].PrevHash
	}
	if err := chain.VerifyChain(seq, hash, out); err != nil {
		return nil, err
	}
	return out, nil
}

// ErrChain reports a record that does not continue the verified chain.
var ErrChain = errors.New("client: log does not continue the verified chain")

// Verify checks that rec continues the chain this client has verified for
// its group (from the genesis hash, or from the first record it sees,
// trusting that one). Records already verified are reported as old.
func (c *Client) Verify(rec *v1.Record) (old bool, err error) {
	r := dsproto.RecordFromProto(rec)
	c.mu.Lock()
	defer c.mu.Unlock()
	pos, ok := c.chains[string(r.GroupID)]
	switch {
	case !ok && r.Seq == 1:
		pos = chainPos{hash: chain.GenesisHash(r.GroupID)}
	case !ok:
		pos = chainPos{seq: r.Seq - 1, hash: r.PrevHash}
	case r.Seq <= pos.seq:
		return true, nil
	}
	if err := chain.VerifyChain(pos.seq, pos.hash, []chain.Record{r}); err != nil {
		return false, fmt.Errorf("%w: %v", ErrChain, err)
	}
	c.chains[string(r.GroupID)] = chainPos{seq: r.Seq, hash: r.ChainHash}
	return false, nil
}

// Stream is a subscription.
type Stream struct {
	s *connect.ServerStreamForClient[v1.SubscribeResponse]
	c *Client
}

// Subscribe opens the delivery stream.
func (c *Client) Subscribe(ctx context.Context) (*Stream, error) {
	s, err := c.api.Subscribe(ctx, req(c, &v1.SubscribeRequest{}))
	if err != nil {
		return nil, err
	}
	return &Stream{s: s, c: c}, nil
}

// Next returns the next event; records are chain-checked first.
func (s *Stream) Next() (*v1.SubscribeResponse, error) {
	if !s.s.Receive() {
		if err := s.s.Err(); err != nil {
			return nil, err
		}
		return nil, errors.New("client: stream closed")
	}
	m := s.s.Msg()
	if r := m.GetRecord(); r != nil {
		if _, err := s.c.Verify(r); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Close ends the subscription.
func (s *Stream) Close() error { return s.s.Close() }

// StaleEpoch extracts the answer to a commit that lost its epoch.
func StaleEpoch(err error) (*v1.StaleEpoch, bool) { return detail[*v1.StaleEpoch](err) }

// Duplicate extracts the answer to a replayed message.
func Duplicate(err error) (*v1.Duplicate, bool) { return detail[*v1.Duplicate](err) }

// Deferred extracts the answer to a commit held back for a starved member.
func Deferred(err error) (*v1.Deferred, bool) { return detail[*v1.Deferred](err) }

func detail[T any](err error) (T, bool) {
	var zero T
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return zero, false
	}
	for _, d := range ce.Details() {
		v, err := d.Value()
		if err != nil {
			continue
		}
		if t, ok := v.(T); ok {
			return t, true
		}
	}
	return zero, false
}
