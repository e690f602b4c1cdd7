package correlate

import (
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
)

// An outsider flooding untrusted telemetry gets its burst of lines, then one summary per
// second that counts the rest; every event is a line or a count, and another sender keeps
// its own lines.
func TestUntrustedTelemetryIsRateLimitedPerSender(t *testing.T) {
	s := NewStitcher(StitcherOptions{Lookup: func(int) (sensor.ProcessInfo, bool) { return sensor.ProcessInfo{}, false }})
	const flood = 1000
	events := make([]proto.AgentEvent, flood)
	for i := range events {
		events[i] = stSynth(proto.KindUserPrompt, "10:00:00.000", func(ae *proto.AgentEvent) { ae.Prompt = "forged prompt" })
	}
	start := time.Now()
	// SenderPid 0: unresolved senders are judged at once, untrusted.
	s.AddTelemetry(TelemetryBatch{Events: events, Transport: TransportOTLPHTTP, SenderStartBootNs: 1})
	s.AddTelemetry(TelemetryBatch{Events: events[:3], Transport: TransportOTLPHTTP, SenderStartBootNs: 2})
	_, agent := stRelease(s, time.Now(), true)
	elapsed := time.Since(start)

	lines, summaries, counted := 0, 0, uint64(0)
	for _, e := range agent {
		if e.Event.Action != proto.ActionAgentUntrusted {
			t.Fatalf("unexpected line %s", e.Event.Action)
		}
		if n := e.Vigil.Telemetry.Suppressed; n > 0 {
			summaries++
			counted += n
			continue
		}
		lines++
	}
	// The second sender's 3 lines are among the lines, its own bucket untouched.
	if lines+int(counted) != flood+3 {
		t.Errorf("%d lines + %d counted = %d, want every one of the %d events", lines, counted, lines+int(counted), flood+3)
	}
	if maxLines := untrustedBurst + 3 + int(elapsed.Seconds()*untrustedPerSecond) + 1; lines > maxLines {
		t.Errorf("%d lines written, want at most %d (the burst, the refill, the other sender's 3)", lines, maxLines)
	}
	if summaries != 1 {
		t.Errorf("%d summary lines, want 1", summaries)
	}
	if st := s.Stats(); st.UntrustedSuppressed != counted || st.Untrusted != flood+3 {
		t.Errorf("stats suppressed %d untrusted %d, want %d and %d", st.UntrustedSuppressed, st.Untrusted, counted, flood+3)
	}
}

// Redacting telemetry (a 100 KiB prompt takes a while) happens on the sender's goroutine,
// outside the lock the pipeline's Push and Release take: a sender stuck in redaction does
// not hold up kernel events.
func TestRedactionDoesNotHoldUpThePipeline(t *testing.T) {
	entered, unblock := make(chan struct{}), make(chan struct{})
	s := NewStitcher(StitcherOptions{
		Lookup: func(int) (sensor.ProcessInfo, bool) { return sensor.ProcessInfo{}, false },
		Redact: func(text string) string {
			if text == "slow prompt" {
				close(entered)
				<-unblock
			}
			return text
		},
	})
	ae := stSynth(proto.KindUserPrompt, "10:00:00.000", func(ae *proto.AgentEvent) { ae.Prompt = "slow prompt" })
	added := make(chan struct{})
	go func() {
		s.AddTelemetry(TelemetryBatch{Events: []proto.AgentEvent{ae}, Transport: TransportOTLPHTTP})
		close(added)
	}()
	<-entered
	pipeline := make(chan struct{})
	go func() {
		s.Push(&proto.Event{Timestamp: time.Now(), Event: proto.EventMeta{Action: proto.ActionOpen}, Process: &proto.Process{Pid: 1}})
		s.Release(time.Now(), true)
		close(pipeline)
	}()
	select {
	case <-pipeline:
	case <-time.After(10 * time.Second):
		t.Fatal("Push and Release waited for a sender's redaction")
	}
	close(unblock)
	<-added
	if _, agent := stRelease(s, time.Now(), true); len(agent) != 1 || agent[0].Vigil.Prompt == nil || agent[0].Vigil.Prompt.Text != "slow prompt" {
		t.Fatalf("after the redaction: %d agent lines, want the untrusted prompt", len(agent))
	}
}
