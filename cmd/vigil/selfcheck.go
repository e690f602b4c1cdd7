package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/darwin"
	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
	"github.com/vigil-sensor/vigil/sensor/metrics"
)

// The start-up self-check. A source can load and still record nothing useful (a rule the
// kernel dropped, a hook that never fires on this kernel, a tree filter that misses): so once
// the source runs, the sensor starts a canary agent tree of its own, a copy of itself under
// the catalog name selfCheckBinary that opens a marker file and connects to a listener of
// the sensor's, and reports healthy only when the canary's exec, open and connect all came
// through the source (exec and open from EndpointSecurity, which sees no TCP connect). The
// canary's events are the self-check's: they are consumed here and not written.

const (
	// selfCheckAgent and selfCheckBinary are the canary's catalog entry.
	selfCheckAgent  = "vigil-selfcheck"
	selfCheckBinary = "vigil-selfcheck"
	// selfCheckCommand is the hidden command the canary runs.
	selfCheckCommand = "selfcheck-canary"
	// selfCheckTimeout bounds the wait for the canary's events.
	selfCheckTimeout = 10 * time.Second
)

// selfCheckDir holds the canary's name and marker, one per sensor process (root-only,
// removed once the check is done).
var selfCheckDir = fmt.Sprintf("/run/vigil/selfcheck-%d", os.Getpid())

// addSelfCheckAgent puts the canary in the catalog, so the source follows its tree.
func addSelfCheckAgent(cat *sensor.Catalog) {
	cat.Merge([]sensor.Agent{{Name: selfCheckAgent, Binaries: []string{selfCheckBinary}}}, nil)
}

// selfCheck wraps the source: it runs the canary and consumes the canary tree's events.
type selfCheck struct {
	sensor.Source
	pid atomic.Int64 // the canary's pid once started; its tree's events are the check's

	want    []string // what must arrive: exec, open and, where the source sees it, connect
	mu      sync.Mutex
	marker  string
	connect netip.AddrPort
	seen    map[string]bool
	// execSeen is closed when the canary's exec arrives, done when everything wanted has.
	execSeen, done chan struct{}
	// outcome is the verdict as the metrics endpoint reports it (a metrics.SelfCheck).
	outcome atomic.Int32
}

func newSelfCheck(src sensor.Source) *selfCheck {
	want := []string{"exec", "open", "connect"}
	if src.Name() == darwin.SourceName {
		want = want[:2] // EndpointSecurity has no TCP events (docs/schema.md)
	}
	c := &selfCheck{Source: src, want: want, seen: map[string]bool{}, execSeen: make(chan struct{}), done: make(chan struct{})}
	c.outcome.Store(int32(metrics.SelfCheckPending))
	return c
}

// state is the check's verdict so far, for the metrics endpoint; safe from any goroutine.
func (c *selfCheck) state() metrics.SelfCheck { return metrics.SelfCheck(c.outcome.Load()) }

// Run implements sensor.Source: the canary tree's events go to the check, the rest on.
func (c *selfCheck) Run(ctx context.Context, emit func(*proto.Event)) error {
	return c.Source.Run(ctx, func(e *proto.Event) {
		if pid := c.pid.Load(); pid != 0 && e.Vigil.Root != nil && int64(e.Vigil.Root.Pid) == pid &&
			e.GenAI != nil && e.GenAI.Agent != nil && e.GenAI.Agent.Name == selfCheckAgent {
			c.observe(e)
			return
		}
		emit(e)
	})
}

// observe notes what the canary was seen doing.
func (c *selfCheck) observe(e *proto.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch e.Event.Action {
	case proto.ActionExec:
		if !c.seen["exec"] {
			close(c.execSeen)
		}
		c.seen["exec"] = true
	case proto.ActionOpen:
		if e.File != nil && e.File.Path == c.marker {
			c.seen["open"] = true
		}
	case proto.ActionConnect:
		if e.Destination != nil && e.Destination.IP == c.connect.Addr().String() && e.Destination.Port == int(c.connect.Port()) {
			c.seen["connect"] = true
		}
	}
	if len(c.missingLocked()) == 0 {
		select {
		case <-c.done:
		default:
			close(c.done)
		}
	}
}

// missing lists what has not arrived, in want's order.
func (c *selfCheck) missing() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.missingLocked()
}

func (c *selfCheck) missingLocked() []string {
	var out []string
	for _, what := range c.want {
		if !c.seen[what] {
			out = append(out, what)
		}
	}
	return out
}

// run starts the canary and waits for its events; it logs the verdict and returns an error
// naming what did not arrive. The canary acts only once its exec has arrived: a source that
// scopes its rules to a tree once it has read the tree's exec (audit) is checked on what it
// records from then on, as documented.
func (c *selfCheck) run(ctx context.Context, log zerolog.Logger) error {
	start := time.Now()
	defer os.RemoveAll(selfCheckDir)
	goAhead, err := c.startCanary()
	if err != nil {
		c.outcome.Store(int32(metrics.SelfCheckFailed))
		log.Error().Err(err).Msg("self-check could not run its canary")
		return err
	}
	defer goAhead.Close()
	select {
	case <-c.execSeen:
		goAhead.Write([]byte("go\n")) // an error shows as what did not arrive
	case <-time.After(selfCheckTimeout):
	case <-ctx.Done():
		return ctx.Err()
	}
	return c.verdict(ctx, log, start, selfCheckTimeout)
}

// verdict waits up to timeout for what the check wants of the canary.
func (c *selfCheck) verdict(ctx context.Context, log zerolog.Logger, start time.Time, timeout time.Duration) error {
	select {
	case <-c.done:
		c.outcome.Store(int32(metrics.SelfCheckHealthy))
		log.Info().Str("source", c.Name()).Dur("took", time.Since(start)).Strs("arrived", c.want).
			Msg("self-check healthy: the canary agent tree's events arrived")
		return nil
	case <-time.After(timeout):
	case <-ctx.Done():
		return ctx.Err()
	}
	c.outcome.Store(int32(metrics.SelfCheckFailed))
	missing := c.missing()
	err := fmt.Errorf("self-check failed: the canary agent tree's %s did not arrive within %s from the %s source",
		strings.Join(missing, ", "), timeout, c.Name())
	log.Error().Strs("missing", missing).Str("source", c.Name()).Msg(err.Error())
	return err
}

// startCanary starts the canary untracked, learns its pid, and only then lets it execute
// itself under the catalog name: every event of its tree comes after c.pid is set. It
// returns the canary's stdin, on which the canary waits again before it acts.
func (c *selfCheck) startCanary() (io.WriteCloser, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("self-check: find the vigil binary: %w", err)
	}
	if err := os.MkdirAll(selfCheckDir, 0o700); err != nil {
		return nil, fmt.Errorf("self-check: create %s: %w", selfCheckDir, err)
	}
	name := filepath.Join(selfCheckDir, selfCheckBinary)
	os.Remove(name)
	if err := os.Symlink(self, name); err != nil {
		return nil, fmt.Errorf("self-check: name the canary: %w", err)
	}
	marker := filepath.Join(selfCheckDir, "marker")
	if err := os.WriteFile(marker, []byte("vigil self-check\n"), 0o600); err != nil {
		return nil, fmt.Errorf("self-check: write the marker: %w", err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("self-check: listen for the canary: %w", err)
	}
	go func() { // accept the canary's connection, then stop listening
		if conn, err := ln.Accept(); err == nil {
			conn.Close()
		}
		ln.Close()
	}()
	time.AfterFunc(2*selfCheckTimeout, func() { ln.Close() }) // a canary that never connects
	c.mu.Lock()
	c.marker, c.connect = marker, netip.MustParseAddrPort(ln.Addr().String())
	c.mu.Unlock()

	cmd := exec.Command(self, selfCheckCommand, name, marker, ln.Addr().String())
	goAhead, err := cmd.StdinPipe()
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("self-check: canary stdin: %w", err)
	}
	if err := cmd.Start(); err != nil {
		ln.Close()
		return nil, fmt.Errorf("self-check: start the canary: %w", err)
	}
	c.pid.Store(int64(cmd.Process.Pid))
	go func() { _ = cmd.Wait() }()
	if _, err := goAhead.Write([]byte("go\n")); err != nil {
		goAhead.Close()
		return nil, fmt.Errorf("self-check: start the canary: %w", err)
	}
	return goAhead, nil
}

// selfCheckCanaryCommand is the canary. Started as `vigil selfcheck-canary NAME MARKER ADDR`,
// it waits for the sensor's go-ahead on stdin, executes NAME (itself, under the catalog
// name), waits for a second go-ahead (its exec has arrived), then opens MARKER and connects
// to ADDR.
func selfCheckCanaryCommand(args []string) error {
	if len(args) != 3 {
		return usageError{errors.New("usage: vigil " + selfCheckCommand + " NAME MARKER ADDR (internal: run by vigil run's self-check)")}
	}
	name, marker, addr := args[0], args[1], args[2]
	// One byte at a time: the exec must not take buffered input with it.
	var b [1]byte
	for {
		if _, err := os.Stdin.Read(b[:]); err != nil {
			return fmt.Errorf("wait for the go-ahead: %w", err)
		}
		if b[0] == '\n' {
			break
		}
	}
	if filepath.Base(os.Args[0]) != selfCheckBinary {
		return syscall.Exec(name, []string{selfCheckBinary, selfCheckCommand, name, marker, addr}, os.Environ())
	}
	f, err := os.Open(marker)
	if err != nil {
		return err
	}
	f.Close()
	conn, err := net.DialTimeout("tcp4", addr, 5*time.Second)
	if err != nil {
		return err
	}
	return conn.Close()
}
