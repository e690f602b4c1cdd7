package main

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/correlate"
	"github.com/vigil-sensor/vigil/sensor"
)

// correlator is the stitcher and the inputs that feed it agent telemetry.
type correlator struct {
	stitcher *correlate.Stitcher
	receiver *correlate.Receiver
	// hookTrust counts the hook calls refused, per reason.
	hookTrust *correlate.HookTrust
	// losses are counters the pipeline reports in its lost records.
	losses []func() map[string]uint64
	wg     sync.WaitGroup
}

// agentProcess is the test for "this process is an agent" that telemetry and hook trust
// rest on. It judges the image the kernel executed (process.executable) and, for an
// interpreter, its script argument, never argv[0] or comm (process.name): a tool shell can
// set both (exec -a claude python3 ...) and must not gain an agent's trust by doing so.
//
// A tree's root is an agent process too: the kernel rooted the tree at it by identity (an
// agent binary's name or installed inode, an interpreter's agent script, or a copy of an
// agent binary whose hash equals the installed one's), which Match cannot see for a copy.
func agentProcess(cat *sensor.Catalog) func(sensor.ProcessInfo) bool {
	return func(p sensor.ProcessInfo) bool {
		if _, ok := cat.Match(p.Executable, p.Args); ok {
			return true
		}
		return p.Pid == p.RootPid && p.Agent != ""
	}
}

// toolBoundary ends the source's merge runs at a tool-call boundary, when the source merges
// (sensor.MergingSource); nil otherwise.
func toolBoundary(src sensor.Source, log zerolog.Logger) func() {
	m, ok := src.(sensor.MergingSource)
	if !ok {
		return nil
	}
	return func() {
		if err := m.BumpMergeEpoch(); err != nil {
			log.Warn().Err(err).Msg("end merge runs at a tool-call boundary")
		}
	}
}

// startCorrelator builds the stitcher over the process table (the kernel's view that
// vouches for telemetry senders) and starts the OTLP receiver. The inputs stop with ctx;
// wait blocks until they have.
func startCorrelator(ctx context.Context, cfg sensor.Config, cat *sensor.Catalog, table *sensor.ProcessTable, resolver sensor.PeerResolver, src sensor.Source, log zerolog.Logger) (*correlator, error) {
	// OTLP counts only from an agent process itself (its image or script matched the
	// catalog), not from any process of its tree; a hook call only from the agent's own hook
	// invocation (correlate.HookTrust).
	isAgent := agentProcess(cat)
	hookTrust := correlate.NewHookTrust(table.Lookup, isAgent)
	c := &correlator{hookTrust: hookTrust, stitcher: correlate.NewStitcher(correlate.StitcherOptions{
		Hold:         time.Duration(cfg.Correlate.HoldSeconds) * time.Second,
		MaxHeld:      cfg.Correlate.MaxHeld,
		Late:         time.Duration(cfg.Correlate.LateSeconds) * time.Second,
		MaxLate:      cfg.Correlate.MaxLate,
		Lookup:       table.Lookup,
		IsAgent:      isAgent,
		HookTrust:    hookTrust,
		ToolBoundary: toolBoundary(src, log),
	})}
	if cfg.Correlate.OTLPHTTP != "" || cfg.Correlate.OTLPGRPC != "" {
		r, err := correlate.NewReceiver(correlate.ReceiverOptions{
			HTTPAddr: cfg.Correlate.OTLPHTTP,
			GRPCAddr: cfg.Correlate.OTLPGRPC,
			Resolver: resolver,
			// The stitcher's own test, before a body is read: only an agent process's
			// telemetry counts, so only it skips the untrusted byte rate.
			UntrustedBytesPerSecond: cfg.Correlate.UntrustedKBPerSecond << 10,
			Vouch: func(pid int, start uint64) bool {
				info, ok := table.Lookup(pid)
				return ok && info.RootPid > 0 && sensor.SameStart(start, info.StartBootNs) && isAgent(info)
			},
			Deliver: func(b correlate.Batch) {
				c.stitcher.AddTelemetry(correlate.TelemetryBatch{Events: b.Events, Transport: b.Transport, SenderPid: b.SenderPid, SenderStartBootNs: b.SenderStartBootNs})
			},
			Log: log,
		})
		if err != nil {
			return nil, fmt.Errorf("start OTLP receiver: %w", err)
		}
		c.receiver = r
		c.losses = append(c.losses, func() map[string]uint64 {
			return map[string]uint64{"otlp_rejected": sum(r.Stats().Rejected)}
		})
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			if err := r.Serve(ctx); err != nil {
				log.Error().Err(err).Msg("OTLP receiver stopped")
			}
		}()
		log.Info().Str("http", r.HTTPAddr()).Str("grpc", r.GRPCAddr()).Msg("OTLP receiver listening")
	}
	switch {
	case cfg.Correlate.HookSocket == "":
	case runtime.GOOS != "linux":
		// The hook server names its callers by SO_PEERCRED, which is Linux's
		// (correlate/hookserver_other.go): on macOS the agents' OTLP telemetry and the join
		// keys of their processes remain.
		log.Warn().Str("hook_socket", cfg.Correlate.HookSocket).Msg("agent hooks are not received on " + runtime.GOOS + " yet; the hook socket is not opened")
	default:
		if err := c.startHooks(ctx, cfg, resolver, log); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// startHooks serves the socket `vigil hook` forwards agent hook calls to. Hook calls the
// client could not deliver are counted per uid on disk and reported as lost kind "hook".
func (c *correlator) startHooks(ctx context.Context, cfg sensor.Config, resolver sensor.PeerResolver, log zerolog.Logger) error {
	opts := []correlate.HookOption{correlate.WithUndeliveredDir(cfg.Correlate.UndeliveredDir)}
	if sr, ok := resolver.(correlate.ProcessStartResolver); ok {
		opts = append(opts, correlate.WithSenderStart(sr.StartOf))
	}
	h, err := correlate.NewHookServer(cfg.Correlate.HookSocket, func(b correlate.HookBatch) {
		c.stitcher.AddTelemetry(correlate.TelemetryBatch{Events: b.Events, Transport: b.Transport, SenderPid: b.SenderPid, SenderStartBootNs: b.SenderStartBootNs})
	}, log, opts...)
	if err != nil {
		return fmt.Errorf("start hook socket: %w", err)
	}
	c.losses = append(c.losses, func() map[string]uint64 {
		counts, err := h.UndeliveredCounts()
		if err != nil {
			log.Warn().Err(err).Msg("read undelivered hook counts")
		}
		// hook_refused: connections closed because their uid had too many in flight.
		return map[string]uint64{"hook": sum(counts), "hook_refused": h.Stats().Refused}
	})
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := h.Serve(ctx); err != nil {
			log.Error().Err(err).Msg("hook socket stopped")
		}
	}()
	log.Info().Str("socket", h.Path()).Msg("hook socket listening")
	return nil
}

// sum adds a map's counts up.
func sum[K comparable](m map[K]uint64) uint64 {
	var total uint64
	for _, n := range m {
		total += n
	}
	return total
}

// wait blocks until the inputs have stopped.
func (c *correlator) wait() { c.wg.Wait() }
