package main

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
	"github.com/vigil-sensor/vigil/sensor/metrics"
)

// replaySource emits fixed events, as a source would, then waits to be stopped.
type replaySource struct{ events []*proto.Event }

func (s *replaySource) Name() string { return "replay" }
func (s *replaySource) Run(ctx context.Context, emit func(*proto.Event)) error {
	for _, e := range s.events {
		emit(e)
	}
	<-ctx.Done()
	return nil
}
func (s *replaySource) Lost() map[string]uint64 { return nil }
func (s *replaySource) Started() sensor.Started { return sensor.Started{} }
func (s *replaySource) Close() error            { return nil }

func canaryEvent(root int, agent, action string) *proto.Event {
	e := &proto.Event{Event: proto.EventMeta{Action: action}, Process: &proto.Process{Pid: root},
		Vigil: proto.Vigil{Root: &proto.Root{Pid: root}}, GenAI: &proto.GenAI{Agent: &proto.GenAIAgent{Name: agent}}}
	switch action {
	case proto.ActionOpen:
		e.File = &proto.File{Path: "/run/vigil/selfcheck/marker"}
	case proto.ActionConnect:
		e.Destination = &proto.Destination{IP: "127.0.0.1", Port: 4000}
	}
	return e
}

// The check consumes the canary tree's events only, and is healthy only with all three; a
// process merely named like the canary (another root) is written like any other.
func TestSelfCheckVerdict(t *testing.T) {
	const canary, impostor = 700, 800
	for _, tc := range []struct {
		name    string
		actions []string
		missing string
	}{
		{"all three", []string{proto.ActionExec, proto.ActionOpen, proto.ActionConnect}, ""},
		{"no open", []string{proto.ActionExec, proto.ActionConnect}, "open"},
		{"nothing", nil, "exec, open, connect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &replaySource{}
			for _, a := range tc.actions {
				src.events = append(src.events, canaryEvent(canary, selfCheckAgent, a))
			}
			src.events = append(src.events, canaryEvent(impostor, selfCheckAgent, proto.ActionOpen))
			c := newSelfCheck(src)
			if st := c.state(); st != metrics.SelfCheckPending {
				t.Errorf("state before the verdict = %d, want pending", st)
			}
			c.pid.Store(canary)
			c.marker, c.connect = "/run/vigil/selfcheck/marker", netip.MustParseAddrPort("127.0.0.1:4000")
			var written []*proto.Event
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- c.Run(ctx, func(e *proto.Event) { written = append(written, e) }) }()
			var log strings.Builder
			err := c.verdict(context.Background(), zerolog.New(&log), time.Now(), 300*time.Millisecond)
			cancel()
			<-done
			if tc.missing == "" && err != nil || tc.missing != "" && (err == nil || !strings.Contains(err.Error(), tc.missing+" did not arrive")) {
				t.Fatalf("verdict %v, want missing %q", err, tc.missing)
			}
			want := metrics.SelfCheckHealthy
			if tc.missing != "" {
				want = metrics.SelfCheckFailed
			}
			if st := c.state(); st != want {
				t.Errorf("state after the verdict = %d, want %d", st, want)
			}
			if len(written) != 1 || written[0].Vigil.Root.Pid != impostor {
				t.Fatalf("written %d events, want only the impostor's", len(written))
			}
		})
	}
}
