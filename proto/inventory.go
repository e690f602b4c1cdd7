package proto

// ActionInventory is one item of a periodic inventory scan (dataset DatasetInventory): an
// agent installed, one of its configuration files, an MCP server it is configured with, or a
// file the scan could not read. A scan writes one line per item, all with the scan's
// @timestamp and vigil.inventory.scan, rather than one line holding them all: a line holds no
// array of objects (Wazuh cannot decode them) and stays under MaxLineBytes whatever a host
// has, and a detection rule reads one item at a time.
const ActionInventory = "inventory"

// DatasetInventory is the inventory scan's lines.
const DatasetInventory = "vigil.inventory"

// KindState is event.kind of inventory lines: ECS's value for a snapshot of something's state
// taken at a point in time and repeated (ECS's newer "asset" is still beta).
const KindState = "state"

// Inventory is vigil.inventory.*: exactly one of its items is set.
type Inventory struct {
	// Scan names the scan the line belongs to: its start, in TimeLayout.
	Scan      string              `json:"scan" msgpack:"scan"`
	Install   *InventoryInstall   `json:"install,omitempty" msgpack:"install,omitempty"`
	Config    *InventoryConfig    `json:"config,omitempty" msgpack:"config,omitempty"`
	MCPServer *InventoryMCPServer `json:"mcp_server,omitempty" msgpack:"mcp_server,omitempty"`
	Error     *InventoryError     `json:"error,omitempty" msgpack:"error,omitempty"`
}

// Inventory levels: where a configuration applies.
const (
	LevelManaged = "managed" // system-wide, set by the fleet (/etc/...)
	LevelUser    = "user"    // one user's home
	LevelProject = "project" // one project directory, as the agent's own files list it
)

// InventoryInstall is an agent executable found on disk. Its version is read from files
// beside it (npm's package.json, the native installer's version directory), never by running
// it: the scan runs as root, and running a user's binary as root would hand them root.
type InventoryInstall struct {
	Agent string `json:"agent" msgpack:"agent"`
	// User owns the install: the home it is in, else the file's owner ("" for root-owned
	// system paths outside every home).
	User string `json:"user,omitempty" msgpack:"user,omitempty"`
	// Path is the executable (or the link to it) as the registry's install paths found it.
	Path string `json:"path" msgpack:"path"`
	// InstallPath is the package or version directory the version was read from.
	InstallPath string `json:"install_path,omitempty" msgpack:"install_path,omitempty"`
	Version     string `json:"version,omitempty" msgpack:"version,omitempty"`
	// FirstSeen is the first scan that found it (RFC 3339, UTC), kept across restarts.
	FirstSeen string `json:"first_seen" msgpack:"first_seen"`
}

// InventoryConfig is one configuration file of an agent and what it sets of telemetry, hooks
// and Vigil's plugin.
type InventoryConfig struct {
	Agent string `json:"agent" msgpack:"agent"`
	// Level is LevelManaged, LevelUser or LevelProject.
	Level string `json:"level" msgpack:"level"`
	// User is the home's user (user and project levels).
	User string `json:"user,omitempty" msgpack:"user,omitempty"`
	Path string `json:"path" msgpack:"path"`
	// Project is the project directory (project level).
	Project   string              `json:"project,omitempty" msgpack:"project,omitempty"`
	Telemetry *InventoryTelemetry `json:"telemetry,omitempty" msgpack:"telemetry,omitempty"`
	Hooks     *InventoryHooks     `json:"hooks,omitempty" msgpack:"hooks,omitempty"`
	// Plugin is set for a plugin folder that holds Vigil's plugin.
	Plugin    *InventoryPlugin `json:"plugin,omitempty" msgpack:"plugin,omitempty"`
	FirstSeen string           `json:"first_seen" msgpack:"first_seen"`
}

// InventoryTelemetry is what a configuration file sets of the agent's OTLP export.
type InventoryTelemetry struct {
	// Configured: the file turns the export on (for Claude Code: telemetry enabled and an
	// OTLP logs exporter; Codex: an OTLP logs exporter; Gemini CLI: telemetry.enabled).
	Configured bool `json:"configured" msgpack:"configured"`
	// Endpoint is the logs endpoint the file names (redacted), Protocol the protocol.
	Endpoint string `json:"endpoint,omitempty" msgpack:"endpoint,omitempty"`
	Protocol string `json:"protocol,omitempty" msgpack:"protocol,omitempty"`
	// PointsAtVigil: configured, and the endpoint's host:port is the receiver of the sensor's
	// configuration (correlate.otlp_http or otlp_grpc) for the transport the protocol names.
	PointsAtVigil bool `json:"points_at_vigil" msgpack:"points_at_vigil"`
	// Note says why a configured export does not reach Vigil, when the file says enough.
	Note string `json:"note,omitempty" msgpack:"note,omitempty"`
}

// InventoryHooks are the hook events a configuration file registers commands for.
type InventoryHooks struct {
	Events []string `json:"events,omitempty" msgpack:"events,omitempty"`
	// VigilEvents are the events with a `vigil hook` command among them.
	VigilEvents []string `json:"vigil_events,omitempty" msgpack:"vigil_events,omitempty"`
}

// InventoryPlugin is Vigil's plugin found in an agent's plugin folder.
type InventoryPlugin struct {
	Path string `json:"path" msgpack:"path"`
	// Current: the file is byte for byte the plugin this sensor ships.
	Current bool `json:"current" msgpack:"current"`
}

// InventoryMCPServer is an MCP server an agent is configured with. The values of its
// environment and headers are never read into it, only their names; the command, arguments
// and URL are redacted.
type InventoryMCPServer struct {
	Agent   string `json:"agent" msgpack:"agent"`
	Level   string `json:"level" msgpack:"level"`
	User    string `json:"user,omitempty" msgpack:"user,omitempty"`
	Path    string `json:"path" msgpack:"path"`
	Project string `json:"project,omitempty" msgpack:"project,omitempty"`
	Name    string `json:"name" msgpack:"name"`
	// Transport is stdio (Command, Args) or http or sse (URL).
	Transport  string   `json:"transport" msgpack:"transport"`
	Command    string   `json:"command,omitempty" msgpack:"command,omitempty"`
	Args       []string `json:"args,omitempty" msgpack:"args,omitempty"`
	URL        string   `json:"url,omitempty" msgpack:"url,omitempty"`
	EnvKeys    []string `json:"env_keys,omitempty" msgpack:"env_keys,omitempty"`
	HeaderKeys []string `json:"header_keys,omitempty" msgpack:"header_keys,omitempty"`
	FirstSeen  string   `json:"first_seen" msgpack:"first_seen"`
}

// InventoryError is a file the scan could not use (malformed, too large, not a regular
// file, not owned by its home's user); everything else of the scan stands.
type InventoryError struct {
	Path  string `json:"path" msgpack:"path"`
	Error string `json:"error" msgpack:"error"`
}
