// Package rules is where Vigil's detection rules live: predicates over bound events that a
// detection engineer would otherwise write by hand.
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
	"/.config/gh/hosts.yml", "/.ssh/", "/.gnupg/", "/.config/gcloud/"}

// SecretLooking reports whether a path looks like it holds credentials: .env files (not
// .env.example and similar templates), keys and certificates (*.pem, *.key, *.p12), SSH private
// keys and anything under ~/.ssh except public keys and known_hosts, .aws/credentials, .npmrc,
// .netrc, .pypirc, .git-credentials, docker and kube configs.
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
			return true
		}
	}
	for _, d := range secretDirs {
		if strings.Contains(p, d) {
			return true
		}
	}
	return false
}
