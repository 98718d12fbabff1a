package interop_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/mlskit/mlskit/interop"
	"github.com/mlskit/mlskit/interop/internal/fakemls"
	"github.com/mlskit/mlskit/interop/internal/interoptest"
	pb "github.com/mlskit/mlskit/interop/mlsclient"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// invokeAll calls every RPC of the service with an empty request and
// returns the status code of each.
func invokeAll(t *testing.T, conn *grpc.ClientConn) map[string]codes.Code {
	out := map[string]codes.Code{}
	for _, m := range pb.MLSClient_ServiceDesc.Methods {
		err := conn.Invoke(ctx(t), "/"+pb.MLSClient_ServiceDesc.ServiceName+"/"+m.MethodName, &emptypb.Empty{}, &emptypb.Empty{})
		out[m.MethodName] = status.Code(err)
	}
	return out
}

// TestEveryRPCImplemented: no RPC falls through to the generated
// "method not implemented" stub.
func TestEveryRPCImplemented(t *testing.T) {
	_, conn := interoptest.Serve(t, fakemls.New(fakemls.Options{}))
	codesByRPC := invokeAll(t, conn)
	if len(codesByRPC) != 34 {
		t.Errorf("the service has %d RPCs, want 34", len(codesByRPC))
	}
	for rpc, c := range codesByRPC {
		if c == codes.Unimplemented {
			t.Errorf("%s: Unimplemented", rpc)
		}
	}
	// With no ids handed out, every id-taking RPC reports NotFound.
	for _, rpc := range []string{"GroupInfo", "StateAuth", "Protect", "Unprotect", "StorePSK", "JoinGroup",
		"HandleCommit", "HandlePendingCommit", "ReInitWelcome", "HandleReInitWelcome", "Free", "AddProposal"} {
		if codesByRPC[rpc] != codes.NotFound {
			t.Errorf("%s with id 0: %v, want NotFound", rpc, codesByRPC[rpc])
		}
	}
}

// TestMLSBackendOffers: the shipped backend names itself, offers the seven
// cipher suites of RFC 9420 (and not the provisional post-quantum code
// points), and answers the RPCs that make objects.
func TestMLSBackendOffers(t *testing.T) {
	_, conn := interoptest.Serve(t, interop.NewMLSBackend())
	c := pb.NewMLSClientClient(conn)
	n, err := c.Name(ctx(t), &pb.NameRequest{})
	if err != nil || n.GetName() != "mlskit" {
		t.Fatalf("Name: %q, %v", n.GetName(), err)
	}
	cs, err := c.SupportedCiphersuites(ctx(t), &pb.SupportedCiphersuitesRequest{})
	if err != nil || fmt.Sprint(cs.GetCiphersuites()) != "[1 2 3 4 5 6 7]" {
		t.Fatalf("SupportedCiphersuites: %v, %v", cs.GetCiphersuites(), err)
	}
	got := invokeAll(t, conn)
	for rpc, code := range got {
		if code == codes.Unimplemented || code == codes.Internal {
			t.Errorf("%s with an empty request: %v", rpc, code)
		}
	}
	if _, err := c.CreateGroup(ctx(t), &pb.CreateGroupRequest{GroupId: []byte("g"), CipherSuite: 1, Identity: []byte("a")}); err != nil {
		t.Fatalf("CreateGroup: %v", err)
	}
	if _, err := interop.NewMLSBackendWith(interop.MLSBackendOptions{Suites: []uint16{1, 0x0a0a}}); err == nil {
		t.Error("NewMLSBackendWith accepted a suite mlskit does not implement")
	}
}

// newGroup creates a group on the fake and returns its state id.
func newGroup(t *testing.T, c pb.MLSClientClient, who string) uint32 {
	t.Helper()
	r, err := c.CreateGroup(ctx(t), &pb.CreateGroupRequest{GroupId: []byte("group-" + who), CipherSuite: 1, Identity: []byte(who)})
	if err != nil {
		t.Fatal(err)
	}
	return r.GetStateId()
}

func TestIDs(t *testing.T) {
	srv, conn := interoptest.Serve(t, fakemls.New(fakemls.Options{}))
	c := pb.NewMLSClientClient(conn)

	alice := newGroup(t, c, "alice")
	kp, err := c.CreateKeyPackage(ctx(t), &pb.CreateKeyPackageRequest{CipherSuite: 1, Identity: []byte("bob")})
	if err != nil {
		t.Fatal(err)
	}
	bobTx := kp.GetTransactionId()
	sg, err := c.CreateExternalSigner(ctx(t), &pb.CreateExternalSignerRequest{CipherSuite: 1, Identity: []byte("ds")})
	if err != nil {
		t.Fatal(err)
	}
	if alice == 0 || bobTx == 0 || sg.GetSignerId() == 0 || alice == bobTx || bobTx == sg.GetSignerId() {
		t.Fatalf("ids %d %d %d: want distinct and non-zero", alice, bobTx, sg.GetSignerId())
	}
	if srv.Live() != 3 {
		t.Fatalf("Live = %d, want 3", srv.Live())
	}

	// StorePSK takes a state or a transaction, nothing else.
	for _, id := range []uint32{alice, bobTx} {
		if _, err := c.StorePSK(ctx(t), &pb.StorePSKRequest{StateOrTransactionId: id, PskId: []byte("p"), PskSecret: []byte("s")}); err != nil {
			t.Errorf("StorePSK(%d): %v", id, err)
		}
	}
	if _, err := c.StorePSK(ctx(t), &pb.StorePSKRequest{StateOrTransactionId: sg.GetSignerId()}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("StorePSK on a signer: %v, want InvalidArgument", err)
	}
	// An id of the wrong kind is an invalid argument.
	if _, err := c.Protect(ctx(t), &pb.ProtectRequest{StateId: bobTx}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Protect on a transaction: %v, want InvalidArgument", err)
	}
	if _, err := c.JoinGroup(ctx(t), &pb.JoinGroupRequest{TransactionId: alice}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("JoinGroup with a state id: %v, want InvalidArgument", err)
	}

	// A commit adding bob, then bob joins: the transaction is used up.
	cm, err := c.Commit(ctx(t), &pb.CommitRequest{StateId: alice, ByValue: []*pb.ProposalDescription{{ProposalType: []byte("add"), KeyPackage: kp.GetKeyPackage()}}})
	if err != nil {
		t.Fatal(err)
	}
	hp, err := c.HandlePendingCommit(ctx(t), &pb.HandlePendingCommitRequest{StateId: alice})
	if err != nil || hp.GetStateId() != alice {
		t.Fatalf("HandlePendingCommit: id %d, %v; want the same id %d", hp.GetStateId(), err, alice)
	}
	if _, err := c.HandlePendingCommit(ctx(t), &pb.HandlePendingCommitRequest{StateId: alice}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("HandlePendingCommit with nothing pending: %v, want FailedPrecondition", err)
	}
	// A failed join leaves the transaction usable.
	if _, err := c.JoinGroup(ctx(t), &pb.JoinGroupRequest{TransactionId: bobTx, Welcome: []byte("junk"), Identity: []byte("bob")}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("JoinGroup with a junk welcome: %v, want InvalidArgument", err)
	}
	j, err := c.JoinGroup(ctx(t), &pb.JoinGroupRequest{TransactionId: bobTx, Welcome: cm.GetWelcome(), Identity: []byte("bob")})
	if err != nil {
		t.Fatal(err)
	}
	if string(j.GetEpochAuthenticator()) != string(hp.GetEpochAuthenticator()) {
		t.Error("joiner and committer disagree")
	}
	if _, err := c.JoinGroup(ctx(t), &pb.JoinGroupRequest{TransactionId: bobTx, Welcome: cm.GetWelcome(), Identity: []byte("bob")}); status.Code(err) != codes.NotFound {
		t.Errorf("second JoinGroup on one transaction: %v, want NotFound", err)
	}

	// Free forgets any id once.
	for _, id := range []uint32{alice, j.GetStateId(), sg.GetSignerId()} {
		if _, err := c.Free(ctx(t), &pb.FreeRequest{StateId: id}); err != nil {
			t.Errorf("Free(%d): %v", id, err)
		}
		if _, err := c.Free(ctx(t), &pb.FreeRequest{StateId: id}); status.Code(err) != codes.NotFound {
			t.Errorf("second Free(%d): %v, want NotFound", id, err)
		}
	}
	if _, err := c.StateAuth(ctx(t), &pb.StateAuthRequest{StateId: alice}); status.Code(err) != codes.NotFound {
		t.Errorf("StateAuth after Free: %v, want NotFound", err)
	}
	if srv.Live() != 0 {
		t.Errorf("Live = %d after freeing everything", srv.Live())
	}
}

// TestArgumentRanges: values the protocol defines as 16-bit, and proposal
// descriptions, are checked before the backend sees them.
func TestArgumentRanges(t *testing.T) {
	_, conn := interoptest.Serve(t, fakemls.New(fakemls.Options{}))
	c := pb.NewMLSClientClient(conn)
	alice := newGroup(t, c, "alice")
	big := uint32(0x10000)
	for name, call := range map[string]func() error{
		"CreateGroup suite": func() error {
			_, err := c.CreateGroup(ctx(t), &pb.CreateGroupRequest{GroupId: []byte("g"), CipherSuite: big + 1, Identity: []byte("a")})
			return err
		},
		"CreateKeyPackage suite": func() error {
			_, err := c.CreateKeyPackage(ctx(t), &pb.CreateKeyPackageRequest{CipherSuite: big, Identity: []byte("a")})
			return err
		},
		"Export length": func() error {
			_, err := c.Export(ctx(t), &pb.ExportRequest{StateId: alice, KeyLength: big})
			return err
		},
		"GroupContextExtensions type": func() error {
			_, err := c.GroupContextExtensionsProposal(ctx(t), &pb.GroupContextExtensionsProposalRequest{StateId: alice, Extensions: []*pb.Extension{{ExtensionType: big}}})
			return err
		},
		"Commit unknown proposal type": func() error {
			_, err := c.Commit(ctx(t), &pb.CommitRequest{StateId: alice, ByValue: []*pb.ProposalDescription{{ProposalType: []byte("frob")}}})
			return err
		},
		"Commit reinit by value": func() error {
			_, err := c.Commit(ctx(t), &pb.CommitRequest{StateId: alice, ByValue: []*pb.ProposalDescription{{ProposalType: []byte("reinit")}}})
			return err
		},
		"ReInitProposal suite": func() error {
			_, err := c.ReInitProposal(ctx(t), &pb.ReInitProposalRequest{StateId: alice, CipherSuite: big})
			return err
		},
		"ExternalSignerProposal without description": func() error {
			_, err := c.ExternalSignerProposal(ctx(t), &pb.ExternalSignerProposalRequest{SignerId: alice})
			return err
		},
		"unsupported suite": func() error {
			_, err := c.CreateGroup(ctx(t), &pb.CreateGroupRequest{GroupId: []byte("g"), CipherSuite: 7, Identity: []byte("a")})
			return err
		},
	} {
		if err := call(); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
	}
	if r, err := c.Export(ctx(t), &pb.ExportRequest{StateId: alice, Label: "l", KeyLength: 0xFFFF}); err != nil || len(r.GetExportedSecret()) != 0xFFFF {
		t.Errorf("Export of 65535 bytes: %d bytes, %v", len(r.GetExportedSecret()), err)
	}
}

// scripted is a Backend whose CreateGroup fails or panics as told.
type scripted struct {
	*fakemls.Backend
	err   error
	panic func()
}

func (s *scripted) CreateGroup(ctx context.Context, r interop.CreateGroupRequest) (interop.State, error) {
	if s.panic != nil {
		s.panic()
	}
	return nil, s.err
}

type statusErr struct{}

func (statusErr) Error() string              { return "custom" }
func (statusErr) GRPCStatus() *status.Status { return status.New(codes.ResourceExhausted, "custom") }

func TestErrorCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want codes.Code
	}{
		{fmt.Errorf("x: %w", interop.ErrNotImplemented), codes.Unimplemented},
		{fmt.Errorf("x: %w", interop.ErrInvalidArgument), codes.InvalidArgument},
		{fmt.Errorf("x: %w", interop.ErrFailedPrecondition), codes.FailedPrecondition},
		{fmt.Errorf("x: %w", interop.ErrUnknownID), codes.NotFound},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{context.Canceled, codes.Canceled},
		{fmt.Errorf("wrapped: %w", statusErr{}), codes.ResourceExhausted},
		{errors.New("something else"), codes.Unknown},
	} {
		_, conn := interoptest.Serve(t, &scripted{Backend: fakemls.New(fakemls.Options{}), err: tc.err})
		_, err := pb.NewMLSClientClient(conn).CreateGroup(ctx(t), &pb.CreateGroupRequest{Identity: []byte("a")})
		if status.Code(err) != tc.want {
			t.Errorf("%v: got %v, want %v", tc.err, status.Code(err), tc.want)
		}
		if !strings.Contains(status.Convert(err).Message(), tc.err.Error()) && tc.want != codes.ResourceExhausted {
			t.Errorf("%v: message %q lost the error text", tc.err, status.Convert(err).Message())
		}
	}
}

// TestPanicRecovered: a panicking backend costs one call, is logged without
// request data, and the server goes on.
func TestPanicRecovered(t *testing.T) {
	var empty []byte
	for _, tc := range []struct {
		panic func()
		want  string // in the log
	}{
		{func() { panic("secret-identity") }, "string"},
		{func() { _ = empty[len(empty)+1] }, "index out of range"},
	} {
		var mu sync.Mutex
		var logged []string
		b := &scripted{Backend: fakemls.New(fakemls.Options{}), panic: tc.panic}
		srv := interop.NewServer(b, interop.WithLogf(func(f string, a ...any) {
			mu.Lock()
			logged = append(logged, fmt.Sprintf(f, a...))
			mu.Unlock()
		}))
		_, err := srv.CreateGroup(ctx(t), &pb.CreateGroupRequest{Identity: []byte("secret-identity")})
		if status.Code(err) != codes.Internal {
			t.Fatalf("panic: %v, want Internal", err)
		}
		if _, err := srv.Name(ctx(t), &pb.NameRequest{}); err != nil {
			t.Fatalf("after a panic: %v", err)
		}
		mu.Lock()
		if len(logged) != 1 || !strings.Contains(logged[0], "CreateGroup") || !strings.Contains(logged[0], tc.want) ||
			strings.Contains(logged[0], "secret") {
			t.Errorf("log %q: want the RPC name, %q, and no request data", logged, tc.want)
		}
		mu.Unlock()
	}
}

// TestConcurrentCalls hammers one state and many groups at once; run with
// -race. Calls on one state are serialized, so every message protected is
// distinct and every Free but one of a racing pair fails cleanly.
func TestConcurrentCalls(t *testing.T) {
	srv, conn := interoptest.Serve(t, fakemls.New(fakemls.Options{}))
	c := pb.NewMLSClientClient(conn)
	shared := newGroup(t, c, "shared")
	var wg sync.WaitGroup
	var mu sync.Mutex
	cts := map[string]bool{}
	errs := make(chan error, 100)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := c.Protect(context.Background(), &pb.ProtectRequest{StateId: shared, Plaintext: []byte("m")})
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			cts[string(r.GetCiphertext())] = true
			mu.Unlock()
			// A group per goroutine, freed twice at once: exactly one Free wins.
			g, err := c.CreateGroup(context.Background(), &pb.CreateGroupRequest{GroupId: fmt.Appendf(nil, "g%d", i), CipherSuite: 1, Identity: []byte("x")})
			if err != nil {
				errs <- err
				return
			}
			var inner sync.WaitGroup
			var ok, notFound int
			var imu sync.Mutex
			for range 2 {
				inner.Add(1)
				go func() {
					defer inner.Done()
					_, err := c.Free(context.Background(), &pb.FreeRequest{StateId: g.GetStateId()})
					imu.Lock()
					defer imu.Unlock()
					switch status.Code(err) {
					case codes.OK:
						ok++
					case codes.NotFound:
						notFound++
					}
				}()
			}
			inner.Wait()
			if ok != 1 || notFound != 1 {
				errs <- fmt.Errorf("racing Frees: %d succeeded, %d NotFound", ok, notFound)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(cts) != 16 {
		t.Errorf("%d distinct ciphertexts from 16 concurrent Protects", len(cts))
	}
	if srv.Live() != 1 {
		t.Errorf("Live = %d, want 1 (the shared group)", srv.Live())
	}
}
