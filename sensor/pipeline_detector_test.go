package sensor

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/proto"
)

// plDetector raises one alert for every open of a path it is given, naming the line's
// sequence, and records what it observed.
type plDetector struct {
	match    string
	observed []*proto.Event
}

func (d *plDetector) Observe(e *proto.Event) []*proto.Event {
	d.observed = append(d.observed, e)
	if e.File == nil || e.File.Path != d.match {
		return nil
	}
	return []*proto.Event{{
		Timestamp: e.Timestamp,
		Event:     proto.EventMeta{Action: proto.ActionAlert, Kind: proto.KindAlert, Dataset: proto.DatasetDetection, Severity: 73},
		Rule:      &proto.Rule{ID: "test.rule"},
		Vigil:     proto.Vigil{Alert: &proto.Alert{Severity: "high", Scope: "event", Sequences: []uint64{e.Event.Sequence}}},
	}}
}

// TestPipelineWritesAlertsAfterTheirLine: the detector sees each record once it is numbered,
// its alerts are written (numbered) right after that record, and alerts are not observed.
func TestPipelineWritesAlertsAfterTheirLine(t *testing.T) {
	events := plEvents(5) // /tmp/f0 … /tmp/f4
	src := &plSource{name: "ebpf", events: events}
	sink := &plSink{}
	det := &plDetector{match: "/tmp/f2"}
	p := plPipeline(t, PipelineOptions{Source: src, Sinks: []Sink{sink}, Detector: det, LostInterval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	wait := plStart(t, ctx, p)
	plWaitFor(t, "the records and the alert", func() bool { return len(sink.snapshot()) == 6 })
	cancel()
	if err := wait(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := sink.snapshot()
	plCheckSequence(t, got)
	alert := got[3]
	if alert.Event.Kind != proto.KindAlert || alert.Rule == nil || alert.Rule.ID != "test.rule" {
		t.Fatalf("record 4 is %+v, want the alert right after the line that raised it", alert.Event)
	}
	if seqs := alert.Vigil.Alert.Sequences; len(seqs) != 1 || seqs[0] != got[2].Event.Sequence || got[2].File.Path != "/tmp/f2" {
		t.Errorf("alert names sequences %v, want [%d] (the open of /tmp/f2)", seqs, got[2].Event.Sequence)
	}
	if len(det.observed) != 5 {
		t.Errorf("detector observed %d records, want the 5 kernel lines and not the alert", len(det.observed))
	}
	for i, e := range det.observed {
		if e.Event.Sequence == 0 {
			t.Errorf("observed record %d before it was numbered", i)
		}
	}
	if st := p.Stats(); st.Alerts != 1 || st.Written != 6 {
		t.Errorf("stats %+v, want 1 alert and 6 written", st)
	}
}
