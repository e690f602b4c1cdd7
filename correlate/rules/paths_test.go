package rules

import "testing"

func TestGlob(t *testing.T) {
	for _, tt := range []struct {
		pattern, name string
		want          bool
	}{
		{"**/.git/hooks/*", "/home/dev/app/.git/hooks/pre-commit", true},
		{"**/.git/hooks/*", "/home/dev/app/.git/hooks/sub/x", false},
		{"**/.git/hooks/*", "/home/dev/app/x.git/hooks/pre-commit", false},
		{"**/.claude.json", "/home/dev/.claude.json", true},
		{"**/.claude.json", "/home/dev/x.claude.json", false},
		{"**/.claude/hooks/**", "/home/dev/app/.claude/hooks/a/b.sh", true},
		{"/etc/claude-code/**", "/etc/claude-code/managed-settings.json", true},
		{"/etc/profile.d/*", "/etc/profile.d/x.sh", true},
		{"/etc/profile.d/*", "/etc/profile.d", false},
		{"/etc/ssh/ssh_host_*_key", "/etc/ssh/ssh_host_ed25519_key", true},
		{"/etc/ssh/ssh_host_*_key", "/etc/ssh/ssh_host_ed25519_key.pub", false},
		{"a?c", "abc", true},
		{"a?c", "a/c", false},
	} {
		if got := Glob(tt.pattern, tt.name); got != tt.want {
			t.Errorf("Glob(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func TestHomeRelAndUnder(t *testing.T) {
	for p, want := range map[string]string{
		"/home/dev/.ssh/id_rsa": ".ssh/id_rsa", "/root/.bashrc": ".bashrc", "/Users/ann/Library/LaunchAgents/x.plist": "Library/LaunchAgents/x.plist",
		"/home/dev": "", "/etc/passwd": "", "/var/root/.zshrc": ".zshrc",
	} {
		if got := HomeRel(p); got != want {
			t.Errorf("HomeRel(%q) = %q, want %q", p, got, want)
		}
	}
	for _, tt := range []struct {
		p, dir string
		want   bool
	}{
		{"/home/dev/app/x", "/home/dev/app", true}, {"/home/dev/app", "/home/dev/app", true},
		{"/home/dev/apple", "/home/dev/app", false}, {"/home/dev/app/x", "/home/dev/app/", true},
		{"/x", "", false}, {"/x", "/", true},
	} {
		if got := Under(tt.p, tt.dir); got != tt.want {
			t.Errorf("Under(%q, %q) = %v", tt.p, tt.dir, got)
		}
	}
}

func TestProgramAndStdinShell(t *testing.T) {
	for _, tt := range []struct {
		exe  string
		args []string
		want string
	}{
		{"/usr/local/bin/kubectl", []string{"kubectl", "apply"}, "kubectl"},
		{"/usr/bin/python3", []string{"python3", "/usr/local/bin/aws", "s3", "ls"}, "aws"},
		{"/usr/bin/python3", []string{"python3", "-c", "print(1)"}, "python3"},
		{"/usr/bin/node", []string{"node", "/usr/lib/node_modules/npm/bin/npm-cli.js"}, "npm-cli.js"},
		{"/usr/bin/node", []string{"node", "/usr/bin/npm", "test"}, "npm"},
		{"", []string{"/usr/bin/git", "status"}, "git"},
	} {
		if got := Program(tt.exe, tt.args); got != tt.want {
			t.Errorf("Program(%q, %q) = %q, want %q", tt.exe, tt.args, got, tt.want)
		}
	}
	for cl, want := range map[string]bool{
		"sh": true, "bash -s -- --prefix=/usr": true, "python3 -": true, "sudo bash": true, "sudo -E sh": true,
		"sh install.sh": false, "bash -c ls": false, "curl https://x": false, "": false, "/usr/bin/bash -x": true,
	} {
		if got := StdinShell(cl); got != want {
			t.Errorf("StdinShell(%q) = %v, want %v", cl, got, want)
		}
	}
}

func TestSecretArgAndEndpoints(t *testing.T) {
	for a, want := range map[string]bool{
		"@.env": true, "file=@/home/dev/.aws/credentials": true, "--upload-file=/home/dev/.netrc": true,
		"/home/dev/.ssh/id_rsa": true, "https://example.com": false, "-T": false, "@-": false, "x.env.example": false,
	} {
		if got := SecretArg(a); got != want {
			t.Errorf("SecretArg(%q) = %v, want %v", a, got, want)
		}
	}
	for ep, want := range map[string]bool{
		"203.0.113.7:443": true, "127.0.0.1:8080": false, "10.1.2.3:80": false, "192.168.1.1": false,
		"100.100.1.1:443": false, "[2a00:1450:4001:82b::2011]:443": true, "[::1]:53": false, "/run/docker.sock": false,
		"169.254.169.254:80": false, "[::ffff:10.0.0.1]:80": false,
	} {
		if got := PublicEndpoint(ep); got != want {
			t.Errorf("PublicEndpoint(%q) = %v, want %v", ep, got, want)
		}
	}
}

func TestScratchAndAgentConfig(t *testing.T) {
	for p, want := range map[string]bool{
		"/tmp/x": true, "/home/dev/.cache/go-build/ab": true, "/home/dev/.claude/todos/x.json": true,
		"/home/dev/.claude/settings.json": false, "/home/dev/.bashrc": false, "/home/dev/other/x": false,
		"/etc/hosts": false, "/home/dev/.bash_history": true,
	} {
		if got := ScratchPath(p); got != want {
			t.Errorf("ScratchPath(%q) = %v, want %v", p, got, want)
		}
	}
	for p, want := range map[string]bool{
		"/home/dev/.claude/settings.json": true, "/home/dev/app/.claude/settings.local.json": true,
		"/home/dev/app/.mcp.json": true, "/home/dev/.codex/config.toml": true, "/etc/claude-code/managed-settings.json": true,
		"/home/dev/.claude/todos/x.json": false, "/home/dev/app/settings.json": false,
	} {
		if got := AgentConfigPath(p); got != want {
			t.Errorf("AgentConfigPath(%q) = %v, want %v", p, got, want)
		}
	}
}
