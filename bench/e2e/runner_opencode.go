package main

import (
	"encoding/json"
	"fmt"
	ocplugin "github.com/vigil-sensor/vigil/correlate/plugins/opencode"
	"maps"
	"os"
	"path/filepath"
	"slices"
)

// ---------------------------------------------------------------- opencode

// opencodeAddr is the Chat Completions mock opencode's custom provider points at.
const opencodeAddr = "127.0.0.1:8769"

// opencodePrefix is opencode's own npm prefix inside the npm cache: installing it into the
// shared prefix would let npm prune the packages other branches installed there (and theirs
// prune it).
func opencodePrefix(npmDir string) string { return filepath.Join(npmDir, "opencode") }

// opencodePluginDir holds @opencode-ai/plugin, pre-installed: for every config directory
// opencode runs an npm install of it at startup and waits for it, 70 s offline, unless its
// package.json, package-lock.json and node_modules are already there.
func opencodePluginDir(npmDir string) string { return filepath.Join(opencodePrefix(npmDir), "plugin") }

func opencodeBin(npmDir string) string {
	return filepath.Join(opencodePrefix(npmDir), "node_modules", ".bin", "opencode")
}

// opencodeInstalled says whether the pinned opencode and its plugin package are in npmDir.
func opencodeInstalled(npmDir string) bool {
	p, _ := pinnedFor("opencode")
	if !npmInstalled(opencodePrefix(npmDir), p.Name, p.Version) || !npmInstalled(opencodePluginDir(npmDir), "@opencode-ai/plugin", p.Version) {
		return false
	}
	// .bin/opencode links to opencode-ai/bin/opencode.exe, a hard link of the native Bun
	// binary of the optional dependency opencode-linux-x64 (npm need not run a postinstall).
	if !nativeBinary(opencodeBin(npmDir)) {
		return false
	}
	_, err := os.Stat(filepath.Join(opencodePluginDir(npmDir), "package-lock.json"))
	return err == nil
}

// ensureOpencode installs opencode-ai and, into its own folder, @opencode-ai/plugin at the
// same version, unless both are there.
func ensureOpencode(npmDir string) (bool, error) {
	if opencodeInstalled(npmDir) {
		return false, nil
	}
	p, _ := pinnedFor("opencode")
	for _, dir := range []string{opencodePrefix(npmDir), opencodePluginDir(npmDir)} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return true, err
		}
		if _, err := os.Stat(filepath.Join(dir, "package.json")); err != nil {
			if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte("{}\n"), 0o644); err != nil {
				return true, err
			}
		}
	}
	for _, inst := range []struct{ dir, pkg string }{
		{opencodePrefix(npmDir), p.Name + "@" + p.Version},
		{opencodePluginDir(npmDir), "@opencode-ai/plugin@" + p.Version},
	} {
		if err := runNpm("install", "--no-audit", "--no-fund", "--prefix", inst.dir, inst.pkg); err != nil {
			return true, fmt.Errorf("npm install %s: %w", inst.pkg, err)
		}
	}
	if !opencodeInstalled(npmDir) {
		return true, fmt.Errorf("opencode-ai@%s or its plugin package still missing in %s after npm install", p.Version, opencodePrefix(npmDir))
	}
	return true, nil
}

// opencodeConfig is ~/.config/opencode/opencode.json as a fleet would set it
// (docs/agents/opencode.md): the mock as an OpenAI-compatible custom provider, every tool
// allowed without a prompt, the AI SDK's spans on (experimental.openTelemetry: ai.toolCall
// with the command text, beside opencode's own Tool.execute), no auto update, no sharing.
func opencodeConfig() map[string]any {
	return map[string]any{
		"$schema":      "https://opencode.ai/config.json",
		"autoupdate":   false,
		"share":        "disabled",
		"model":        "e2e/e2e-model",
		"permission":   map[string]any{"*": "allow"},
		"experimental": map[string]any{"openTelemetry": true},
		"provider": map[string]any{"e2e": map[string]any{
			"npm":     "@ai-sdk/openai-compatible",
			"name":    "E2E mock",
			"options": map[string]any{"baseURL": "http://" + opencodeAddr + "/v1", "apiKey": "dummy-e2e-key"},
			"models": map[string]any{"e2e-model": map[string]any{"name": "E2E mock model", "tool_call": true,
				"limit": map[string]any{"context": 100000, "output": 4096}}},
		}},
	}
}

// opencodeEnv is the agent's environment: a scratch HOME with its XDG folders, no update,
// models.dev or share traffic, and OTLP/HTTP (JSON, logs and traces) to the sensor.
func opencodeEnv(sc Scenario, home string) []string {
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + home, "TERM=dumb", "LANG=C.UTF-8", "USER=root", "SHELL=/bin/bash",
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "XDG_DATA_HOME=" + filepath.Join(home, ".local", "share"),
		"XDG_CACHE_HOME=" + filepath.Join(home, ".cache"), "XDG_STATE_HOME=" + filepath.Join(home, ".local", "state"),
		"OPENCODE_DISABLE_AUTOUPDATE=1", "OPENCODE_DISABLE_MODELS_FETCH=1", "OPENCODE_DISABLE_SHARE=1",
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + otlpAddr}
	for _, k := range slices.Sorted(maps.Keys(sc.AgentEnv)) {
		env = append(env, k+"="+sc.AgentEnv[k])
	}
	return env
}

// setupOpencodeHome writes the config and puts the pre-installed plugin package into the
// config folder (package.json and the lock copied, node_modules linked). With strong keys it
// also installs Vigil's plugin (correlate/plugins/opencode), as Vigil ships it.
func setupOpencodeHome(sc Scenario, home, npmDir string) error {
	cfg := filepath.Join(home, ".config", "opencode")
	if err := os.MkdirAll(filepath.Join(cfg, "plugin"), 0o755); err != nil {
		return err
	}
	if sc.StrongKeys {
		if err := os.WriteFile(filepath.Join(cfg, "plugin", ocplugin.FileName), ocplugin.Source, 0o644); err != nil {
			return fmt.Errorf("vigil's opencode plugin: %w", err)
		}
	}
	b, err := json.MarshalIndent(opencodeConfig(), "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(cfg, "opencode.json"), b, 0o644); err != nil {
		return err
	}
	for _, f := range []string{"package.json", "package-lock.json"} {
		b, err := os.ReadFile(filepath.Join(opencodePluginDir(npmDir), f))
		if err != nil {
			return fmt.Errorf("opencode plugin package: %w", err)
		}
		if err := os.WriteFile(filepath.Join(cfg, f), b, 0o644); err != nil {
			return err
		}
	}
	return os.Symlink(filepath.Join(opencodePluginDir(npmDir), "node_modules"), filepath.Join(cfg, "node_modules"))
}

// runOpencode runs one `opencode run --format json` process per prompt; the later ones
// continue the first one's session with -s <session id> (the sessionID of its JSON events).
func runOpencode(sc Scenario, o childOpts, meta *Meta, home string) error {
	if err := setupOpencodeHome(sc, home, o.npmDir); err != nil {
		return err
	}
	env := opencodeEnv(sc, home)
	if sc.StrongKeys { // Vigil's plugin runs this run's vigil hook, at its socket
		env = append(env, "VIGIL_BIN="+o.vigil, "VIGIL_HOOK_SOCKET="+filepath.Join(o.dir, "hook.sock"),
			"VIGIL_HOOK_UNDELIVERED="+filepath.Join(o.dir, "hook-undelivered"))
	}
	return runPerPrompt(sc, o, meta, perPromptAgent{
		name:    "opencode",
		bin:     opencodeBin(o.npmDir),
		env:     env,
		session: sessionEvent{field: "sessionID"}, // every event carries it
		args: func(i int, session string) []string {
			args := []string{"run", "--format", "json"}
			if i > 0 {
				args = append(args, "-s", session)
			}
			return append(args, sc.promptText(i))
		},
	})
}
