package inventory

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"unicode/utf8"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
)

// Bounds on what one MCP server or hook event puts in the report, so that an item's line
// stays far below proto.MaxLineBytes whatever a user's file holds.
const (
	maxNameBytes  = 256
	maxValueBytes = 1024
	maxListItems  = 64
	maxServers    = 256 // per file
)

// MCP transports.
const (
	transportStdio = "stdio"
	transportSSE   = "sse"
)

// mcpEntry is one MCP server in the JSON shape Claude Code, Cursor and Gemini CLI share. The
// environment and header values are never decoded: only their names are kept.
type mcpEntry struct {
	Type    string                     `json:"type"`
	Command string                     `json:"command"`
	Args    []string                   `json:"args"`
	Env     map[string]json.RawMessage `json:"env"`
	URL     string                     `json:"url"`
	// HTTPURL is Gemini CLI's streamable-HTTP endpoint (its url is SSE).
	HTTPURL string                     `json:"httpUrl"`
	Headers map[string]json.RawMessage `json:"headers"`
}

// server returns the entry's server; an entry with a url and no type uses urlTransport
// (Claude Code and Cursor: http; Gemini CLI: sse).
func (e mcpEntry) server(urlTransport string) mcpServer {
	m := mcpServer{command: e.Command, args: e.Args, url: e.URL, envKeys: slices.Collect(maps.Keys(e.Env)),
		headerKeys: slices.Collect(maps.Keys(e.Headers)), transport: e.Type}
	switch {
	case e.Command != "":
		m.transport = transportStdio
	case e.HTTPURL != "":
		m.url, m.transport = e.HTTPURL, transportHTTP
	case e.Type == "" && e.URL != "":
		m.transport = urlTransport
	}
	return m
}

// mcpServer is an MCP server as any agent's file says it, before redaction.
type mcpServer struct {
	transport, command, url   string
	args, envKeys, headerKeys []string
}

// addMCPServers adds a file's servers (name → entry JSON), reporting each entry that does not
// decode on its own, so one bad entry loses only itself.
func (s *scanner) addMCPServers(w where, servers map[string]json.RawMessage, urlTransport string) {
	names := slices.Sorted(maps.Keys(servers))
	if len(names) > maxServers {
		s.fail(w.path, fmt.Errorf("%d MCP servers: only the first %d were read", len(names), maxServers))
		names = names[:maxServers]
	}
	for _, name := range names {
		var e mcpEntry
		if err := json.Unmarshal(servers[name], &e); err != nil {
			s.fail(w.path, fmt.Errorf("MCP server %q: %w", cut(sensor.RedactString(name), maxNameBytes), err))
			continue
		}
		s.addMCP(w, name, e.server(urlTransport))
	}
}

// addMCP adds one server. Its command line goes through the sensor's argv redaction as one
// argv (so --token VALUE is caught across two arguments), its URL through the string
// redaction (userinfo, ?token=); environment and header names are kept, values never.
func (s *scanner) addMCP(w where, name string, m mcpServer) {
	out := proto.InventoryMCPServer{Agent: w.agent, Level: w.level, User: w.user, Path: w.path, Project: w.project,
		Name: cut(sensor.RedactString(name), maxNameBytes), Transport: cut(m.transport, maxNameBytes)}
	if m.command != "" || len(m.args) > 0 {
		argv := sensor.RedactArgs(append([]string{m.command}, m.args...))
		out.Command = cut(argv[0], maxValueBytes)
		out.Args = cutAll(argv[1:], maxValueBytes)
	}
	if m.url != "" {
		out.URL = cut(sensor.RedactString(m.url), maxValueBytes)
	}
	out.EnvKeys = cutAll(sortedNames(m.envKeys), maxNameBytes)
	out.HeaderKeys = cutAll(sortedNames(m.headerKeys), maxNameBytes)
	s.r.MCPServers = append(s.r.MCPServers, out)
}

// sortedNames sorts names, each passed through the string redaction (a name is not a secret,
// but a user can paste anything into a key).
func sortedNames(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = sensor.RedactString(n)
	}
	slices.Sort(out)
	return out
}

// readMCPFile reads a file of MCP servers ({"mcpServers": {…}}: a project's .mcp.json,
// Cursor's mcp.json).
func readMCPFile(s *scanner, w where, b []byte) ([]string, error) {
	var f struct {
		MCPServers map[string]json.RawMessage `json:"mcpServers"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	s.addMCPServers(w, f.MCPServers, transportHTTP)
	return nil, nil
}

// cut returns s shortened to at most n bytes on a rune boundary, ending in "…" when cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	n -= len("…")
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// cutAll cuts each of at most maxListItems values; a longer list ends in "…".
func cutAll(values []string, n int) []string {
	if len(values) == 0 {
		return nil
	}
	out := make([]string, 0, min(len(values), maxListItems+1))
	for i, v := range values {
		if i == maxListItems {
			out = append(out, "…")
			break
		}
		out = append(out, cut(v, n))
	}
	return out
}
