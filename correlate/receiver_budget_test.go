package correlate

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// With the budget's pool taken (here by the test itself, as by slow posts of an attacker), a
// request is refused as busy, retryable, after a short wait, never read into memory; once the
// room is back, the same request is accepted. Small bodies have their own pool.
func TestBodyBudgetRefusesWhenFull(t *testing.T) {
	tr := startReceiver(t)
	cc := grpcConn(t, tr.GRPCAddr())
	ctx := context.Background()
	if err := tr.budget.large.Acquire(ctx, largePoolBytes); err != nil {
		t.Fatal(err)
	}
	c := newClient()
	post := func(body io.Reader, contentLength int64) *http.Response {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, "http://"+tr.HTTPAddr()+"/v1/logs", body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", ContentTypeProtobuf)
		req.ContentLength = contentLength
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	// Of unknown length (chunked), so it may be up to MaxBodyBytes: the large pool.
	start := time.Now()
	resp := post(io.MultiReader(bytes.NewReader(nil)), -1)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("chunked post with the large pool full: %d Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if waited := time.Since(start); waited < budgetWait {
		t.Errorf("refused after %s, before the %s wait", waited, budgetWait)
	}
	// A small declared body still goes through its own pool.
	if resp := post(bytes.NewReader(nil), 0); resp.StatusCode != http.StatusOK {
		t.Errorf("small post with the large pool full: %d, want 200", resp.StatusCode)
	}
	var out []byte
	in := []byte{}
	err := cc.Invoke(ctx, "/opentelemetry.proto.collector.logs.v1.LogsService/Export", &in, &out, grpc.ForceCodecV2(rawCodec{}))
	if status.Code(err) != codes.Unavailable {
		t.Errorf("gRPC export with the large pool full: %v, want Unavailable", err)
	}
	if got := tr.Stats().Rejected[RejectBusy]; got != 2 {
		t.Errorf("busy rejections %d, want 2", got)
	}

	tr.budget.large.Release(largePoolBytes)
	if resp := post(io.MultiReader(bytes.NewReader(nil)), -1); resp.StatusCode != http.StatusOK {
		t.Errorf("chunked post with room: %d, want 200", resp.StatusCode)
	}
	// Each call gives its room back at its end: many in a row never run out.
	for i := range 8 {
		if err := cc.Invoke(ctx, "/opentelemetry.proto.collector.logs.v1.LogsService/Export", &in, &out, grpc.ForceCodecV2(rawCodec{})); err != nil {
			t.Fatalf("gRPC export %d with room: %v", i, err)
		}
	}
	// grpc may report a call's end just after the client has its answer.
	deadline := time.Now().Add(5 * time.Second)
	for !tr.budget.large.TryAcquire(largePoolBytes) {
		if time.Now().After(deadline) {
			t.Fatal("the large pool was not given back after the calls ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
