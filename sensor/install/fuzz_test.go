package install

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	toml "github.com/pelletier/go-toml/v2"
)

// The agents' JSON settings are outside input (an admin's, or anything written there): a
// merge never panics, yields a JSON object with Vigil's hook in it, and taking Vigil's part
// out again gives back the admin's document.
func FuzzJSONEdit(f *testing.F) {
	for _, p := range []string{"/etc/claude-code/managed-settings.json", "/etc/codex/hooks.json", "/etc/gemini-cli/settings.json", "/etc/cursor/hooks.json"} {
		f.Add([]byte(adminFiles[p]))
	}
	samples, _ := filepath.Glob("../../../shared/research/agents/samples/*/*settings*.json")
	for _, s := range samples {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"hooks": {"PreToolUse": []}, "env": {}}`))
	f.Add([]byte(`{"hooks": null}`))
	const cmd = "/usr/bin/vigil hook --agent claude-code"
	edit := jsonEdit{
		set:         []Leaf{{Path: []string{"env", "OTEL_LOGS_EXPORTER"}, Value: "otlp"}, {Path: []string{"telemetry", "enabled"}, Value: true}},
		hookCommand: cmd,
		hooks:       hookEntries(claudeHookEvents, cmd),
	}
	f.Fuzz(func(t *testing.T, before []byte) {
		after, undo, _, err := edit.apply("settings.json", before)
		if err != nil {
			return // reported as skipped, the file untouched
		}
		doc, err := parseJSONObject(after)
		if err != nil {
			t.Fatalf("merged file is not a JSON object: %v\n%s", err, after)
		}
		if undo == nil {
			return // nothing added: the file already had everything
		}
		if undo.HookCommand != "" && !runsCommand(doc["hooks"], cmd) {
			t.Fatalf("merged file has no Vigil hook:\n%s", after)
		}
		restored, err := undo.remove(after)
		if err != nil {
			t.Fatalf("undo: %v", err)
		}
		got, err := parseJSONObject(restored)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := parseJSONObject(before)
		if !sameJSON(got, want) {
			t.Fatalf("undo does not give back the original:\n%s\nwant\n%s", compactJSON(got), compactJSON(want))
		}
	})
}

// Codex's config is TOML: what Vigil appends always leaves a file that parses, with the
// admin's tables as they were and Vigil's [otel], and taking it out restores the bytes.
func FuzzCodexOTel(f *testing.F) {
	f.Add([]byte(adminFiles["/etc/codex/config.toml"]))
	f.Add([]byte("model = \"o3\"\n[projects.\"/src\"]\ntrust_level = \"trusted\""))
	f.Add([]byte("# comment only"))
	f.Add([]byte("[[profiles]]\nname = 'a'\n"))
	f.Add([]byte("otel.environment = 'x'\n"))
	f.Fuzz(func(t *testing.T, before []byte) {
		appended, err := appendCodexOTel(before, "http://127.0.0.1:4318")
		if err != nil || appended == "" {
			return
		}
		after := append(before[:len(before):len(before)], appended...)
		var doc map[string]any
		if err := toml.Unmarshal(after, &doc); err != nil {
			t.Fatalf("appended config does not parse: %v\n%s", err, after)
		}
		orig := map[string]any{}
		_ = toml.Unmarshal(before, &orig)
		otel, _ := doc["otel"].(map[string]any)
		if otel == nil || otel["log_user_prompt"] != true {
			t.Fatalf("no [otel] table of Vigil's:\n%s", after)
		}
		delete(doc, "otel")
		if !sameJSON(doc, orig) {
			t.Fatalf("the admin's settings changed:\n%s", after)
		}
		restored, err := (&Undo{Appended: appended}).remove(after)
		if err != nil || string(restored) != string(before) {
			t.Fatalf("undo: %v\n%q\nwant\n%q", err, restored, before)
		}
		if !strings.HasSuffix(string(after), "\n") {
			t.Fatalf("no final newline")
		}
	})
}
