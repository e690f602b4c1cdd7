package jsonl

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor/sink/sign"
)

// benchWrite writes b.N kernel lines to a file, flushing every 256 lines as the pipeline does
// after a batch, with or without signing: the difference is the cost of chaining a line (the
// chain field and one SHA-256 of the line). Seals are kept out (interval 0: only the start
// seal, outside the timer, and the stop seal); BenchmarkSeal measures one.
func benchWrite(b *testing.B, signed bool) {
	dir := b.TempDir()
	o := Options{Path: filepath.Join(dir, "events.jsonl")}
	if signed {
		s, err := sign.Open(sign.Options{KeyDir: filepath.Join(dir, "keys"), Name: "events.jsonl"})
		if err != nil {
			b.Fatal(err)
		}
		o.Sign = s
	}
	w, err := Open(o)
	if err != nil {
		b.Fatal(err)
	}
	events := make([]*proto.Event, 256)
	for i := range events {
		events[i] = event(uint64(i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := w.Write(events[i%len(events)]); err != nil {
			b.Fatal(err)
		}
		if i%256 == 255 {
			if err := w.Flush(); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	_, bytes, _ := w.Stats()
	b.ReportMetric(float64(bytes)/float64(b.N), "B/line")
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkUnsignedWrite(b *testing.B) { benchWrite(b, false) }
func BenchmarkSignedWrite(b *testing.B)   { benchWrite(b, true) }

// BenchmarkSeal is the cost of one seal: a new ed25519 key, two signatures (the seal and the
// key log's certificate), the key log appended and synced, the key file replaced (written,
// synced, renamed, directory synced). The syncs dominate, and depend on the disk.
func BenchmarkSeal(b *testing.B) {
	dir := b.TempDir()
	now := time.Date(2025, 11, 24, 8, 0, 0, 0, time.UTC)
	s, err := sign.Open(sign.Options{KeyDir: filepath.Join(dir, "keys"), Name: "events.jsonl", Interval: time.Second,
		Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	w, err := Open(Options{Path: filepath.Join(dir, "events.jsonl"), Sign: s})
	if err != nil {
		b.Fatal(err)
	}
	e := event(1)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		if err := w.Write(e); err != nil { // a seal is only due after a line
			b.Fatal(err)
		}
		now = now.Add(time.Second)
		b.StartTimer()
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
}
