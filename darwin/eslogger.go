package darwin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// The eslogger supervisor. Apple signs /usr/bin/eslogger with the EndpointSecurity entitlement;
// run as root by a process that has Full Disk Access, it writes one JSON line per event to its
// stdout. Its own process group's events are suppressed (eslogger(1)), and since it is started
// in the sensor's group, the sensor never sees itself. It is restarted, with backoff, whenever it
// dies: what ES delivered in between is unknown, so every restart is counted (eslogger_restart).

// EsloggerPath is where macOS 13 and later install eslogger.
const EsloggerPath = "/usr/bin/eslogger"

// supervisorOptions configure a supervisor; zero durations take the defaults below.
type supervisorOptions struct {
	Path string
	Args []string
	Log  zerolog.Logger
	// Restarted is called for every restart (not for the first start).
	Restarted func()
	// MinBackoff and MaxBackoff bound the wait before a restart: it doubles after every run
	// shorter than StableAfter, and starts over after a longer one.
	MinBackoff, MaxBackoff, StableAfter time.Duration
	// SilentAfter: a run that has written nothing this long after its start is reported once
	// (the sign of missing Full Disk Access: eslogger starts and says nothing).
	SilentAfter time.Duration
	// StopGrace is how long a stopped eslogger may take to exit after SIGTERM before SIGKILL.
	StopGrace time.Duration
}

// supervisor runs eslogger and hands its output to the source, one run after another.
type supervisor struct {
	o       supervisorOptions
	backoff time.Duration

	mu      sync.Mutex
	run     *esloggerRun // the current run; nil before the first start
	stopped bool
}

// esloggerRun is one eslogger process.
type esloggerRun struct {
	cmd     *exec.Cmd
	stdout  *os.File
	stderr  *tailWriter
	started time.Time
	exited  chan struct{} // closed once Wait returned; err is then set
	err     error
	read    atomic.Uint64 // bytes read from stdout
	handed  atomic.Bool   // stdout was handed to the source
	silence *time.Timer
}

func newSupervisor(o supervisorOptions) *supervisor {
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = time.Minute
	}
	if o.StableAfter <= 0 {
		o.StableAfter = time.Minute
	}
	if o.SilentAfter <= 0 {
		o.SilentAfter = time.Minute
	}
	if o.StopGrace <= 0 {
		o.StopGrace = 2 * time.Second
	}
	return &supervisor{o: o, backoff: o.MinBackoff}
}

// start runs eslogger. Its stdout is a pipe the supervisor owns (not exec's), so that waiting
// for the process never closes it before every line written has been read.
func (s *supervisor) start() error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("start eslogger: stdout pipe: %w", err)
	}
	run := &esloggerRun{stdout: r, stderr: &tailWriter{max: 4 << 10}, exited: make(chan struct{})}
	run.cmd = exec.Command(s.o.Path, s.o.Args...)
	run.cmd.Stdout, run.cmd.Stderr = w, run.stderr
	err = run.cmd.Start()
	w.Close() // the child holds its own copy; EOF comes when it exits
	if err != nil {
		r.Close()
		return fmt.Errorf("start eslogger %s: %w", s.o.Path, err)
	}
	run.started = time.Now()
	go func() {
		run.err = run.cmd.Wait()
		close(run.exited)
	}()
	run.silence = time.AfterFunc(s.o.SilentAfter, func() {
		if run.read.Load() == 0 {
			s.o.Log.Warn().Dur("after", s.o.SilentAfter).Msg("eslogger has written nothing since it started: " +
				"typical of missing Full Disk Access for the sensor (grant SystemPolicyAllFiles through an MDM PPPC profile)")
		}
	})
	s.mu.Lock()
	s.run = run
	stopped := s.stopped
	s.mu.Unlock()
	if stopped { // close ran while this run was starting
		s.terminate(run)
	}
	return nil
}

// failedEarly waits up to d for the current run to exit, and returns why it did: the
// constructor's check that eslogger could attach at all (no root, no Full Disk Access).
func (s *supervisor) failedEarly(d time.Duration) error {
	s.mu.Lock()
	run := s.run
	s.mu.Unlock()
	select {
	case <-run.exited:
		return run.failure()
	case <-time.After(d):
		return nil
	}
}

// next implements streams: the current run's output the first time, then, once that run has
// ended, a new run after the backoff. io.EOF once ctx is done.
func (s *supervisor) next(ctx context.Context) (io.ReadCloser, bool, error) {
	s.mu.Lock()
	run := s.run
	s.mu.Unlock()
	if run != nil && !run.handed.Load() {
		return s.stream(ctx, run), true, nil
	}
	if run != nil {
		<-run.exited
		lived := time.Since(run.started)
		if ctx.Err() != nil {
			return nil, false, io.EOF
		}
		if lived >= s.o.StableAfter {
			s.backoff = s.o.MinBackoff
		}
		s.o.Log.Warn().Err(run.failure()).Dur("ran", lived).Dur("restart_in", s.backoff).
			Msg("eslogger stopped; events until it is back are lost (counted as eslogger_restart)")
		select {
		case <-ctx.Done():
			return nil, false, io.EOF
		case <-time.After(s.backoff):
		}
		s.backoff = min(2*s.backoff, s.o.MaxBackoff)
		if s.o.Restarted != nil {
			s.o.Restarted()
		}
	}
	if err := s.start(); err != nil {
		return nil, false, err
	}
	s.mu.Lock()
	run = s.run
	s.mu.Unlock()
	return s.stream(ctx, run), true, nil
}

// stream is the run's stdout, counted, and stopped with ctx.
func (s *supervisor) stream(ctx context.Context, run *esloggerRun) io.ReadCloser {
	run.handed.Store(true)
	stop := context.AfterFunc(ctx, func() { s.terminate(run) })
	return &runReader{run: run, stop: stop}
}

// close implements streams: it stops eslogger for good (the source's Close).
func (s *supervisor) close() error {
	s.mu.Lock()
	s.stopped = true
	run := s.run
	s.mu.Unlock()
	if run == nil {
		return nil
	}
	s.terminate(run)
	<-run.exited
	run.silence.Stop()
	if err := run.stdout.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("close eslogger output: %w", err)
	}
	return nil
}

// terminate asks the run to exit, and kills it if it has not within StopGrace.
func (s *supervisor) terminate(run *esloggerRun) {
	if run.cmd.Process == nil {
		return
	}
	run.cmd.Process.Signal(syscall.SIGTERM)
	go func() {
		select {
		case <-run.exited:
		case <-time.After(s.o.StopGrace):
			run.cmd.Process.Kill()
		}
	}()
}

// failure says why a run ended, in the user's terms where eslogger's stderr names the cause.
func (r *esloggerRun) failure() error {
	tail := r.stderr.String()
	for _, c := range esClientErrors {
		if strings.Contains(tail, c.code) {
			return fmt.Errorf("eslogger: %s (%s)", c.meaning, c.code)
		}
	}
	if tail = strings.TrimSpace(tail); tail != "" {
		if i := strings.LastIndexByte(tail, '\n'); i >= 0 {
			tail = tail[i+1:]
		}
		return fmt.Errorf("eslogger exited (%v): %s", r.err, tail)
	}
	if r.err == nil {
		return errors.New("eslogger exited with status 0")
	}
	return fmt.Errorf("eslogger exited: %w", r.err)
}

// esClientErrors are es_new_client's failures as eslogger prints them, and what to do.
var esClientErrors = []struct{ code, meaning string }{
	{"ES_NEW_CLIENT_RESULT_ERR_NOT_PERMITTED", "no Full Disk Access for the sensor; grant it (SystemPolicyAllFiles) to vigil and /usr/bin/eslogger through an MDM PPPC profile"},
	{"ES_NEW_CLIENT_RESULT_ERR_NOT_PRIVILEGED", "not running as root"},
	{"ES_NEW_CLIENT_RESULT_ERR_TOO_MANY_CLIENTS", "the system's limit of EndpointSecurity clients is reached"},
	{"ES_NEW_CLIENT_RESULT_ERR_NOT_ENTITLED", "this eslogger lacks the EndpointSecurity entitlement (not Apple's /usr/bin/eslogger?)"},
}

// runReader is a run's stdout as the source reads it.
type runReader struct {
	run  *esloggerRun
	stop func() bool
}

func (r *runReader) Read(p []byte) (int, error) {
	n, err := r.run.stdout.Read(p)
	r.run.read.Add(uint64(n))
	return n, err
}

// Close ends the stream: the source read it to its end (eslogger exited) or was stopped.
func (r *runReader) Close() error {
	r.stop()
	r.run.silence.Stop()
	return r.run.stdout.Close()
}

// tailWriter keeps the last max bytes written: eslogger's stderr, for the reason it exits.
type tailWriter struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
