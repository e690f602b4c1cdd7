package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
	"github.com/vigil-sensor/vigil/sensor/holdjournal"
)

// shutdownGrace bounds how long the sensor drains after SIGINT/SIGTERM: the pipeline's own
// drain (2 s, then what is left is counted as lost kind "shutdown"), plus room to write that
// count; past it the pipeline is stuck (a hung disk) and the stop is reported as an error.
const shutdownGrace = 5 * time.Second

func runCommand(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	configPath := fs.String("config", "", "configuration file laid over the embedded defaults")
	jsonlPath := fs.String("jsonl", "", "JSONL output path (overrides output.jsonl; - for stdout)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	source := fs.String("source", "", "kernel event source: auto, ebpf, audit or eslogger (overrides source)")
	esloggerInput := fs.String("eslogger-input", "", "replay this recorded eslogger capture (JSON lines) instead of watching the kernel; the run ends with it")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: vigil run [--config FILE] [--jsonl PATH] [--source SOURCE] [--log-level LEVEL]
  Start the sensor (as root). Without --config it reads `+defaultConfigPath+` when that file
  exists, else the embedded default configuration. Stops on SIGINT or SIGTERM.
`)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("run: unexpected argument %q", fs.Arg(0))}
	}
	startedAt := time.Now()
	level, err := zerolog.ParseLevel(*logLevel)
	if err != nil {
		return usageError{fmt.Errorf("run: --log-level: %w", err)}
	}
	// Colours only on a terminal: under systemd or a log file they are escape-code noise.
	console := zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.RFC3339, NoColor: !isatty.IsTerminal(os.Stderr.Fd())}
	log := zerolog.New(console).Level(level).With().Timestamp().Logger()

	cfg, _, err := loadConfig(*configPath, "")
	if err != nil {
		return err
	}
	if *jsonlPath != "" {
		cfg.Output.JSONL = *jsonlPath
	}
	if *source != "" {
		cfg.Source = *source
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("--source: %w", err)
		}
	}
	cat, err := cfg.Catalog()
	if err != nil {
		return err
	}
	if cfg.Pipeline.MaxCPUs > 0 {
		runtime.GOMAXPROCS(cfg.Pipeline.MaxCPUs)
	}
	if cfg.Pipeline.MemoryLimitMB > 0 {
		debug.SetMemoryLimit(int64(cfg.Pipeline.MemoryLimitMB) << 20)
	}

	detector, err := startDetections(cfg, log)
	if err != nil {
		return err
	}

	// A replay has no kernel to check: its canary could not appear in the capture.
	selfChecked := cfg.SelfCheck && *esloggerInput == ""
	if selfChecked {
		addSelfCheckAgent(cat)
	}
	src, err := openSource(cfg, cat, *esloggerInput, log)
	if err != nil {
		return err
	}
	platform := src // the self-check's wrapper hides what the platform's source offers (its ring)
	var check *selfCheck
	if selfChecked {
		check = newSelfCheck(src)
		src = check
	}
	defer func() {
		if err := src.Close(); err != nil {
			log.Error().Err(err).Msg("close source")
		}
	}()
	started := src.Started()

	out, err := openOutputs(cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := out.close(); err != nil {
			log.Error().Err(err).Msg("close outputs")
		}
	}()

	hostname, _ := os.Hostname()
	hasher := sensor.NewExeHasher(sensor.ExeHasherOptions{MaxEntries: 4096, MaxFileBytes: 512 << 20})
	defer hasher.Close()
	// A replayed capture's executables are the recording machine's files, not this one's:
	// nothing is hashed (its exec lines keep the files' identity in vigil.exe).
	var hashes sensor.ExeHashes = hasher
	if *esloggerInput != "" {
		hashes = nil
	}
	table := sensor.NewProcessTable(sensor.ProcessTableOptions{
		BootID:     started.BootID,
		MaxEntries: cfg.ProcessTable.MaxEntries,
		ExitedTTL:  time.Duration(cfg.ProcessTable.ExitedTTLSeconds) * time.Second,
		Hasher:     hashes,
	})
	for _, p := range started.Seeded {
		p.Args = sensor.RedactArgs(p.Args)
		table.Seed(p)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	corr, err := startCorrelator(ctx, cfg, cat, table, started.Peers, platform, log)
	if err != nil {
		return err
	}
	defer corr.wait()
	// The journal is closed only once the pipeline has returned (below): a clean stop has
	// written everything, so it is left empty.
	var journal *holdjournal.Journal
	var journalOption sensor.HoldJournal // a nil *Journal must not become a non-nil interface
	if cfg.Correlate.HoldJournal != "" {
		if journal, err = holdjournal.Open(cfg.Correlate.HoldJournal); err != nil {
			return err
		}
		journalOption = journal
	}
	// The inventory's lines, scanned on a goroutine of their own and written by the pipeline.
	inventoryRecords := make(chan []*proto.Event, 1)
	pipe, err := sensor.NewPipeline(sensor.PipelineOptions{
		Source:       src,
		Table:        table,
		Sinks:        out.sinks(),
		Host:         proto.Host{Name: hostname, BootID: started.BootID},
		QueueSize:    cfg.Pipeline.QueueSize,
		Stage:        corr.stitcher,
		Journal:      journalOption,
		Detector:     detectorOption(detector),
		Publish:      detectorPublish(detector),
		Records:      inventoryRecords,
		Flood:        out.budget,
		CompactScope: out.compactScope(cfg),
		// An exec whose file could not even be queued for hashing is counted as lost, and so
		// is every record the output could not take (a full disk past the sink's reserve).
		Losses: append(corr.losses, out.losses, func() map[string]uint64 {
			return map[string]uint64{"exe_hash": hasher.Stats().QueueFull}
		}),
		Log: log,
	})
	if err != nil {
		return err
	}
	// After the pipeline exists (the endpoint reads it), before it runs: a port already taken
	// stops the start here. Deferred after the source's Close, so it stops before the ring is
	// unmapped.
	metricsServer, err := startMetrics(cfg, sensorParts{source: platform, check: check, pipe: pipe, table: table, corr: corr,
		out: out, detector: detector, started: startedAt}, log)
	if err != nil {
		return err
	}
	defer stopMetrics(metricsServer, log)
	log.Info().Str("source", src.Name()).Str("jsonl", cfg.Output.JSONL).Bool("untrusted_apart", out.untrusted != nil).Bool("floods_apart", out.floods != nil).Str("store", cfg.Output.Store).
		Int("agents", len(cat.Agents)).Int("cpus", runtime.GOMAXPROCS(0)).Int("bootstrapped", len(started.Seeded)).Dur("ready", started.Ready).Msg("vigil running")

	done := make(chan error, 1)
	go func() { done <- pipe.Run(ctx) }()
	if check != nil {
		go check.run(ctx, log) // logs its verdict; the sensor runs on either way
	}
	if cfg.Inventory.IntervalMinutes > 0 {
		go inventoryScans(ctx, cfg, time.Duration(cfg.Inventory.IntervalMinutes)*time.Minute, inventoryRecords, log)
	}
	finished := true
	select {
	case err = <-done:
	case <-ctx.Done():
		select {
		case err = <-done:
		case <-time.After(shutdownGrace):
			err = fmt.Errorf("shutdown: pipeline did not finish within %s", shutdownGrace)
			finished = false // it may still use the journal: leave it to the exit
		}
	}
	// The pipeline also ends on its own, when a replayed capture runs out: the inputs stop with
	// it (the correlator's receivers serve until ctx is done).
	stop()
	if journal != nil && finished {
		if cerr := journal.Close(); cerr != nil {
			log.Error().Err(cerr).Msg("hold journal")
		}
	}
	st := pipe.Stats()
	cs := corr.stitcher.Stats()
	hs := hasher.Stats()
	log.Info().Uint64("hashed", hs.Hashed).Uint64("hits", hs.Hits).Uint64("mismatches", hs.Mismatches).
		Uint64("unavailable", hs.Unavailable).Uint64("queue_full", hs.QueueFull).Msg("executable hashes")
	// What the output files really hold: records buffered but never flushed are not written.
	written, dropped := out.written()
	ss, storeDropped := out.storeStats()
	log.Info().Uint64("received", st.Received).Uint64("recovered", st.Recovered).Uint64("accepted", st.Written).Uint64("written", written).Uint64("output_dropped", dropped).Uint64("sink_errors", st.SinkErrors).
		Uint64("store_written", ss.Written).Uint64("store_errors", ss.Errors).Uint64("store_dropped", storeDropped).Uint64("store_evicted", ss.Evicted).Uint64("store_evicted_records", ss.EvictedRecords).
		Uint64("bound_early", cs.EarlyReleased).Uint64("telemetry", cs.Telemetry).Uint64("untrusted", cs.Untrusted).Uint64("untrusted_suppressed", cs.UntrustedSuppressed).Uint64("sender_reused", cs.SenderReused).
		Uint64("late_bound", cs.LateBound).Uint64("late_forgotten", cs.LateForgotten).Uint64("late_expired", cs.LateExpired).
		Interface("bindings", cs.Bindings).Interface("hooks_refused", corr.hookTrust.Refused()).Msg("vigil stopped")
	logDetections(log, detector)
	return err
}
