package server_test

// Request bodies and connections (issue 16, finding 4): a request's whole
// size is reserved before its body is read, also when the body has no
// Content-Length; honest large requests get through when the budget
// allows; one address holds a bounded number of connections.

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/mlskit/mlskit/ds/api/mlsdv1"
	"github.com/mlskit/mlskit/ds/server"
)

// metricOr0 is metric, with 0 for a series not yet counted.
func metricOr0(t *testing.T, url, name string) float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	must(t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return 0
}

// streamedGRPC sends a gRPC call over h2c whose body has no Content-Length:
// a 5-byte prefix declaring declared bytes, then up to send bytes written as
// fast as the server takes them. It returns the gRPC status, the bytes the
// client managed to write before the answer, and how long the answer took.
func streamedGRPC(t *testing.T, url, procedure string, declared uint32, send int) (status string, written int64, took time.Duration) {
	t.Helper()
	pr, pw := io.Pipe()
	var wrote atomic.Int64
	go func() {
		var prefix [5]byte
		binary.BigEndian.PutUint32(prefix[1:], declared)
		if _, err := pw.Write(prefix[:]); err != nil {
			return
		}
		chunk := make([]byte, 16<<10)
		for sent := 0; sent < send; sent += len(chunk) {
			if _, err := pw.Write(chunk); err != nil {
				return
			}
			wrote.Add(int64(len(chunk)))
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", url+procedure, pr)
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("TE", "trailers")
	start := time.Now()
	resp, err := h2Client.Do(req)
	if err != nil {
		t.Fatalf("streamed call: %v", err)
	}
	written = wrote.Load()
	took = time.Since(start)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	pr.CloseWithError(io.ErrClosedPipe) // ends the writer
	status = resp.Header.Get("Grpc-Status") + resp.Trailer.Get("Grpc-Status")
	if m := resp.Header.Get("Grpc-Message") + resp.Trailer.Get("Grpc-Message"); m != "" {
		status += " " + m
	}
	return status, written, took
}

// An oversized gRPC request without Content-Length is refused from its
// length prefix, before its bytes are read; one within the method's limit
// but larger than the free budget is refused the same way.
func TestAdversaryStreamedOversize(t *testing.T) {
	e := newEnv(t, server.Config{MaxInflightBytes: 4 << 20, BudgetWait: 200 * time.Millisecond})
	alice, bob := e.login("alice"), e.login("bob")
	cases := []struct {
		name, procedure string
		declared        uint32
		says            string
	}{
		// Login takes 64 KiB; this declares 8 MiB and would send it.
		{"oversized login", "/mlsd.v1.DeliveryService/Login", 8 << 20, "request of 8388608 bytes is larger than the 65536 allowed for Login"},
		// SendCommit takes 8 MiB; 2 MiB needs 6 MiB of the 4 MiB budget.
		{"commit over the budget", "/mlsd.v1.DeliveryService/SendCommit", 2 << 20, "too many request bytes in flight"},
	}
	for _, c := range cases {
		read0 := metricOr0(t, e.url, "mlsd_request_bytes_total")
		status, written, took := streamedGRPC(t, e.url, c.procedure, c.declared, int(c.declared))
		read := metricOr0(t, e.url, "mlsd_request_bytes_total") - read0
		t.Logf("%s: %d bytes declared, answered %q after %v; the client wrote %d bytes, the server read %.0f",
			c.name, c.declared, status, took.Round(time.Millisecond), written, read)
		if !strings.HasPrefix(status, "8 ") || !strings.Contains(status, c.says) { // 8: resource_exhausted
			t.Errorf("%s: status %q, want resource_exhausted saying %q", c.name, status, c.says)
		}
		// The prefix only: nothing of the message was read.
		if read > 5 {
			t.Errorf("%s: the server read %.0f bytes of a refused body", c.name, read)
		}
		// Flow control (HTTPServer: 64 KiB per stream) bounds what the
		// client could push before the answer, unread.
		if written > 128<<10 {
			t.Errorf("%s: the client wrote %d bytes before the refusal", c.name, written)
		}
	}
	// A streamed request within the limit and the budget goes through
	// the same path: here a Login of junk, read whole and refused on its
	// content, not its size.
	status, _, _ := streamedGRPC(t, e.url, "/mlsd.v1.DeliveryService/Login", 1000, 1000)
	if strings.HasPrefix(status, "8 ") || status == "" {
		t.Errorf("a streamed 1000-byte login: %q", status)
	}
	if got := metric(t, e.url, "mlsd_request_bytes_in_flight"); got != 0 {
		t.Errorf("%v request bytes still reserved after the calls", got)
	}
	honestFlow(t, e, alice, bob)
}

// Large honest requests get through under load: each reserves its whole
// size, waits its turn (first come, first served) and is read to its end.
// With 32 KiB reserved at a time, concurrent large requests each held part
// of the budget and all timed out.
func TestLargeRequestsThroughBudget(t *testing.T) {
	// Sizes in units of the large message: 1000 KiB, or 250 KiB under the
	// race detector (which makes reading a byte many times slower).
	unit := 1000 << 10
	if raceEnabled {
		unit = 250 << 10
	}
	budget := int64(4*unit + unit/10) // one large message (3 units) at a time
	e := newEnv(t, server.Config{MaxInflightBytes: budget, BudgetWait: 30 * time.Second,
		AccountByteBurst: 1 << 30, GroupByteBurst: 1 << 30, CacheBytes: 4 << 20})
	const senders, each = 4, 3
	var ms []*member
	for i := 0; i < senders; i++ {
		m := e.login(fmt.Sprint("sender", i))
		must(t, m.CreateGroup(ctx, gidOf(m.name), nil))
		ms = append(ms, m)
	}
	// 12 concurrent large messages; the budget takes one at a time (each
	// counts three times its size). With 32 KiB reserved per read, all 12
	// held parts of the budget and waited for each other.
	var wg sync.WaitGroup
	var failed atomic.Int64
	start := time.Now()
	for _, m := range ms {
		for j := 0; j < each; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := m.Send(ctx, appMsg(gidOf(m.name), 0, string(randBytes(unit)))); err != nil {
					failed.Add(1)
					t.Errorf("%s: %v", m.name, err)
				}
			}()
		}
	}
	wg.Wait()
	t.Logf("%d concurrent %d KiB messages through a %d KiB budget in %v", senders*each, unit>>10, budget>>10, time.Since(start).Round(time.Millisecond))

	// A large request is not starved by a stream of small ones.
	stop := make(chan struct{})
	var small atomic.Int64
	for _, m := range ms[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := m.Send(ctx, appMsg(gidOf(m.name), 0, string(randBytes(unit*3/10)))); err != nil {
					t.Errorf("small sender %s: %v", m.name, err)
					return
				}
				small.Add(1)
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	start = time.Now()
	big := ms[0]
	// A large one counts 3 units of the 4.1, a small one 0.9: without
	// first come, first served, the small ones could keep it out.
	_, err := big.Commit(ctx, &v1.SendCommitRequest{Commit: commitMsg(gidOf(big.name), 0, string(randBytes(unit)))})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("large commit among small messages: %v", err)
	}
	t.Logf("a %d KiB commit got through in %v while %d messages of %d KiB flowed", unit>>10, time.Since(start).Round(time.Millisecond), small.Load(), unit*3/10>>10)
	if got := metric(t, e.url, "mlsd_request_bytes_in_flight"); got != 0 {
		t.Errorf("%v request bytes still reserved after the calls", got)
	}
	if n := metricOr0(t, e.url, `mlsd_rate_limited_total{limit="memory"}`); n != 0 {
		t.Errorf("%v requests refused for memory", n)
	}
}

// One address holds at most MaxConnsPerAddr connections (HTTPServer): past
// the cap a connection is closed before anything is read from it, and once
// connections close, new ones are accepted again.
func TestAdversaryConnectionCap(t *testing.T) {
	const limit = 8
	srv, err := server.New(server.Config{Store: newEnv(t, server.Config{}).st, MaxConnsPerAddr: limit, RequestReadTimeout: 5 * time.Second})
	must(t, err)
	t.Cleanup(func() { srv.Close() })
	hs := httptest.NewUnstartedServer(nil)
	hs.Config = srv.HTTPServer()
	hs.Start()
	t.Cleanup(hs.Close)
	addr := strings.TrimPrefix(hs.URL, "http://")

	var held []net.Conn
	for i := 0; i < limit; i++ {
		c, err := net.Dial("tcp", addr)
		must(t, err)
		held = append(held, c)
	}
	time.Sleep(100 * time.Millisecond) // the server has counted them
	const extra = 20
	closed := 0
	start := time.Now()
	for i := 0; i < extra; i++ {
		c, err := net.Dial("tcp", addr)
		must(t, err)
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == io.EOF || isReset(err) {
			closed++
		}
		c.Close()
	}
	t.Logf("%d connections held; %d of %d more closed by the server in %v", limit, closed, extra, time.Since(start).Round(time.Millisecond))
	if closed != extra {
		t.Fatalf("%d of %d connections past the cap were closed", closed, extra)
	}
	// The held connections still work.
	fmt.Fprintf(held[0], "GET /healthz HTTP/1.1\r\nHost: mlsd\r\n\r\n")
	held[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(held[0]).ReadString('\n')
	if err != nil || !strings.Contains(line, "200") {
		t.Fatalf("a held connection: %q %v", line, err)
	}
	for _, c := range held {
		c.Close()
	}
	time.Sleep(100 * time.Millisecond)
	// Room again: metrics and an honest login from the same address.
	if n := metric(t, hs.URL, `mlsd_rate_limited_total{limit="connections"}`); n != extra {
		t.Fatalf("%v connections counted as refused, want %d", n, extra)
	}
	m := childLogin(t, hs.URL, "alice")
	if _, err := m.ListGroups(ctx); err != nil {
		t.Fatal(err)
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}
