// Package rules is Vigil's detection engine: rules written in CEL inside YAML files, evaluated
// on every bound line the sensor writes, with the session, prompt and tool call of the line in
// scope, and raising alert lines. It also holds the path predicates (SecretLooking, CABundle…)
// that rules call as CEL functions and that the workflow record uses.
package rules

import (
	"path"
	"strings"
)

// secretNames are file names that hold credentials wherever they are.
var secretNames = map[string]bool{
	".env": true, ".netrc": true, "_netrc": true, ".npmrc": true, ".pypirc": true, ".pgpass": true,
	".git-credentials": true, ".htpasswd": true, "id_rsa": true, "id_dsa": true, "id_ecdsa": true,
	"id_ed25519": true, "id_ecdsa_sk": true, "id_ed25519_sk": true, "credentials.json": true,
	"secrets.json": true, "secrets.yaml": true, "secrets.yml": true, ".vault-token": true,
}

// secretSuffixes are extensions of key and certificate-bundle files.
var secretSuffixes = []string{".pem", ".key", ".p12", ".pfx", ".keystore", ".jks", ".kdbx"}

// secretDirs are files whose name only says "secret" inside their tool's directory.
var secretDirs = []string{"/.aws/credentials", "/.aws/config", "/.docker/config.json", "/.kube/config",
	"/.config/gh/hosts.yml", "/.ssh/", "/.gnupg/", "/.config/gcloud/",
	"/.claude/.credentials.json", "/.codex/auth.json", "/.gemini/oauth_creds.json"}

// SecretLooking reports whether a path looks like it holds credentials: .env files (not
// .env.example and similar templates), keys and certificates (*.pem, *.key, *.p12), SSH private
// keys and anything under ~/.ssh except public keys and known_hosts, .aws/credentials, .npmrc,
// .netrc, .pypirc, .git-credentials, docker and kube configs, the coding agents' login tokens.
// Public CA bundles are not secrets
// (CABundle): every TLS client reads them, Claude Code at each start.
func SecretLooking(p string) bool {
	base := path.Base(p)
	if strings.HasSuffix(base, ".pub") || base == "known_hosts" || base == "known_hosts.old" {
		return false
	}
	if secretNames[base] {
		return true
	}
	if rest, ok := strings.CutPrefix(base, ".env."); ok {
		switch rest {
		case "example", "sample", "template", "dist", "defaults":
			return false
		}
		return true
	}
	for _, s := range secretSuffixes {
		if strings.HasSuffix(base, s) {
			return !CABundle(p)
		}
	}
	// Every secretDirs entry starts with "/.", which most paths lack: one search, not eleven,
	// on the opens of a build or a test run.
	if !strings.Contains(p, "/.") {
		return false
	}
	for _, d := range secretDirs {
		if strings.Contains(p, d) {
			return true
		}
	}
	return false
}

// caDirs hold the system's public CA certificates (Debian, Fedora/RHEL, Alpine, macOS, the
// OpenSSL build directory /usr/lib/ssl that Debian links to /etc/ssl).
var caDirs = []string{
	"/etc/ssl/certs/", "/usr/share/ca-certificates/", "/usr/local/share/ca-certificates/",
	"/etc/ca-certificates/", "/etc/pki/tls/certs/", "/etc/pki/ca-trust/", "/usr/lib/ssl/certs/",
	"/etc/ssl/cert.pem", "/usr/lib/ssl/cert.pem", "/etc/pki/tls/cert.pem", "/usr/local/etc/openssl/cert.pem",
	"/private/etc/ssl/cert.pem",
}

// caNames are the file names language runtimes ship their public CA bundle under: certifi's
// cacert.pem (pip, requests, the gcloud and az CLIs), node's and curl's ca-bundle files.
var caNames = map[string]bool{
	"cacert.pem": true, "ca-bundle.pem": true, "ca-bundle.crt": true, "ca-certificates.crt": true,
	"ca-certificates.pem": true, "tls-ca-bundle.pem": true, "root-certs.pem": true,
}

// CABundle reports whether p is a public CA certificate or bundle: world-readable, read by
// every TLS client at start, and never a secret whatever its extension.
func CABundle(p string) bool {
	for _, d := range caDirs {
		if strings.HasPrefix(p, d) {
			return true
		}
	}
	return caNames[path.Base(p)]
}
