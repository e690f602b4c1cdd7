package sensor

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// defaultYAML is the configuration `vigil run` uses without a file, and the base every
// file is laid over. Keeping the defaults in commented YAML rather than Go literals gives
// fleet admins one documented file to copy, and the tests keep it in sync with Validate.
//
//go:embed default.yaml
var defaultYAML []byte

// Config is the sensor's configuration file.
type Config struct {
	// Source is the kernel event source: SourceAuto, or one of Sources by name.
	Source string `yaml:"source"`
	// SelfCheck runs a canary agent tree at start and reports whether the source saw it.
	SelfCheck    bool               `yaml:"self_check"`
	Output       OutputConfig       `yaml:"output"`
	Kernel       KernelConfig       `yaml:"kernel"`
	Pipeline     PipelineConfig     `yaml:"pipeline"`
	ProcessTable ProcessTableConfig `yaml:"process_table"`
	Correlate    CorrelateConfig    `yaml:"correlate"`
	Detections   DetectionsConfig   `yaml:"detections"`
	Metrics      MetricsConfig      `yaml:"metrics"`
	Inventory    InventoryConfig    `yaml:"inventory"`
	// Agents are extra agents or extensions of built-in ones, merged into DefaultCatalog.
	Agents []Agent `yaml:"agents"`
	// Interpreters are extra interpreter basenames that may run an agent's script.
	Interpreters []string `yaml:"interpreters"`
}

// SourceAuto picks the platform's best source that loads: on Linux eBPF, else audit; on macOS
// EndpointSecurity through eslogger.
const SourceAuto = "auto"

// SourceEslogger is EndpointSecurity through /usr/bin/eslogger: live on macOS, and on any OS
// the replay of a recorded capture (vigil run --eslogger-input).
const SourceEslogger = "eslogger"

// Sources are the kernel event sources `source:` may name besides SourceAuto.
var Sources = []string{"ebpf", "audit", SourceEslogger}

// OutputConfig is the JSONL sink with its format and size-based rotation, the file untrusted
// telemetry goes to with its own rotation, their signing, the embedded SQL store with its
// retention, and the OTLP logs export.
type OutputConfig struct {
	JSONL string `yaml:"jsonl"`
	// Format is the JSONL files' format: FormatECS or FormatOCSF.
	Format    string `yaml:"format"`
	MaxSizeMB int    `yaml:"max_size_mb"`
	MaxFiles  int    `yaml:"max_files"`
	// Compact leaves a process's unchanged context out of its kernel lines after its first
	// line in a file (proto/compact, docs/schema.md "Compact lines").
	Compact            bool   `yaml:"compact"`
	UntrustedJSONL     string `yaml:"untrusted_jsonl"`
	UntrustedMaxSizeMB int    `yaml:"untrusted_max_size_mb"`
	UntrustedMaxFiles  int    `yaml:"untrusted_max_files"`
	// FloodJSONL takes the kernel lines past their agent tree's TreeLinesPerMinute, with its
	// own rotation (route.Budget); "" keeps them in JSONL.
	FloodJSONL         string `yaml:"flood_jsonl"`
	FloodMaxSizeMB     int    `yaml:"flood_max_size_mb"`
	FloodMaxFiles      int    `yaml:"flood_max_files"`
	TreeLinesPerMinute int    `yaml:"tree_lines_per_minute"`
	// Store is the SQLite database `vigil query` reads; "" turns it off.
	Store        string `yaml:"store"`
	StoreMaxDays int    `yaml:"store_max_days"`
	StoreMaxMB   int    `yaml:"store_max_mb"`
	// Sign hash-chains and seals the JSONL files (sensor/sink/sign, docs/integrity.md).
	Sign bool `yaml:"sign"`
	// SignKeyDir holds each signed file's key (<file name>.key) and key log (<file name>.pub).
	SignKeyDir string `yaml:"sign_key_dir"`
	// SealIntervalSeconds is how often a file being written is sealed; 0: only at start,
	// rotation and stop.
	SealIntervalSeconds int `yaml:"seal_interval_seconds"`
	// OTLP exports every record as an OpenTelemetry log (sensor/sink/otlp).
	OTLP OTLPOutputConfig `yaml:"otlp"`
}

// OTLPOutputConfig is the OTLP logs export: where to, how, and the spool on disk that keeps
// what the endpoint has not taken yet.
type OTLPOutputConfig struct {
	// Endpoint is host:port, http://host:port or https://host:port; "" turns the export off.
	Endpoint string `yaml:"endpoint"`
	// Protocol is one of OTLPProtocols.
	Protocol string            `yaml:"protocol"`
	Headers  map[string]string `yaml:"headers"`
	TLS      OTLPTLSConfig     `yaml:"tls"`
	// TimeoutSeconds bounds one export request.
	TimeoutSeconds int    `yaml:"timeout_seconds"`
	SpoolDir       string `yaml:"spool_dir"`
	SpoolMaxMB     int    `yaml:"spool_max_mb"`
}

// OTLPTLSConfig is the OTLP connection's TLS: the CA the endpoint's certificate must chain to,
// a client certificate for mTLS, and plaintext when asked for.
type OTLPTLSConfig struct {
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	Insecure bool   `yaml:"insecure"`
}

// OTLPProtocols are the transports output.otlp.protocol may name: otlp.Protocols (the sink is
// imported by the command, not by this package; cmd/vigil's tests check the two agree).
var OTLPProtocols = []string{"grpc", "http/protobuf", "http/json"}

// Formats of the JSONL files (output.format): the native records, with ECS-style names, or
// OCSF events (proto/ocsf).
const (
	FormatECS  = "ecs"
	FormatOCSF = "ocsf"
)

// minStoreMB is the smallest size bound of the store: the -wal file beside the database takes
// up to 16 MiB of it, and a bound much smaller would evict at every batch.
const minStoreMB = 64

// KernelConfig sizes the kernel-to-user-space channel.
type KernelConfig struct {
	RingBufferKB   int `yaml:"ring_buffer_kb"`
	WakeupBytes    int `yaml:"wakeup_bytes"`
	PollIntervalMs int `yaml:"poll_interval_ms"`
	// AuditScope is what the audit source audits beyond execs: "tree" or "user".
	AuditScope string `yaml:"audit_scope"`
}

// PipelineConfig sizes the queue between the source and the sinks and caps the CPUs the
// sensor's user space runs on.
type PipelineConfig struct {
	QueueSize int `yaml:"queue_size"`
	MaxCPUs   int `yaml:"max_cpus"`
	// MemoryLimitMB is the Go runtime's soft memory limit (debug.SetMemoryLimit): near it the
	// garbage collector runs harder instead of letting the heap double. 0: no limit.
	MemoryLimitMB int `yaml:"memory_limit_mb"`
}

// ProcessTableConfig bounds the process table.
type ProcessTableConfig struct {
	MaxEntries       int `yaml:"max_entries"`
	ExitedTTLSeconds int `yaml:"exited_ttl_seconds"`
}

// CorrelateConfig is where agent telemetry comes in and how long kernel events wait for it.
type CorrelateConfig struct {
	OTLPHTTP       string `yaml:"otlp_http"`
	OTLPGRPC       string `yaml:"otlp_grpc"`
	HookSocket     string `yaml:"hook_socket"`
	HoldSeconds    int    `yaml:"hold_seconds"`
	MaxHeld        int    `yaml:"max_held"`
	LateSeconds    int    `yaml:"late_seconds"`
	MaxLate        int    `yaml:"max_late"`
	UndeliveredDir string `yaml:"hook_undelivered_dir"`
	HoldJournal    string `yaml:"hold_journal"`
	// UntrustedKBPerSecond is the rate of OTLP bodies from senders no agent vouches for.
	UntrustedKBPerSecond int `yaml:"untrusted_kb_per_second"`
}

// DetectionsConfig turns the detection rules on and names the directory of rule files laid
// over the embedded starter pack.
type DetectionsConfig struct {
	Enabled  bool   `yaml:"enabled"`
	RulesDir string `yaml:"rules_dir"`
	// SilentAgentAfterSeconds is how long an agent tree may start processes with no trusted
	// telemetry or hook before the agent.silent alert; 0 turns that detection off.
	SilentAgentAfterSeconds int `yaml:"silent_agent_after_seconds"`
}

// MetricsConfig is where the sensor serves its Prometheus metrics (sensor/metrics).
type MetricsConfig struct {
	// Listen is host:port, "" for no endpoint.
	Listen string `yaml:"listen"`
}

// InventoryConfig is the periodic inventory scan of `vigil run` (sensor/inventory).
type InventoryConfig struct {
	// IntervalMinutes is the time between scans, the first at start; 0 turns them off.
	IntervalMinutes int `yaml:"interval_minutes"`
}

// maxRingBufferKB caps the ring buffer at 1 GiB: beyond that it is almost certainly a unit
// mistake (bytes for KiB), and the memory is locked in the kernel.
const maxRingBufferKB = 1 << 20

// DefaultConfig returns the embedded default configuration. It panics only if the embedded
// file is broken, which is a build defect caught by the tests, not a runtime condition.
func DefaultConfig() Config {
	var c Config
	if err := decodeConfig(defaultYAML, &c); err != nil {
		panic(fmt.Sprintf("embedded default.yaml: %v", err))
	}
	return c
}

// DefaultYAML returns the embedded default configuration file, comments and all: what
// `vigil install` writes as /etc/vigil/vigil.yaml.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// LoadConfig reads the configuration at path laid over the defaults, so a file only needs
// the keys it changes; "" means the defaults alone. Unknown keys are rejected by name
// because a misspelt key would otherwise silently keep its default. The result is validated.
func LoadConfig(path string) (Config, error) {
	c := DefaultConfig()
	if path == "" {
		return c, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config %s: %w", path, err)
	}
	if err := decodeConfig(data, &c); err != nil {
		return Config{}, fmt.Errorf("parse config %s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("validate config %s: %w", path, err)
	}
	return c, nil
}

// decodeConfig decodes one YAML document over c; an empty document leaves c unchanged.
func decodeConfig(data []byte, c *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// Validate reports every invalid value at once, named by its YAML key, so an admin fixes a
// file in one round instead of one error per restart.
func (c Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.Source == SourceAuto || slices.Contains(Sources, c.Source),
		"source must be %s or one of %s, got %q", SourceAuto, strings.Join(Sources, ", "), c.Source)
	check(filepath.IsAbs(c.Output.JSONL), "output.jsonl must be an absolute path, got %q", c.Output.JSONL)
	check(c.Output.Format == FormatECS || c.Output.Format == FormatOCSF,
		"output.format must be %s or %s, got %q", FormatECS, FormatOCSF, c.Output.Format)
	check(c.Output.MaxSizeMB >= 1, "output.max_size_mb must be >= 1, got %d", c.Output.MaxSizeMB)
	check(c.Output.MaxFiles >= 1, "output.max_files must be >= 1, got %d", c.Output.MaxFiles)
	check(c.Output.UntrustedJSONL == "" || filepath.IsAbs(c.Output.UntrustedJSONL),
		"output.untrusted_jsonl must be an absolute path or empty, got %q", c.Output.UntrustedJSONL)
	check(c.Output.UntrustedJSONL == "" || filepath.Clean(c.Output.UntrustedJSONL) != filepath.Clean(c.Output.JSONL),
		"output.untrusted_jsonl must not be output.jsonl (%q): leave it empty to write untrusted telemetry there", c.Output.JSONL)
	check(c.Output.UntrustedMaxSizeMB >= 1, "output.untrusted_max_size_mb must be >= 1, got %d", c.Output.UntrustedMaxSizeMB)
	check(c.Output.UntrustedMaxFiles >= 1, "output.untrusted_max_files must be >= 1, got %d", c.Output.UntrustedMaxFiles)
	check(c.Output.FloodJSONL == "" || filepath.IsAbs(c.Output.FloodJSONL),
		"output.flood_jsonl must be an absolute path or empty, got %q", c.Output.FloodJSONL)
	check(c.Output.FloodJSONL == "" || (filepath.Clean(c.Output.FloodJSONL) != filepath.Clean(c.Output.JSONL) &&
		filepath.Clean(c.Output.FloodJSONL) != filepath.Clean(c.Output.UntrustedJSONL)),
		"output.flood_jsonl must not be output.jsonl or output.untrusted_jsonl (%q): leave it empty to keep flood lines in output.jsonl", c.Output.FloodJSONL)
	check(c.Output.FloodMaxSizeMB >= 1, "output.flood_max_size_mb must be >= 1, got %d", c.Output.FloodMaxSizeMB)
	check(c.Output.FloodMaxFiles >= 1, "output.flood_max_files must be >= 1, got %d", c.Output.FloodMaxFiles)
	check(c.Output.TreeLinesPerMinute >= 1, "output.tree_lines_per_minute must be >= 1, got %d", c.Output.TreeLinesPerMinute)
	check(c.Output.Store == "" || filepath.IsAbs(c.Output.Store), "output.store must be an absolute path or empty, got %q", c.Output.Store)
	check(c.Output.Store == "" || (filepath.Clean(c.Output.Store) != filepath.Clean(c.Output.JSONL) &&
		filepath.Clean(c.Output.Store) != filepath.Clean(c.Output.UntrustedJSONL) &&
		filepath.Clean(c.Output.Store) != filepath.Clean(c.Output.FloodJSONL)),
		"output.store must not be one of the JSONL files (%q)", c.Output.Store)
	check(c.Output.StoreMaxDays >= 0, "output.store_max_days must be >= 0 (0: no age bound), got %d", c.Output.StoreMaxDays)
	check(c.Output.StoreMaxMB >= minStoreMB, "output.store_max_mb must be >= %d, got %d", minStoreMB, c.Output.StoreMaxMB)
	if err := c.Output.OTLP.check(); err != nil {
		errs = append(errs, err)
	}
	check(filepath.IsAbs(c.Output.SignKeyDir), "output.sign_key_dir must be an absolute path, got %q", c.Output.SignKeyDir)
	check(c.Output.SealIntervalSeconds >= 0, "output.seal_interval_seconds must be 0 (seal at start, rotation and stop only) or more, got %d", c.Output.SealIntervalSeconds)
	// Each file's key is named after the file: two files of one name would share a key, and
	// their seals would evolve it under each other.
	check(!c.Output.Sign || c.Output.UntrustedJSONL == "" || filepath.Base(c.Output.UntrustedJSONL) != filepath.Base(c.Output.JSONL),
		"output.untrusted_jsonl must not have the file name of output.jsonl (%q) when output.sign is on: each file's key is named after it", filepath.Base(c.Output.JSONL))
	check(!c.Output.Sign || c.Output.FloodJSONL == "" || (filepath.Base(c.Output.FloodJSONL) != filepath.Base(c.Output.JSONL) &&
		filepath.Base(c.Output.FloodJSONL) != filepath.Base(c.Output.UntrustedJSONL)),
		"output.flood_jsonl must not have the file name of output.jsonl or output.untrusted_jsonl when output.sign is on: each file's key is named after it")

	kb := c.Kernel.RingBufferKB
	// The kernel requires a ring buffer size that is a power of two and a multiple of the
	// page size (4 KiB); a power of two of at least 4 KiB is both.
	check(kb >= 4 && kb <= maxRingBufferKB && kb&(kb-1) == 0,
		"kernel.ring_buffer_kb must be a power of two between 4 and %d, got %d", maxRingBufferKB, kb)
	check(c.Kernel.WakeupBytes >= 1 && c.Kernel.WakeupBytes < kb*1024,
		"kernel.wakeup_bytes must be >= 1 and smaller than the ring buffer (%d bytes), got %d", kb*1024, c.Kernel.WakeupBytes)
	check(c.Kernel.PollIntervalMs >= 1, "kernel.poll_interval_ms must be >= 1, got %d", c.Kernel.PollIntervalMs)
	check(c.Kernel.AuditScope == "tree" || c.Kernel.AuditScope == "user", "kernel.audit_scope must be tree or user, got %q", c.Kernel.AuditScope)

	check(c.Pipeline.QueueSize >= 1, "pipeline.queue_size must be >= 1, got %d", c.Pipeline.QueueSize)
	check(c.Pipeline.MaxCPUs >= 0, "pipeline.max_cpus must be >= 0 (0: all CPUs), got %d", c.Pipeline.MaxCPUs)
	check(c.Pipeline.MemoryLimitMB >= 0, "pipeline.memory_limit_mb must be >= 0 (0: no limit), got %d", c.Pipeline.MemoryLimitMB)
	check(c.ProcessTable.MaxEntries >= 1, "process_table.max_entries must be >= 1, got %d", c.ProcessTable.MaxEntries)
	check(c.ProcessTable.ExitedTTLSeconds >= 0, "process_table.exited_ttl_seconds must be >= 0, got %d", c.ProcessTable.ExitedTTLSeconds)

	check(c.Correlate.HoldSeconds >= 1, "correlate.hold_seconds must be >= 1, got %d", c.Correlate.HoldSeconds)
	check(c.Correlate.MaxHeld >= 1, "correlate.max_held must be >= 1, got %d", c.Correlate.MaxHeld)
	check(c.Correlate.LateSeconds >= 0, "correlate.late_seconds must be >= 0 (0: no late binding), got %d", c.Correlate.LateSeconds)
	check(c.Correlate.MaxLate >= 1, "correlate.max_late must be >= 1, got %d", c.Correlate.MaxLate)
	check(c.Correlate.HookSocket == "" || filepath.IsAbs(c.Correlate.HookSocket),
		"correlate.hook_socket must be an absolute path or empty, got %q", c.Correlate.HookSocket)
	check(c.Correlate.UndeliveredDir == "" || filepath.IsAbs(c.Correlate.UndeliveredDir),
		"correlate.hook_undelivered_dir must be an absolute path or empty, got %q", c.Correlate.UndeliveredDir)
	check(c.Correlate.HoldJournal == "" || filepath.IsAbs(c.Correlate.HoldJournal),
		"correlate.hold_journal must be an absolute path or empty, got %q", c.Correlate.HoldJournal)
	check(c.Correlate.UntrustedKBPerSecond >= 1, "correlate.untrusted_kb_per_second must be >= 1, got %d", c.Correlate.UntrustedKBPerSecond)

	check(c.Detections.RulesDir == "" || filepath.IsAbs(c.Detections.RulesDir),
		"detections.rules_dir must be an absolute path or empty, got %q", c.Detections.RulesDir)
	check(c.Detections.SilentAgentAfterSeconds >= 0,
		"detections.silent_agent_after_seconds must be 0 (off) or more, got %d", c.Detections.SilentAgentAfterSeconds)

	if err := checkListen(c.Metrics.Listen); err != nil {
		errs = append(errs, fmt.Errorf("metrics.listen: %w", err))
	}
	check(c.Inventory.IntervalMinutes >= 0, "inventory.interval_minutes must be 0 (off) or more, got %d", c.Inventory.IntervalMinutes)

	if _, err := c.Catalog(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// check validates the OTLP export's keys, all of them also when the export is off (endpoint
// ""), so that a mistake shows when the file is written rather than when the export is turned on.
func (o OTLPOutputConfig) check() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	if o.Endpoint != "" {
		if err := checkOTLPEndpoint(o.Endpoint); err != nil {
			errs = append(errs, fmt.Errorf("output.otlp.endpoint: %w", err))
		}
	}
	check(slices.Contains(OTLPProtocols, o.Protocol), "output.otlp.protocol must be one of %s, got %q", strings.Join(OTLPProtocols, ", "), o.Protocol)
	for k := range o.Headers {
		check(k != "" && !strings.ContainsAny(k, " :\r\n"), "output.otlp.headers: %q is not a header name", k)
	}
	for key, p := range map[string]string{"ca_file": o.TLS.CAFile, "cert_file": o.TLS.CertFile, "key_file": o.TLS.KeyFile} {
		check(p == "" || filepath.IsAbs(p), "output.otlp.tls.%s must be an absolute path or empty, got %q", key, p)
	}
	check((o.TLS.CertFile == "") == (o.TLS.KeyFile == ""), "output.otlp.tls.cert_file and key_file go together: set both or neither")
	check(o.TimeoutSeconds >= 1, "output.otlp.timeout_seconds must be >= 1, got %d", o.TimeoutSeconds)
	check(filepath.IsAbs(o.SpoolDir), "output.otlp.spool_dir must be an absolute path, got %q", o.SpoolDir)
	check(o.SpoolMaxMB >= 1, "output.otlp.spool_max_mb must be >= 1, got %d", o.SpoolMaxMB)
	return errors.Join(errs...)
}

// checkOTLPEndpoint accepts host:port, or an http:// or https:// URL with a host.
func checkOTLPEndpoint(endpoint string) error {
	if scheme, rest, ok := strings.Cut(endpoint, "://"); ok {
		if scheme != "http" && scheme != "https" {
			return fmt.Errorf("scheme %q: want http:// or https://", scheme)
		}
		host, _, _ := strings.Cut(rest, "/")
		if host == "" {
			return fmt.Errorf("%q has no host", endpoint)
		}
		return nil
	}
	if _, _, err := net.SplitHostPort(endpoint); err != nil {
		return fmt.Errorf("want host:port or an http(s):// URL: %w", err)
	}
	return nil
}

// checkListen accepts "" (off) or an IP address (or localhost) with a port from 1 to 65535.
// A host name other than localhost is refused: what it resolves to can change under the
// sensor, and a metrics endpoint on the network must be a decision written as an address.
// Port 0 is refused because a scraper could not know the port picked.
func checkListen(addr string) error {
	if addr == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port (e.g. 127.0.0.1:9464) or \"\" for none, got %q: %w", addr, err)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("port must be a number from 1 to 65535, got %q", port)
	}
	if host == "localhost" {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err != nil || ip.Zone() != "" {
		return fmt.Errorf("host must be an IP address or localhost, got %q", host)
	}
	return nil
}

// IsLoopbackListen reports whether a valid metrics.listen address stays on this machine.
func IsLoopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// Catalog returns the built-in catalog extended with the configured agents and interpreters.
func (c Config) Catalog() (*Catalog, error) {
	cat := DefaultCatalog()
	cat.Merge(c.Agents, c.Interpreters)
	if err := cat.Validate(); err != nil {
		return nil, fmt.Errorf("agent catalog: %w", err)
	}
	return cat, nil
}
