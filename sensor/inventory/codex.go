package inventory

import (
	"fmt"
	"maps"
	"path"
	"slices"

	"github.com/pelletier/go-toml/v2"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
)

// Codex's OTLP exporters, the keys of its [otel] exporter tables (bench/e2e codexConfig):
// exporter = { otlp-http = { endpoint = "…/v1/logs", protocol = "json" } }.
const (
	codexOTLPHTTP = "otlp-http"
	codexOTLPGRPC = "otlp-grpc"
)

// codexConfig is what inventory reads of a Codex config.toml (system, managed or user):
// its logs exporter, MCP servers and trusted projects.
type codexConfig struct {
	OTel struct {
		// Exporter is "none", or a table naming one exporter.
		Exporter any `toml:"exporter"`
	} `toml:"otel"`
	MCPServers map[string]any `toml:"mcp_servers"`
	Projects   map[string]any `toml:"projects"`
}

// codexMCP is one [mcp_servers.<name>]: stdio (command, args, env) or streamable HTTP (url,
// http_headers, env_http_headers). Values of env and headers are decoded but never kept.
type codexMCP struct {
	Command        string         `toml:"command"`
	Args           []string       `toml:"args"`
	Env            map[string]any `toml:"env"`
	URL            string         `toml:"url"`
	HTTPHeaders    map[string]any `toml:"http_headers"`
	EnvHTTPHeaders map[string]any `toml:"env_http_headers"`
}

// readCodexConfig reads a config.toml and returns its [projects."path"] keys.
func readCodexConfig(s *scanner, w where, b []byte) ([]string, error) {
	var f codexConfig
	if err := toml.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	c := w.config()
	c.Telemetry = s.codexTelemetry(f.OTel.Exporter)
	s.r.Configs = append(s.r.Configs, c)

	names := slices.Sorted(maps.Keys(f.MCPServers))
	if len(names) > maxServers {
		s.fail(w.path, fmt.Errorf("%d MCP servers: only the first %d were read", len(names), maxServers))
		names = names[:maxServers]
	}
	for _, name := range names {
		var m codexMCP
		// A server table decodes on its own, so one bad entry loses only itself.
		raw, err := toml.Marshal(f.MCPServers[name])
		if err == nil {
			err = toml.Unmarshal(raw, &m)
		}
		if err != nil {
			s.fail(w.path, fmt.Errorf("MCP server %q: %w", cut(sensor.RedactString(name), maxNameBytes), err))
			continue
		}
		srv := mcpServer{command: m.Command, args: m.Args, url: m.URL, envKeys: slices.Collect(maps.Keys(m.Env)),
			headerKeys: slices.Concat(slices.Collect(maps.Keys(m.HTTPHeaders)), slices.Collect(maps.Keys(m.EnvHTTPHeaders))),
			transport:  transportStdio}
		if m.Command == "" {
			srv.transport = transportHTTP
		}
		s.addMCP(w, name, srv)
	}
	var projects []string
	for _, p := range slices.Sorted(maps.Keys(f.Projects)) {
		if path.IsAbs(p) {
			projects = append(projects, path.Clean(p))
		}
	}
	return projects, nil
}

// codexTelemetry judges [otel] exporter: Codex exports logs only through an otlp-http or
// otlp-grpc exporter ("none", its default, exports nothing).
func (s *scanner) codexTelemetry(exporter any) *proto.InventoryTelemetry {
	t := &proto.InventoryTelemetry{}
	table, ok := exporter.(map[string]any)
	if !ok {
		return t
	}
	for _, kind := range []string{codexOTLPHTTP, codexOTLPGRPC} {
		settings, ok := table[kind].(map[string]any)
		if !ok {
			continue
		}
		endpoint, _ := settings["endpoint"].(string)
		protocol, _ := settings["protocol"].(string)
		t.Configured = true
		t.Endpoint = cut(sensor.RedactString(endpoint), maxValueBytes)
		t.Protocol = kind
		if protocol != "" {
			t.Protocol = cut(kind+" "+protocol, maxNameBytes)
		}
		transport := transportHTTP
		if kind == codexOTLPGRPC {
			transport = transportGRPC
		}
		if endpoint == "" {
			t.Note = "no endpoint"
			return t
		}
		t.PointsAtVigil, t.Note = s.vigil.check(endpoint, transport)
		return t
	}
	return t
}
