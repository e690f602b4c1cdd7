package darwin

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
)

// The live source on Linux: a shell script stands in for /usr/bin/eslogger and a fake host for
// the sysctls, so that the supervisor (restarts, early failures, stop, silence) and the
// bootstrap run here exactly as they do on a Mac.

type fakeHost struct {
	procs []procSnap
	err   error
}

func (h fakeHost) bootID() (string, error)        { return "C0FFEE00-0000-4000-8000-000000000001", nil }
func (h fakeHost) processes() ([]procSnap, error) { return h.procs, h.err }

// fakeEslogger writes a script that prints the agent-tree capture and then runs tail (a
// shell command line, e.g. "exit 3" or "exec sleep 60").
func fakeEslogger(t *testing.T, tail string) string {
	t.Helper()
	capture, err := filepath.Abs("testdata/agent-tree.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "eslogger")
	script := "#!/bin/sh\ncat '" + capture + "'\n" + tail + "\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// syncBuffer is a log sink the supervisor's goroutines and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startLive(t *testing.T, path string, h host, log *syncBuffer) (*Source, error) {
	t.Helper()
	return newLive(Options{Catalog: sensor.DefaultCatalog(), Log: zerolog.New(log)},
		supervisorOptions{Path: path, MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
			SilentAfter: 100 * time.Millisecond, StopGrace: time.Second}, h)
}

// runUntil runs src until emit has been called n times, then cancels it and waits for Run.
func runUntil(t *testing.T, src *Source, n int) []*proto.Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []*proto.Event
	done := make(chan error, 1)
	go func() {
		done <- src.Run(ctx, func(e *proto.Event) {
			got = append(got, e)
			if len(got) == n {
				cancel()
			}
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("Run did not return; %d lines", len(got))
	}
	return got
}

// TestLiveRestarts: eslogger exiting is followed by a restart after the backoff, each counted
// as eslogger_restart, each run read as a fresh ES client (its drops counted again).
func TestLiveRestarts(t *testing.T) {
	var log syncBuffer
	// The first run outlives the constructor's early-failure check; the others exit at once.
	first := filepath.Join(t.TempDir(), "first-run")
	tail := "if [ ! -e '" + first + "' ]; then touch '" + first + "'; sleep 1; fi\necho 'eslogger: lost connection' >&2; exit 3"
	src, err := startLive(t, fakeEslogger(t, tail), fakeHost{}, &log)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	got := runUntil(t, src, 3*14)
	if len(got) != 3*14 {
		t.Fatalf("%d lines, want three runs of 14", len(got))
	}
	lost := src.Lost()
	if lost[lostRestart] < 2 || lost["open"] < 3*2 || lost[lostSeqGap] < 2 {
		t.Errorf("lost %v: want at least 2 restarts and three runs' drops", lost)
	}
	if !strings.Contains(log.String(), "eslogger: lost connection") {
		t.Errorf("the reason eslogger stopped is not logged:\n%s", log.String())
	}
}

// TestLiveStopsWithContext: cancelling Run stops eslogger, reads what it wrote, and restarts
// nothing; Close then returns at once.
func TestLiveStopsWithContext(t *testing.T) {
	var log syncBuffer
	src, err := startLive(t, fakeEslogger(t, "exec sleep 60"), fakeHost{}, &log)
	if err != nil {
		t.Fatal(err)
	}
	if got := runUntil(t, src, 14); len(got) != 14 {
		t.Errorf("%d lines", len(got))
	}
	if n := src.Lost()[lostRestart]; n != 0 {
		t.Errorf("%d restarts after a stop", n)
	}
	start := time.Now()
	if err := src.Close(); err != nil {
		t.Error(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v", d)
	}
}

// TestLiveFailsEarly: eslogger refused by EndpointSecurity stops the constructor with the
// reason in the admin's terms.
func TestLiveFailsEarly(t *testing.T) {
	for code, want := range map[string]string{
		"ES_NEW_CLIENT_RESULT_ERR_NOT_PERMITTED":  "Full Disk Access",
		"ES_NEW_CLIENT_RESULT_ERR_NOT_PRIVILEGED": "root",
	} {
		var log syncBuffer
		path := filepath.Join(t.TempDir(), "eslogger")
		script := "#!/bin/sh\necho 'Failed to create ES client: " + code + "' >&2\nexit 1\n"
		if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		_, err := startLive(t, path, fakeHost{}, &log)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), code) {
			t.Errorf("%s: %v", code, err)
		}
	}
	var log syncBuffer
	if _, err := startLive(t, filepath.Join(t.TempDir(), "missing"), fakeHost{}, &log); err == nil {
		t.Error("a missing eslogger started")
	}
	boom := errors.New("sysctl failed")
	if _, err := startLive(t, fakeEslogger(t, "exec sleep 60"), fakeHost{err: boom}, &log); !errors.Is(err, boom) {
		t.Errorf("bootstrap error: %v", err)
	}
}

// TestLiveSilence: an eslogger that writes nothing (what missing Full Disk Access looks like)
// is reported once.
func TestLiveSilence(t *testing.T) {
	var log syncBuffer
	path := filepath.Join(t.TempDir(), "eslogger")
	if err := os.WriteFile(path, []byte("#!/bin/sh\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := startLive(t, path, fakeHost{}, &log)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(log.String(), "written nothing") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(log.String(), "Full Disk Access") {
		t.Errorf("silence not reported:\n%s", log.String())
	}
	if err := src.Close(); err != nil {
		t.Error(err)
	}
}

// TestLiveBootstrap: agent trees running at start are seeded, and their live events are
// followed without their root exec in the stream.
func TestLiveBootstrap(t *testing.T) {
	var log syncBuffer
	running := fakeHost{procs: []procSnap{
		{Pid: 812, PPid: 640, Start: 1_772_445_600_120_455_000, Executable: "/bin/zsh", Args: []string{"-zsh"}},
		{Pid: 990, PPid: 812, Start: 1_772_445_000_000_000_000, Executable: "/usr/local/bin/codex", Args: []string{"codex"}},
	}}
	src, err := startLive(t, fakeEslogger(t, "exec sleep 60"), running, &log)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	st := src.Started()
	if st.BootID != "C0FFEE00-0000-4000-8000-000000000001" || len(st.Seeded) != 1 || st.Seeded[0].Pid != 990 ||
		st.Seeded[0].Agent != "codex" || st.Peers != nil {
		t.Errorf("started %+v", st)
	}
	if got := runUntil(t, src, 14); len(got) != 14 {
		t.Errorf("%d lines", len(got))
	}
}
