package sensor

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("embedded default.yaml does not validate: %v", err)
	}
	want := Config{
		Output: OutputConfig{JSONL: "/var/log/vigil/events.jsonl", Format: FormatECS, MaxSizeMB: 100, MaxFiles: 5, Compact: true,
			UntrustedJSONL: "/var/log/vigil/untrusted.jsonl", UntrustedMaxSizeMB: 20, UntrustedMaxFiles: 2,
			FloodJSONL: "/var/log/vigil/floods.jsonl", FloodMaxSizeMB: 100, FloodMaxFiles: 2, TreeLinesPerMinute: 6000,
			Store: "/var/lib/vigil/vigil.db", StoreMaxDays: 30, StoreMaxMB: 1024,
			OTLP: OTLPOutputConfig{Protocol: "grpc", Headers: map[string]string{}, TimeoutSeconds: 10,
				SpoolDir: "/var/lib/vigil/spool/otlp", SpoolMaxMB: 256},
			Sign: false, SignKeyDir: "/var/lib/vigil/sign", SealIntervalSeconds: 60},
		Kernel:       KernelConfig{RingBufferKB: 4096, WakeupBytes: 65536, PollIntervalMs: 100, AuditScope: "user"},
		Pipeline:     PipelineConfig{QueueSize: 1024, MaxCPUs: 1, MemoryLimitMB: 96},
		ProcessTable: ProcessTableConfig{MaxEntries: 65536, ExitedTTLSeconds: 120},
		Correlate: CorrelateConfig{OTLPHTTP: "127.0.0.1:4318", OTLPGRPC: "127.0.0.1:4317", HookSocket: "/run/vigil/hook.sock",
			HoldSeconds: 10, MaxHeld: 8192, LateSeconds: 300, MaxLate: 4096, UndeliveredDir: "/var/lib/vigil/hook-undelivered",
			HoldJournal: "/var/lib/vigil/hold", UntrustedKBPerSecond: 256},
	}
	c.Agents, c.Interpreters = nil, nil // `[]` in the file; compared separately below
	if !reflect.DeepEqual(c.Output, want.Output) || c.Kernel != want.Kernel || c.Pipeline != want.Pipeline || c.ProcessTable != want.ProcessTable ||
		c.Correlate != want.Correlate {
		t.Errorf("DefaultConfig = %+v\nwant %+v", c, want)
	}
	if c.Source != SourceAuto || !c.SelfCheck {
		t.Errorf("source %q, self_check %v: want auto, on", c.Source, c.SelfCheck)
	}
	if c.Detections != (DetectionsConfig{Enabled: true, RulesDir: "/etc/vigil/rules.d", SilentAgentAfterSeconds: 120}) {
		t.Errorf("Detections = %+v, want enabled with /etc/vigil/rules.d, silent after 120 s", c.Detections)
	}
	if c.Metrics.Listen != "127.0.0.1:9464" || !IsLoopbackListen(c.Metrics.Listen) {
		t.Errorf("metrics.listen = %q, want 127.0.0.1:9464 (loopback)", c.Metrics.Listen)
	}
	if c.Inventory.IntervalMinutes != 60 {
		t.Errorf("inventory.interval_minutes = %d, want 60", c.Inventory.IntervalMinutes)
	}
	if d := DefaultConfig(); len(d.Agents) != 0 || len(d.Interpreters) != 0 {
		t.Errorf("default adds agents %v / interpreters %v; built-ins belong in DefaultCatalog", d.Agents, d.Interpreters)
	}
	if got, err := LoadConfig(""); err != nil || !reflect.DeepEqual(got.Output, want.Output) {
		t.Errorf(`LoadConfig("") = %+v, %v`, got.Output, err)
	}
}

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{
			name: "empty file keeps defaults",
			yaml: "",
			check: func(t *testing.T, c Config) {
				if c.Kernel.RingBufferKB != 4096 {
					t.Errorf("ring buffer = %d", c.Kernel.RingBufferKB)
				}
			},
		},
		{
			name: "overlay keeps unset keys",
			yaml: "output:\n  jsonl: /data/vigil.jsonl\nkernel:\n  ring_buffer_kb: 16384\n",
			check: func(t *testing.T, c Config) {
				if c.Output.JSONL != "/data/vigil.jsonl" || c.Output.MaxSizeMB != 100 || c.Kernel.RingBufferKB != 16384 || c.Kernel.WakeupBytes != 65536 {
					t.Errorf("got %+v %+v", c.Output, c.Kernel)
				}
			},
		},
		{
			name: "agents extend the catalog",
			yaml: "agents:\n  - name: claude-code\n    paths: [/opt/claude/claude]\n  - name: acme\n    binaries: [acme]\ninterpreters: [pypy3]\n",
			check: func(t *testing.T, c Config) {
				cat, err := c.Catalog()
				if err != nil {
					t.Fatal(err)
				}
				if a, ok := cat.AgentByBinary("acme"); !ok || a != "acme" {
					t.Errorf("acme not in catalog")
				}
				if !cat.IsInterpreter("pypy3") || !cat.IsInterpreter("node") {
					t.Errorf("interpreters = %v", cat.Interpreters)
				}
				if !slices.Contains(cat.Agents[cat.ID("claude-code")-1].Paths, "/opt/claude/claude") {
					t.Errorf("claude-code path not merged")
				}
			},
		},
		{name: "unknown key", yaml: "output:\n  jsonl_path: /x\n", wantErr: "field jsonl_path not found"},
		{name: "unknown top-level key", yaml: "sinks: {}\n", wantErr: "field sinks not found"},
		{name: "wrong type", yaml: "kernel:\n  ring_buffer_kb: big\n", wantErr: "parse config"},
		{name: "ring buffer not power of two", yaml: "kernel:\n  ring_buffer_kb: 3000\n", wantErr: "kernel.ring_buffer_kb"},
		{name: "ring buffer too small", yaml: "kernel:\n  ring_buffer_kb: 2\n", wantErr: "kernel.ring_buffer_kb"},
		{name: "wakeup beyond buffer", yaml: "kernel:\n  ring_buffer_kb: 4\n  wakeup_bytes: 4096\n", wantErr: "kernel.wakeup_bytes"},
		{name: "relative output", yaml: "output:\n  jsonl: events.jsonl\n", wantErr: "output.jsonl"},
		{name: "unknown format", yaml: "output:\n  format: cef\n", wantErr: `output.format must be ecs or ocsf, got "cef"`},
		{name: "format is lower case", yaml: "output:\n  format: OCSF\n", wantErr: "output.format"},
		{
			name: "ocsf format",
			yaml: "output:\n  format: ocsf\n",
			check: func(t *testing.T, c Config) {
				if c.Output.Format != FormatOCSF || c.Output.JSONL != "/var/log/vigil/events.jsonl" {
					t.Errorf("output = %+v", c.Output)
				}
			},
		},
		{name: "untrusted into the main file", yaml: "output:\n  untrusted_jsonl: /var/log/vigil/events.jsonl\n", wantErr: "output.untrusted_jsonl"},
		{name: "floods into the main file", yaml: "output:\n  flood_jsonl: /var/log/vigil/events.jsonl\n", wantErr: "output.flood_jsonl must not be"},
		{name: "floods into the untrusted file", yaml: "output:\n  flood_jsonl: /var/log/vigil/untrusted.jsonl\n", wantErr: "output.flood_jsonl must not be"},
		{name: "relative flood file", yaml: "output:\n  flood_jsonl: floods.jsonl\n", wantErr: "output.flood_jsonl must be an absolute path"},
		{name: "zero tree budget", yaml: "output:\n  tree_lines_per_minute: 0\n", wantErr: "output.tree_lines_per_minute"},
		{name: "zero flood files", yaml: "output:\n  flood_max_files: 0\n", wantErr: "output.flood_max_files"},
		{name: "signed flood file of the events' name", yaml: "output:\n  sign: true\n  flood_jsonl: /var/log/other/events.jsonl\n", wantErr: "output.flood_jsonl must not have the file name"},
		{name: "relative hold journal", yaml: "correlate:\n  hold_journal: hold\n", wantErr: "correlate.hold_journal"},
		{name: "relative store", yaml: "output:\n  store: vigil.db\n", wantErr: "output.store must be an absolute path"},
		{name: "store into the events file", yaml: "output:\n  store: /var/log/vigil/events.jsonl\n", wantErr: "output.store must not be one of the JSONL files"},
		{name: "negative store_max_days", yaml: "output:\n  store_max_days: -1\n", wantErr: "output.store_max_days"},
		{name: "store_max_mb too small", yaml: "output:\n  store_max_mb: 16\n", wantErr: "output.store_max_mb must be >= 64"},
		{name: "otlp endpoint without port", yaml: "output:\n  otlp:\n    endpoint: collector\n", wantErr: "output.otlp.endpoint: want host:port"},
		{name: "otlp endpoint scheme", yaml: "output:\n  otlp:\n    endpoint: grpc://collector:4317\n", wantErr: "output.otlp.endpoint: scheme \"grpc\""},
		{name: "otlp protocol", yaml: "output:\n  otlp:\n    protocol: http\n", wantErr: "output.otlp.protocol must be one of grpc, http/protobuf, http/json"},
		{name: "otlp cert without key", yaml: "output:\n  otlp:\n    tls:\n      cert_file: /etc/vigil/client.pem\n", wantErr: "output.otlp.tls.cert_file and key_file go together"},
		{name: "otlp relative ca", yaml: "output:\n  otlp:\n    tls:\n      ca_file: ca.pem\n", wantErr: "output.otlp.tls.ca_file must be an absolute path"},
		{name: "otlp header name", yaml: "output:\n  otlp:\n    headers:\n      \"x key\": v\n", wantErr: "output.otlp.headers: \"x key\" is not a header name"},
		{name: "otlp zero timeout", yaml: "output:\n  otlp:\n    timeout_seconds: 0\n", wantErr: "output.otlp.timeout_seconds must be >= 1"},
		{name: "otlp relative spool", yaml: "output:\n  otlp:\n    spool_dir: spool\n", wantErr: "output.otlp.spool_dir must be an absolute path"},
		{name: "otlp zero spool", yaml: "output:\n  otlp:\n    spool_max_mb: 0\n", wantErr: "output.otlp.spool_max_mb must be >= 1"},
		{
			name: "otlp on, over http/json with a header and mTLS",
			yaml: "output:\n  otlp:\n    endpoint: https://siem.example.com:4318/otlp\n    protocol: http/json\n    headers:\n      x-api-key: k\n" +
				"    tls:\n      ca_file: /etc/vigil/ca.pem\n      cert_file: /etc/vigil/c.pem\n      key_file: /etc/vigil/c.key\n",
			check: func(t *testing.T, c Config) {
				o := c.Output.OTLP
				if o.Endpoint != "https://siem.example.com:4318/otlp" || o.Protocol != "http/json" || o.Headers["x-api-key"] != "k" ||
					o.TLS.KeyFile != "/etc/vigil/c.key" || o.SpoolMaxMB != 256 || o.TimeoutSeconds != 10 {
					t.Errorf("output.otlp = %+v", o)
				}
			},
		},
		{
			name: "store off, no age bound",
			yaml: "output:\n  store: \"\"\n  store_max_days: 0\n",
			check: func(t *testing.T, c Config) {
				if c.Output.Store != "" || c.Output.StoreMaxDays != 0 || c.Output.StoreMaxMB != 1024 {
					t.Errorf("output = %+v", c.Output)
				}
			},
		},
		{name: "relative sign_key_dir", yaml: "output:\n  sign_key_dir: sign\n", wantErr: "output.sign_key_dir must be an absolute path"},
		{name: "negative seal interval", yaml: "output:\n  seal_interval_seconds: -1\n", wantErr: "output.seal_interval_seconds"},
		{name: "signed files of one name", yaml: "output:\n  sign: true\n  untrusted_jsonl: /var/log/other/events.jsonl\n", wantErr: "output.untrusted_jsonl must not have the file name"},
		{
			name: "signing on, sealed only at start, rotation and stop",
			yaml: "output:\n  sign: true\n  sign_key_dir: /srv/keys\n  seal_interval_seconds: 0\n",
			check: func(t *testing.T, c Config) {
				if !c.Output.Sign || c.Output.SignKeyDir != "/srv/keys" || c.Output.SealIntervalSeconds != 0 {
					t.Errorf("output = %+v", c.Output)
				}
			},
		},
		{name: "zero queue", yaml: "pipeline:\n  queue_size: 0\n", wantErr: "pipeline.queue_size"},
		{name: "negative max_cpus", yaml: "pipeline:\n  max_cpus: -1\n", wantErr: "pipeline.max_cpus"},
		{name: "negative late_seconds", yaml: "correlate:\n  late_seconds: -1\n", wantErr: "correlate.late_seconds"},
		{name: "negative silent_agent_after_seconds", yaml: "detections:\n  silent_agent_after_seconds: -1\n", wantErr: "detections.silent_agent_after_seconds"},
		{name: "negative inventory interval", yaml: "inventory:\n  interval_minutes: -5\n", wantErr: "inventory.interval_minutes must be 0 (off)"},
		{
			name: "inventory off",
			yaml: "inventory:\n  interval_minutes: 0\n",
			check: func(t *testing.T, c Config) {
				if c.Inventory.IntervalMinutes != 0 {
					t.Errorf("inventory = %+v", c.Inventory)
				}
			},
		},
		{name: "zero max_late", yaml: "correlate:\n  max_late: 0\n", wantErr: "correlate.max_late"},
		{
			name: "late binding off",
			yaml: "correlate:\n  late_seconds: 0\n",
			check: func(t *testing.T, c Config) {
				if c.Correlate.LateSeconds != 0 || c.Correlate.MaxLate != 4096 {
					t.Errorf("correlate = %+v", c.Correlate)
				}
			},
		},
		{name: "metrics listen without port", yaml: "metrics:\n  listen: 127.0.0.1\n", wantErr: "metrics.listen: want host:port"},
		{name: "metrics listen garbage", yaml: "metrics:\n  listen: \"not an address\"\n", wantErr: "metrics.listen: want host:port"},
		{name: "metrics listen port 0", yaml: "metrics:\n  listen: 127.0.0.1:0\n", wantErr: "metrics.listen: port must be a number from 1 to 65535"},
		{name: "metrics listen port out of range", yaml: "metrics:\n  listen: 127.0.0.1:70000\n", wantErr: "metrics.listen: port must be"},
		{name: "metrics listen host name", yaml: "metrics:\n  listen: metrics.example.com:9464\n", wantErr: "metrics.listen: host must be an IP address or localhost"},
		{
			name: "metrics off",
			yaml: "metrics:\n  listen: \"\"\n",
			check: func(t *testing.T, c Config) {
				if c.Metrics.Listen != "" {
					t.Errorf("metrics.listen = %q, want off", c.Metrics.Listen)
				}
			},
		},
		{
			name: "metrics on another address, as the admin wrote it",
			yaml: "metrics:\n  listen: \"[::]:9464\"\n",
			check: func(t *testing.T, c Config) {
				if c.Metrics.Listen != "[::]:9464" || IsLoopbackListen(c.Metrics.Listen) {
					t.Errorf("metrics.listen = %q (loopback %v), want [::]:9464, not loopback", c.Metrics.Listen, IsLoopbackListen(c.Metrics.Listen))
				}
			},
		},
		{name: "bad agent", yaml: "agents:\n  - name: x\n    binaries: [/usr/bin/x]\n", wantErr: "agent catalog"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "vigil.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := LoadConfig(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("error = %v, want it to name %s and contain %q", err, path, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestValidateReportsEveryError(t *testing.T) {
	c := DefaultConfig()
	c.Output.MaxFiles = 0
	c.Pipeline.QueueSize = 0
	c.ProcessTable.ExitedTTLSeconds = -1
	err := c.Validate()
	for _, key := range []string{"output.max_files", "pipeline.queue_size", "process_table.exited_ttl_seconds"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("error %v does not name %s", err, key)
		}
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	_, err := LoadConfig("/nonexistent/vigil.yaml")
	if err == nil || !strings.Contains(err.Error(), "read config /nonexistent/vigil.yaml") || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("error = %v", err)
	}
}

func TestIsLoopbackListen(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9464": true, "127.1.2.3:1": true, "[::1]:9464": true, "localhost:9464": true, "[::ffff:127.0.0.1]:9464": true,
		"0.0.0.0:9464": false, "[::]:9464": false, "10.0.0.5:9464": false, "": false, "127.0.0.1": false,
	} {
		if got := IsLoopbackListen(addr); got != want {
			t.Errorf("IsLoopbackListen(%q) = %v, want %v", addr, got, want)
		}
	}
}
