package rules

import "testing"

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
