package inventory

import (
	"encoding/json"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
)

// Gemini CLI's telemetry defaults (research gemini.md §2a, 0.61): off, to
// http://localhost:4317 over gRPC unless otlpProtocol says http.
const (
	geminiDefaultEndpoint = "http://localhost:4317"
	geminiTargetGCP       = "gcp"
)

// geminiSettings is what inventory reads of a Gemini CLI settings.json (system or user).
type geminiSettings struct {
	Telemetry *struct {
		Enabled      *bool  `json:"enabled"`
		Target       string `json:"target"`
		OTLPEndpoint string `json:"otlpEndpoint"`
		OTLPProtocol string `json:"otlpProtocol"`
		Outfile      string `json:"outfile"`
	} `json:"telemetry"`
	Hooks      json.RawMessage            `json:"hooks"`
	MCPServers map[string]json.RawMessage `json:"mcpServers"`
}

// readGeminiSettings reads a settings.json. An MCP entry with url is SSE in Gemini CLI
// (httpUrl is streamable HTTP).
func readGeminiSettings(s *scanner, w where, b []byte) ([]string, error) {
	var f geminiSettings
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	hooks, err := parseHooks(f.Hooks)
	if err != nil {
		return nil, err
	}
	c := w.config()
	c.Telemetry = &proto.InventoryTelemetry{}
	if t := f.Telemetry; t != nil && t.Enabled != nil && *t.Enabled {
		c.Telemetry.Configured = true
		endpoint := firstOf(t.OTLPEndpoint, geminiDefaultEndpoint)
		c.Telemetry.Endpoint = cut(sensor.RedactString(endpoint), maxValueBytes)
		c.Telemetry.Protocol = cut(firstOf(t.OTLPProtocol, transportGRPC), maxNameBytes)
		transport := transportGRPC
		if t.OTLPProtocol == transportHTTP {
			transport = transportHTTP
		}
		switch {
		case t.Target == geminiTargetGCP:
			c.Telemetry.Note = "target gcp: exported to Google Cloud, not OTLP"
		case t.Outfile != "":
			c.Telemetry.Note = "outfile set: written to a file, not exported"
		default:
			c.Telemetry.PointsAtVigil, c.Telemetry.Note = s.vigil.check(endpoint, transport)
		}
	}
	c.Hooks = orEmpty(hooks)
	s.r.Configs = append(s.r.Configs, c)

	s.addMCPServers(w, f.MCPServers, transportSSE)
	return nil, nil
}
