package server_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	v1 "github.com/mlskit/mlskit/ds/api/mlsdv1"
	"github.com/mlskit/mlskit/ds/store"
)

// TestFanoutEncodesOnce: subscribers on every protocol and codec receive
// the same records (the binary ones as one shared encoding per record and
// body visibility, the JSON ones encoded per stream), a Welcome's body only
// where it is addressed, and the server encodes each record once, not once
// per stream.
func TestFanoutEncodesOnce(t *testing.T) {
	e := newEnv(t, unlimited)
	alice, bob := e.login("alice"), e.login("bob")
	gid := gidOf("fanout")
	must(t, alice.CreateGroup(ctx, gid, nil))
	_, err := invite(t, alice, gid, 0, bob)
	must(t, err)
	const msgs = 3
	for i := 0; i < msgs; i++ {
		_, err := alice.Send(ctx, appMsg(gid, 1, fmt.Sprint("hello ", i)))
		must(t, err)
	}
	protocols := map[string][]connect.ClientOption{
		"grpc":         {connect.WithGRPC()},
		"grpc-web":     {connect.WithGRPCWeb()},
		"connect":      {connect.WithReadMaxBytes(64 << 20)}, // any option: rawAPI defaults to gRPC
		"connect-json": {connect.WithProtoJSON()},
		"grpc-json":    {connect.WithGRPC(), connect.WithProtoJSON()},
	}
	type stream struct {
		who  *member
		name string
		want int
		got  []*v1.Record
	}
	var streams []*stream
	for name, opts := range protocols {
		// alice: commit, Welcome (not hers: no body), messages; bob: from his
		// Welcome on.
		streams = append(streams, &stream{alice, name, 2 + msgs, nil}, &stream{bob, name, 1 + msgs, nil})
		for _, st := range streams[len(streams)-2:] {
			api := rawAPI(e.url, opts...)
			s, err := api.Subscribe(ctx, authed(st.who, &v1.SubscribeRequest{}))
			must(t, err)
			defer s.Close()
			done := make(chan struct{})
			go func() {
				defer close(done)
				for len(st.got) < st.want && s.Receive() {
					if r := s.Msg().GetRecord(); r != nil {
						st.got = append(st.got, r)
					}
				}
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("%s %s: %d of %d records", st.who.name, name, len(st.got), st.want)
			}
			if len(st.got) != st.want {
				t.Fatalf("%s %s: %d of %d records: %v", st.who.name, name, len(st.got), st.want, s.Err())
			}
		}
	}
	ref := map[string]*stream{}
	for _, st := range streams {
		if r, ok := ref[st.who.name]; !ok {
			ref[st.who.name] = st
		} else {
			for i := range st.got {
				if !proto.Equal(st.got[i], r.got[i]) {
					t.Errorf("%s: record %d over %s differs from %s:\n%v\n%v", st.who.name, i, st.name, r.name, st.got[i], r.got[i])
				}
			}
		}
		for _, r := range st.got {
			if r.Kind == uint32(store.KindWelcome) && (len(r.Body) == 0) != (st.who == alice) {
				t.Errorf("%s over %s: Welcome body %d bytes", st.who.name, st.name, len(r.Body))
			}
			if r.Kind == uint32(store.KindApplication) && len(r.Body) == 0 {
				t.Errorf("%s over %s: message without body", st.who.name, st.name)
			}
		}
	}
	// Distinct encodings: commit, Welcome with and without body, messages.
	var b strings.Builder
	e.srv.Metrics().ServeHTTP(&recorder{&b}, nil)
	want := fmt.Sprint("mlsd_fanout_encodings_total ", 1+2+msgs)
	if !strings.Contains(b.String(), want+"\n") {
		t.Errorf("metrics lack %q:\n%s", want, grepLines(b.String(), "fanout"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
