package rules

import (
	"strings"
	"testing"
)

func TestSecretLooking(t *testing.T) {
	for path, want := range map[string]bool{
		"/home/dev/app/.env":               true,
		"/home/dev/app/.env.local":         true,
		"/home/dev/app/.env.example":       false,
		"/etc/ssl/private/server.pem":      true,
		"/home/dev/app/tls.key":            true,
		"/home/dev/.ssh/id_rsa":            true,
		"/home/dev/.ssh/id_rsa.pub":        false,
		"/home/dev/.ssh/known_hosts":       false,
		"/home/dev/.ssh/config":            true,
		"/home/dev/.aws/credentials":       true,
		"/home/dev/.npmrc":                 true,
		"/home/dev/.netrc":                 true,
		"/home/dev/.git-credentials":       true,
		"/home/dev/.docker/config.json":    true,
		"/home/dev/app/config.json":        false,
		"/home/dev/app/parse_test.go":      false,
		"/home/dev/app/environment.go":     false,
		"/home/dev/.kube/config":           true,
		"/home/dev/app/keys/signing.p12":   true,
		"/home/dev/app/docs/keyboard.html": false,
	} {
		if got := SecretLooking(path); got != want {
			t.Errorf("SecretLooking(%q) = %v, want %v", path, got, want)
		}
	}
}

// TestCABundlesAreNotSecrets uses the CA files TLS clients read at start on Debian, Fedora,
// Alpine and macOS (Claude Code's node reads /etc/ssl/certs/ca-certificates.crt, OpenSSL's
// /usr/lib/ssl/cert.pem; pip and the gcloud CLI certifi's cacert.pem): none is a secret,
// while a private key in /etc/ssl/private still is.
func TestCABundlesAreNotSecrets(t *testing.T) {
	for _, p := range []string{
		"/etc/ssl/certs/ca-certificates.crt",
		"/etc/ssl/certs/ISRG_Root_X1.pem",
		"/etc/ssl/certs/4042bcee.0",
		"/etc/ssl/certs/ca-cert-DigiCert_Global_Root_G2.pem",
		"/usr/lib/ssl/cert.pem",
		"/usr/lib/ssl/certs/ca-certificates.crt",
		"/usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt",
		"/usr/local/share/ca-certificates/corp-root.pem",
		"/etc/pki/tls/certs/ca-bundle.crt",
		"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
		"/etc/ssl/cert.pem",
		"/usr/lib/python3/dist-packages/certifi/cacert.pem",
		"/home/dev/.local/lib/python3.12/site-packages/certifi/cacert.pem",
		"/home/dev/app/node_modules/some-client/ca-bundle.pem",
	} {
		if !CABundle(p) {
			t.Errorf("CABundle(%q) = false", p)
		}
		if SecretLooking(p) {
			t.Errorf("SecretLooking(%q) = true: a public CA bundle is not a secret", p)
		}
	}
	for _, p := range []string{"/etc/ssl/private/ssl-cert-snakeoil.key", "/etc/ssl/private/server.pem", "/home/dev/app/certs/server.key"} {
		if !SecretLooking(p) {
			t.Errorf("SecretLooking(%q) = false", p)
		}
	}
}

// TestSecretDirsStartWithSlashDot keeps SecretLooking's shortcut true: it looks for secretDirs
// only in paths that contain "/.".
func TestSecretDirsStartWithSlashDot(t *testing.T) {
	for _, d := range secretDirs {
		if !strings.HasPrefix(d, "/.") {
			t.Errorf("secretDirs entry %q does not start with /.", d)
		}
	}
}
