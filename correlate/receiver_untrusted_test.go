package correlate

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A sender no agent vouches for gets the untrusted byte rate's burst, then 503s (counted)
// before its bodies are read; an agent's own requests are never held to it.
func TestUntrustedBodiesAreRateLimitedBeforeTheyAreRead(t *testing.T) {
	for _, vouched := range []bool{false, true} {
		r, stop := serveVouching(t, ReceiverOptions{HTTPAddr: "127.0.0.1:0"}, vouched)
		body := bytes.Repeat([]byte{' '}, 512<<10) // 512 KiB of JSON whitespace, then {}
		body = append(body, "{}"...)
		c := newClient()
		codes := map[int]int{}
		for range 10 {
			code, _, _, _ := do(t, c, r.HTTPAddr(), post{path: "/v1/logs", ct: ContentTypeJSON, body: bytes.NewReader(body)})
			codes[code]++
		}
		stop()
		rejected := r.Stats().Rejected[RejectUntrustedBusy]
		burst := untrustedBurstSeconds * DefaultUntrustedBytesPerSecond / len(body)
		switch {
		case vouched && (codes[http.StatusOK] != 10 || rejected != 0):
			t.Errorf("vouched sender: answers %v, %d untrusted_busy; want every post accepted", codes, rejected)
		case !vouched && (codes[http.StatusOK] < burst || codes[http.StatusOK] > burst+2 || codes[http.StatusServiceUnavailable] != int(rejected) || rejected < 5):
			// 2 MiB of burst takes three 512 KiB bodies; the refill at 256 KiB/s while the test
			// posts (under a second) adds one or two.
			t.Errorf("outsider: answers %v, %d untrusted_busy; want the burst's %d (+2 at most) accepted, the rest refused and counted",
				codes, rejected, burst)
		}
	}
}

// serveVouching serves a receiver with o's listen addresses whose Vouch vouches for the fake
// resolver's sender when vouched is set, and returns it with the function that stops it.
func serveVouching(t *testing.T, o ReceiverOptions, vouched bool) (*Receiver, func()) {
	t.Helper()
	o.Resolver, o.Deliver = &fakeResolver{}, (&collector{}).deliver
	o.Vouch = func(pid int, _ uint64) bool { return vouched && pid == fakePid }
	r, err := NewReceiver(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx) }()
	return r, func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Serve did not return")
		}
	}
}

func TestByteRate(t *testing.T) {
	b := newByteRate(100, 1000)
	now := time.Unix(0, 0)
	if !b.take(600, now) || b.take(600, now) {
		t.Fatal("600 then 600 from a bucket of 1000: want the first only")
	}
	if !b.take(400, now) {
		t.Fatal("the 400 left were not taken")
	}
	if b.take(-1, now.Add(5*time.Second)) {
		t.Fatal("a body of unknown size needs the bucket full; 500 were there")
	}
	if !b.take(-1, now.Add(15*time.Second)) || b.take(1, now.Add(15*time.Second)) {
		t.Fatal("a full bucket takes a body of unknown size, and is empty after it")
	}
}

// Over gRPC the size of a call is unknown before it is read, so an outsider's call needs the
// whole burst: the first is accepted, the next ones refused as Unavailable (counted); an
// agent's own calls are never held to the rate.
func TestUntrustedGRPCCallsAreRateLimited(t *testing.T) {
	for _, vouched := range []bool{false, true} {
		r, stop := serveVouching(t, ReceiverOptions{GRPCAddr: "127.0.0.1:0"}, vouched)
		logs := collogspb.NewLogsServiceClient(grpcConn(t, r.GRPCAddr()))
		answers := map[codes.Code]int{}
		for range 5 {
			_, err := logs.Export(context.Background(), &collogspb.ExportLogsServiceRequest{})
			answers[status.Code(err)]++
		}
		stop()
		rejected := r.Stats().Rejected[RejectUntrustedBusy]
		switch {
		case vouched && (answers[codes.OK] != 5 || rejected != 0):
			t.Errorf("vouched sender: answers %v, %d untrusted_busy; want every call accepted", answers, rejected)
		case !vouched && (answers[codes.OK] != 1 || answers[codes.Unavailable] != 4 || rejected != 4):
			t.Errorf("outsider: answers %v, %d untrusted_busy; want 1 accepted, 4 refused and counted", answers, rejected)
		}
	}
}
