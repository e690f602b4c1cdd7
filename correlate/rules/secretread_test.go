package rules

import (
	"testing"

	"github.com/vigil-sensor/vigil/proto"
)

func TestSecretReads(t *testing.T) {
	open := func(ent, exe, p, access string, failed bool) *proto.Event {
		e := &proto.Event{Event: proto.EventMeta{Action: proto.ActionOpen, Dataset: "vigil.kernel"},
			Process: &proto.Process{Pid: 1, EntityID: ent, Executable: exe}, File: &proto.File{Path: p, Access: access}}
		if failed {
			e.Event.Outcome = proto.OutcomeFailure
		}
		return e
	}
	exec := func(ent, exe string, args ...string) *proto.Event {
		return &proto.Event{Event: proto.EventMeta{Action: proto.ActionExec, Dataset: "vigil.kernel"},
			Process: &proto.Process{Pid: 1, EntityID: ent, Executable: exe, Args: args}}
	}
	rootOpen := func(exe, p string) *proto.Event {
		e := open("r", exe, p, "read", false)
		e.Vigil.Root = &proto.Root{Pid: e.Process.Pid, EntityID: "r"}
		return e
	}
	const gcloudCreds = "/home/dev/.config/gcloud/credentials.db"
	tests := []struct {
		name string
		e    *proto.Event
		want bool
	}{
		{"a .env read by cat", open("c", "/usr/bin/cat", "/home/dev/app/.env", "read", false), true},
		{"a CA bundle", open("c", "/usr/bin/node", "/etc/ssl/certs/ca-certificates.crt", "read", false), false},
		{"a CA certificate named .pem", open("c", "/usr/bin/node", "/etc/ssl/certs/ssl-cert-snakeoil.pem", "read", false), false},
		{"a failed read", open("c", "/usr/bin/cat", "/home/dev/.ssh/id_ed25519", "read", true), false},
		{"an O_PATH open reads nothing", open("c", "/usr/bin/ls", "/home/dev/.ssh/id_ed25519", "path", false), false},
		{"a write-only open reads nothing", open("c", "/usr/bin/tee", "/home/dev/app/.env", "write", false), false},
		{"read_write reads", open("c", "/usr/bin/vim", "/home/dev/app/.env", "read_write", false), true},
		{"aws reads its own credentials", open("c", "/usr/local/bin/aws", "/home/dev/.aws/credentials", "read", false), false},
		{"the exec of python3 running gcloud.py", exec("g", "/usr/bin/python3", "python3", "/usr/lib/google-cloud-sdk/lib/gcloud.py"), false},
		{"gcloud.py (an open of python3 without argv) reads its own credentials", open("g", "/usr/bin/python3", gcloudCreds, "read", false), false},
		{"another python3 reads them", open("x", "/usr/bin/python3", gcloudCreds, "read", false), true},
		{"g execs python3 -c: no script any more", exec("g", "/usr/bin/python3", "python3", "-c", "print(1)"), false},
		{"so its read is python3's", open("g", "/usr/bin/python3", gcloudCreds, "read", false), true},
		{"nil", nil, false},
		{"cat reads Claude Code's login token", open("c", "/usr/bin/cat", "/home/dev/.claude/.credentials.json", "read", false), true},
		{"Codex's native binary reads its own auth.json", open("x", "/usr/lib/node_modules/@openai/codex/bin/codex", "/home/dev/.codex/auth.json", "read", false), false},
		{"Claude Code (named after its version) reads its own token as the tree's root", rootOpen("/home/dev/.local/share/claude/versions/2.0.50", "/home/dev/.claude/.credentials.json"), false},
		{"the tree's root reads another family's secret", rootOpen("/home/dev/.local/share/claude/versions/2.0.50", "/home/dev/.aws/credentials"), true},
	}
	s := NewSecretReads(0)
	for _, tt := range tests {
		if got := s.Observe(tt.e); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
