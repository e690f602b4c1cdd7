package route

import (
	"errors"
	"strings"
	"testing"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
)

var _ sensor.LineSink = (*Split)(nil)

type memSink struct {
	actions       []string
	flushes       int
	failFlush     bool
	closed        bool
	failCloseWith error
}

func (m *memSink) Write(e *proto.Event) error {
	m.actions = append(m.actions, e.Event.Action)
	return nil
}
func (m *memSink) Flush() error {
	m.flushes++
	if m.failFlush {
		return errors.New("disk gone")
	}
	return nil
}
func (m *memSink) Close() error { m.closed = true; return m.failCloseWith }

func TestSplitSendsUntrustedTelemetryApart(t *testing.T) {
	main, side := &memSink{}, &memSink{}
	s := &Split{Main: main, Side: side, ToSide: Untrusted}
	for _, a := range []string{proto.ActionOpen, proto.ActionAgentUntrusted, proto.ActionAgentPrompt, proto.ActionLost, proto.ActionAgentUntrusted, proto.ActionBinding} {
		if err := s.Write(&proto.Event{Event: proto.EventMeta{Action: a}}); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Join(main.actions, ","); got != "open,agent.prompt,lost,binding" {
		t.Errorf("main got %s", got)
	}
	if got := strings.Join(side.actions, ","); got != "agent.untrusted_telemetry,agent.untrusted_telemetry" {
		t.Errorf("side got %s", got)
	}
}

func TestSplitFlushesAndClosesBothWhenOneFails(t *testing.T) {
	main, side := &memSink{failFlush: true, failCloseWith: errors.New("close failed")}, &memSink{}
	s := &Split{Main: main, Side: side, ToSide: Untrusted}
	if err := s.Flush(); err == nil || !strings.Contains(err.Error(), "flush main sink: disk gone") {
		t.Errorf("Flush = %v, want the main sink's error named", err)
	}
	if side.flushes != 1 {
		t.Errorf("side flushed %d times, want 1 despite the main sink's failure", side.flushes)
	}
	if err := s.Close(); err == nil || !side.closed || !main.closed {
		t.Errorf("Close = %v, closed main %v side %v; want both closed and the error", err, main.closed, side.closed)
	}
}
