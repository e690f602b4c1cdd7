package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	pb "google.golang.org/protobuf/proto"
)

// Hostile input cannot make the sensor grow without bound (issue 10, part 1): 64 concurrent
// 7.9 MiB OTLP posts (which took it to 1.4 GiB) and four hook frames of ~1 M nested arrays
// (67 → 825 MiB) leave the real `vigil run`, shipped defaults, under 128 MiB of peak RSS,
// alive and answering.
const hostileRSSCeiling = 128 << 20

func TestHostileInputKeepsMemoryBounded(t *testing.T) {
	s := startVigil(t, "")
	httpAddr := otlpHTTPAddr(t, s)

	// A valid export of one log record whose body is a 7.9 MiB string: read, decoded, and
	// adapted to nothing (no agent event name).
	big := strings.Repeat("x", 8_280_000) // 7.9 MiB
	body, err := pb.Marshal(&collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		ScopeLogs: []*logspb.ScopeLogs{{LogRecords: []*logspb.LogRecord{{Body: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: big}}}}}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	codes := make(chan int, 64)
	client := &http.Client{Timeout: 60 * time.Second}
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Post("http://"+httpAddr+"/v1/logs", "application/x-protobuf", bytes.NewReader(body))
			if err != nil {
				codes <- -1
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	// Four depth bombs on the hook socket at the same time.
	sock := s.hookSocket
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("unix", sock)
			if err != nil {
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			c.Write(nestedArraysFrame(1<<20 - 16))
			var ack [1]byte
			c.Read(ack[:])
		}()
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	t.Logf("OTLP answers by status: %v", count)
	if count[http.StatusOK]+count[http.StatusServiceUnavailable] != 64 {
		t.Errorf("answers %v: want every post accepted (200) or refused as busy (503)", count)
	}
	if count[http.StatusOK] == 0 {
		t.Errorf("no post got through: the budget refused everything (%v)", count)
	}

	// Alive and answering: a small post goes through at once.
	resp, err := client.Post("http://"+httpAddr+"/v1/logs", "application/x-protobuf", bytes.NewReader(nil))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("after the attack, an empty post: %v %v", resp, err)
	}
	resp.Body.Close()
	peak := peakRSS(t, s.cmd.Process.Pid)
	t.Logf("peak RSS of vigil run: %.1f MiB (ceiling %d MiB)", float64(peak)/(1<<20), hostileRSSCeiling>>20)
	if peak > hostileRSSCeiling {
		t.Errorf("peak RSS %d MiB > %d MiB", peak>>20, hostileRSSCeiling>>20)
	}
	s.stop(t, os.Interrupt)
}

// nestedArraysFrame is a hook frame whose unknown field holds levels nested arrays.
func nestedArraysFrame(levels int) []byte {
	b := []byte{0x81, 0xa1, 'x'}
	b = append(b, bytes.Repeat([]byte{0x91}, levels)...)
	b = append(b, 0xc0)
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
}

// peakRSS is the process's VmHWM from /proc, in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}
