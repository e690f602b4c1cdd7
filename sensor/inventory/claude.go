package inventory

import (
	"encoding/json"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
)

// Claude Code's telemetry switches, in a settings file's env block (docs/agents, research
// README §1): telemetry is on with CLAUDE_CODE_ENABLE_TELEMETRY=1 and an otlp logs exporter,
// and it sends nothing at all without a protocol.
const (
	claudeEnableTelemetry = "CLAUDE_CODE_ENABLE_TELEMETRY"
	otelLogsExporter      = "OTEL_LOGS_EXPORTER"
	otelEndpoint          = "OTEL_EXPORTER_OTLP_ENDPOINT"
	otelLogsEndpoint      = "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"
	otelProtocol          = "OTEL_EXPORTER_OTLP_PROTOCOL"
	otelLogsProtocol      = "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL"
)

// claudeSettings is what inventory reads of a Claude Code settings file (managed, drop-in,
// user or project). Only the telemetry variables are read out of env.
type claudeSettings struct {
	Env   map[string]json.RawMessage `json:"env"`
	Hooks json.RawMessage            `json:"hooks"`
}

// readClaudeSettings reads settings.json, managed-settings.json or a drop-in.
func readClaudeSettings(s *scanner, w where, b []byte) ([]string, error) {
	var f claudeSettings
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	hooks, err := parseHooks(f.Hooks)
	if err != nil {
		return nil, err
	}
	c := w.config()
	c.Telemetry = s.claudeTelemetry(f.Env)
	c.Hooks = orEmpty(hooks)
	s.r.Configs = append(s.r.Configs, c)
	return nil, nil
}

// claudeTelemetry judges one file's env block on its own; the levels merge per variable in
// Claude Code, so a file that sets only part of it says so in the note.
func (s *scanner) claudeTelemetry(env map[string]json.RawMessage) *proto.InventoryTelemetry {
	get := func(name string) string {
		var v string
		if json.Unmarshal(env[name], &v) != nil { // absent, or not a string (Claude ignores it)
			return ""
		}
		return strings.TrimSpace(v)
	}
	t := &proto.InventoryTelemetry{
		Endpoint: cut(sensor.RedactString(firstOf(get(otelLogsEndpoint), get(otelEndpoint))), maxValueBytes),
		Protocol: cut(firstOf(get(otelLogsProtocol), get(otelProtocol)), maxNameBytes),
	}
	enabled := get(claudeEnableTelemetry) == "1" || strings.EqualFold(get(claudeEnableTelemetry), "true")
	otlp := slices.Contains(strings.Split(get(otelLogsExporter), ","), "otlp")
	t.Configured = enabled && otlp
	switch {
	case !enabled && !otlp && t.Endpoint == "":
		return t
	case !enabled:
		t.Note = claudeEnableTelemetry + " is not 1 here"
	case !otlp:
		t.Note = otelLogsExporter + " is not otlp here"
	case t.Endpoint == "":
		t.Note = "no endpoint here (the exporter's default is localhost:4318, or :4317 for grpc)"
	case t.Protocol == "":
		t.Note = "no " + otelProtocol + " here: without one Claude Code exports nothing"
	default:
		transport := transportHTTP
		if t.Protocol == transportGRPC {
			transport = transportGRPC
		}
		t.PointsAtVigil, t.Note = s.vigil.check(t.Endpoint, transport)
	}
	return t
}

// firstOf returns the first non-empty value.
func firstOf(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// claudeState is what inventory reads of ~/.claude.json: the user-scope MCP servers and, per
// project Claude Code was run in, the project's local ones.
type claudeState struct {
	MCPServers map[string]json.RawMessage `json:"mcpServers"`
	Projects   map[string]struct {
		MCPServers map[string]json.RawMessage `json:"mcpServers"`
	} `json:"projects"`
}

// readClaudeState reads ~/.claude.json and returns its projects.
func readClaudeState(s *scanner, w where, b []byte) ([]string, error) {
	var f claudeState
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	s.addMCPServers(w, f.MCPServers, transportHTTP)
	var projects []string
	for _, key := range slices.Sorted(maps.Keys(f.Projects)) {
		if !path.IsAbs(key) || len(projects) == maxProjects {
			continue
		}
		pw := w
		pw.level, pw.project = proto.LevelProject, path.Clean(key)
		s.addMCPServers(pw, f.Projects[key].MCPServers, transportHTTP)
		projects = append(projects, pw.project)
	}
	return projects, nil
}
