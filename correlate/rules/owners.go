package rules

import (
	"fmt"
	"path"
	"strings"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor/agents"
)

// Who may read a secret. Each kind of credential file has programs whose job is to read it:
// ssh its keys, aws its credentials, git and its credential helpers ~/.git-credentials. Such a
// read, followed by that program connecting out, is the program doing its job (`aws s3 ls`,
// `git push`), not exfiltration. The credential rules of the starter pack exclude a secret's
// own clients with own_client(), and the secrets_read aggregates leave their reads out
// (detector.go), so the lists below exist once.
//
// Clients are named as event.process.program names them (Program): the executable's base name,
// or the script's for an interpreter. A line other than an exec carries no argv, so on the
// open of a Node CLI event.process.program is the interpreter itself (`node` for npm), and
// Gradle and Maven run in `java`: those runtimes are listed where their package manager needs
// them. The aggregates know better: the detector remembers the script a process runs
// (SecretReads.Reader), so there npm's open is npm's and a node script's is the script's.

// SecretFamily is one kind of credential file and its own clients.
type SecretFamily struct {
	// Name is the family in a word or two ("aws", "kubernetes").
	Name string
	// Home are paths relative to a home directory (HomeRel); one ending in "/" is a
	// directory and holds everything under it.
	Home []string
	// Names are file names that belong to the family wherever they are (.npmrc of a project
	// too).
	Names []string
	// Paths are absolute paths or Glob patterns outside home directories.
	Paths []string
	// Clients are the programs that read the family's files to do their job.
	Clients []string
}

// terraformish are the infrastructure tools that read every cloud's credentials through their
// providers.
var terraformish = []string{"terraform", "tofu", "pulumi"}

func clients(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// secretFamilies is the table. Every list of a pack rule's former `program in [...]` is here,
// split by the family each program is a client of; netrc, vault and postgresql have no rule.
var secretFamilies = []SecretFamily{
	{Name: "ssh", Home: []string{".ssh/"}, Paths: []string{"/etc/ssh/ssh_host_*_key"},
		Clients: []string{"ssh", "ssh-agent", "ssh-add", "scp", "sftp", "git", "ssh-keygen"}},

	// Cloud CLIs. gcloud, gsutil and bq are Python scripts of the Cloud SDK (their process
	// runs lib/gcloud.py, bin/bootstrapping/gsutil.py…); az runs `python3 -Im azure.cli`.
	{Name: "aws", Home: []string{".aws/"}, Clients: clients([]string{"aws"}, terraformish)},
	{Name: "google-cloud", Home: []string{".config/gcloud/"},
		Clients: clients([]string{"gcloud", "gsutil", "bq", "gcloud.py", "gsutil.py", "bq.py", "docker-credential-gcloud"}, terraformish)},
	{Name: "azure", Home: []string{".azure/"}, Clients: clients([]string{"az", "azure.cli"}, terraformish)},
	{Name: "oracle-cloud", Home: []string{".oci/"}, Clients: clients([]string{"oci"}, terraformish)},
	{Name: "digitalocean", Home: []string{".config/doctl/"}, Clients: clients([]string{"doctl"}, terraformish)},

	{Name: "kubernetes", Home: []string{".kube/"}, Paths: []string{"/etc/kubernetes/admin.conf", "/etc/rancher/k3s/k3s.yaml"},
		Clients: []string{"kubectl", "helm", "k9s", "kubectx", "kubens", "kustomize", "minikube", "kind", "k3d", "terraform", "tofu"}},

	// Package registries, by ecosystem.
	{Name: "npm", Names: []string{".npmrc", ".yarnrc.yml"},
		Clients: []string{"npm", "npx", "node", "pnpm", "yarn", "bun", "corepack"}},
	{Name: "python-packages", Names: []string{".pypirc"}, Home: []string{".config/pip/pip.conf", ".pip/pip.conf"},
		Clients: []string{"pip", "pip3", "twine", "uv", "poetry", "pdm"}},
	{Name: "rubygems", Home: []string{".gem/credentials"}, Clients: []string{"gem", "bundle"}},
	{Name: "cargo", Home: []string{".cargo/credentials", ".cargo/credentials.toml"}, Clients: []string{"cargo"}},
	{Name: "composer", Home: []string{".composer/auth.json", ".config/composer/auth.json"}, Clients: []string{"composer"}},
	{Name: "maven-gradle", Home: []string{".m2/settings-security.xml", ".gradle/gradle.properties"},
		Clients: []string{"mvn", "gradle", "gradlew", "java"}},
	{Name: "nuget", Home: []string{".nuget/NuGet/NuGet.Config"}, Clients: []string{"dotnet", "nuget"}},

	{Name: "docker", Home: []string{".docker/config.json"},
		Clients: []string{"docker", "docker-compose", "buildx", "docker-buildx", "podman", "skopeo", "crane",
			"ko", "kind", "minikube", "dockerd", "containerd", "nerdctl", "com.docker.cli"}},

	// git reads ~/.git-credentials through its helper (`git credential-store`, a git process);
	// its remote helpers git-remote-http(s) ask for credentials and read ~/.netrc (libcurl).
	{Name: "git", Names: []string{".git-credentials"}, Home: []string{".config/git/credentials"},
		Clients: []string{"git", "git-credential-store", "git-credential-cache", "git-remote-https", "git-remote-http"}},
	{Name: "github-cli", Home: []string{".config/gh/", ".config/hub"}, Clients: []string{"gh", "hub"}},
	// wget reads ~/.netrc on every request, curl with -n. curl handed the file to send
	// (curl -T ~/.netrc) is exfil.secret_passed_to_network_tool's.
	{Name: "netrc", Names: []string{".netrc", "_netrc"},
		Clients: []string{"curl", "wget", "git-remote-https", "git-remote-http"}},

	// Password stores and keyrings. pass decrypts its entries with gpg.
	{Name: "gnupg", Home: []string{".gnupg/"}, Clients: []string{"gpg", "gpg2", "gpg-agent"}},
	{Name: "pass", Home: []string{".password-store/"}, Clients: []string{"pass", "gpg", "gpg2", "gpg-agent"}},
	{Name: "gnome-keyring", Home: []string{".local/share/keyrings/"}, Clients: []string{"gnome-keyring-daemon"}},
	{Name: "macos-keychain", Home: []string{"Library/Keychains/"}, Clients: []string{"securityd"}},

	// The coding agents' own login tokens (Claude Code's OAuth credentials on Linux, Codex's
	// auth.json, Gemini CLI's OAuth credentials): a tool call reading them steals the agent's
	// account. Their client is the agent itself, whose program name is not always its own
	// (Claude Code's native binary is named after its version, ~/.local/share/claude/versions/2.0.50):
	// a read by the agent tree's root is also the agent's (AgentOwnRead).
	{Name: "coding-agent", Home: []string{".claude/.credentials.json", ".codex/auth.json", ".gemini/oauth_creds.json"},
		Clients: agents.Binaries()},

	// Tokens that secret_path() knows and no pack rule names: their clients' reads are not
	// secret reads either (`vault kv get`, `psql -h db.example.com`).
	{Name: "vault", Names: []string{".vault-token"}, Clients: []string{"vault", "terraform", "tofu"}},
	{Name: "postgresql", Names: []string{".pgpass"},
		Clients: []string{"psql", "pg_dump", "pg_dumpall", "pg_restore", "pg_basebackup", "pgcli"}},
}

// familiesByClient indexes the families by client, so that OwnClient rejects a program that
// is nobody's client (cat, python3, curl on a key) with one map lookup.
var familiesByClient = func() map[string][]*SecretFamily {
	m := map[string][]*SecretFamily{}
	for i := range secretFamilies {
		f := &secretFamilies[i]
		for _, c := range f.Clients {
			m[c] = append(m[c], f)
		}
	}
	return m
}()

// agentFamily is the coding agents' credentials.
var agentFamily = func() *SecretFamily {
	for i := range secretFamilies {
		if secretFamilies[i].Name == "coding-agent" {
			return &secretFamilies[i]
		}
	}
	panic("rules: the secret families have no coding-agent family")
}()

// AgentOwnRead reports whether an open is an agent reading its own credentials: a coding
// agent's credential file opened by the root of the agent tree the line belongs to.
func AgentOwnRead(e *proto.Event) bool {
	return e.File != nil && byAgent(e) && agentFamily.Holds(e.File.Path)
}

// SecretFamilies returns the table of secret families and their own clients.
func SecretFamilies() []SecretFamily {
	out := make([]SecretFamily, len(secretFamilies))
	copy(out, secretFamilies)
	return out
}

// Holds reports whether the file at p belongs to the family.
func (f *SecretFamily) Holds(p string) bool {
	return f.holds(p, HomeRel(p), path.Base(p))
}

func (f *SecretFamily) holds(p, rel, base string) bool {
	for _, n := range f.Names {
		if base == n {
			return true
		}
	}
	if rel != "" {
		for _, h := range f.Home {
			if rel == h || (strings.HasSuffix(h, "/") && strings.HasPrefix(rel, h)) {
				return true
			}
		}
	}
	for _, g := range f.Paths {
		if Glob(g, p) {
			return true
		}
	}
	return false
}

// OwnClient reports whether program is an own client of the secret at p: p belongs to a
// family of the table and program is one of the family's clients (`aws` for ~/.aws/credentials,
// `git` for ~/.git-credentials). A path of no family has no own client.
func OwnClient(p, program string) bool {
	fams := familiesByClient[program]
	if len(fams) == 0 {
		return false
	}
	rel, base := HomeRel(p), path.Base(p)
	for _, f := range fams {
		if f.holds(p, rel, base) {
			return true
		}
	}
	return false
}

// ownersReference is the table as `vigil rules list --reference` prints it.
func ownersReference() string {
	var b strings.Builder
	for _, f := range secretFamilies {
		var where []string
		for _, h := range f.Home {
			where = append(where, "~/"+h)
		}
		for _, n := range f.Names {
			where = append(where, "**/"+n)
		}
		where = append(where, f.Paths...)
		fmt.Fprintf(&b, "  %-15s %s\n  %-15s   read by: %s\n", f.Name, strings.Join(where, " "), "", strings.Join(f.Clients, ", "))
	}
	return b.String()
}
