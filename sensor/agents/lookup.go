package agents

import (
	"fmt"
	"slices"
	"strings"

	"github.com/vigil-sensor/vigil/proto"
)

// All returns a copy of every descriptor, in catalog order.
func All() []Agent {
	out := make([]Agent, len(registry))
	for i, a := range registry {
		out[i] = a
		out[i].Binaries = slices.Clone(a.Binaries)
		out[i].Scripts = slices.Clone(a.Scripts)
		out[i].Paths = slices.Clone(a.Paths)
		out[i].Env = slices.Clone(a.Env)
		out[i].ServiceNames = slices.Clone(a.ServiceNames)
		out[i].ServicePrefixes = slices.Clone(a.ServicePrefixes)
		out[i].HookNames = slices.Clone(a.HookNames)
		out[i].Managed = slices.Clone(a.Managed)
		out[i].Home = slices.Clone(a.Home)
		out[i].Project = slices.Clone(a.Project)
	}
	return out
}

// OwnedKey is an environment join key with the agent that sets it ("" for a shared one).
type OwnedKey struct {
	EnvKey
	Agent string
}

// EnvKeys returns every environment join key, shared ones first: the kernel's allowlist, in
// the order of its value slots.
func EnvKeys() []OwnedKey {
	var out []OwnedKey
	for _, k := range Shared {
		out = append(out, OwnedKey{EnvKey: k})
	}
	for _, a := range registry {
		for _, k := range a.Env {
			out = append(out, OwnedKey{EnvKey: k, Agent: a.Name})
		}
	}
	return out
}

// envIndex maps a variable's name to its key, built once.
var envIndex = func() map[string]OwnedKey {
	m := map[string]OwnedKey{}
	for _, k := range EnvKeys() {
		m[k.Name] = k
	}
	return m
}()

// ForService maps an OTLP resource's service.name to the agent it names, "" for none.
func ForService(serviceName string) string {
	for _, a := range registry {
		if slices.Contains(a.ServiceNames, serviceName) {
			return a.Name
		}
		for _, p := range a.ServicePrefixes {
			if strings.HasPrefix(serviceName, p) {
				return a.Name
			}
		}
	}
	return ""
}

// ForHook maps a `vigil hook --agent` value to the agent's name, case-insensitively; ""
// stays "" (the payload decides). Any other value is an error naming the accepted ones.
func ForHook(value string) (string, error) {
	v := strings.ToLower(strings.TrimSpace(value))
	if v == "" {
		return "", nil
	}
	var known []string
	for _, a := range registry {
		if slices.Contains(a.HookNames, v) {
			return a.Name, nil
		}
		if len(a.HookNames) > 0 {
			known = append(known, a.HookNames[0])
		}
	}
	return "", fmt.Errorf("unknown hook agent %q (want one of %s)", value, strings.Join(known, ", "))
}

// NPMRoots returns npm's global roots the registry's install paths are under (glob patterns).
func NPMRoots() []string { return slices.Clone(npmRoots) }

// Binaries returns every agent's executable basenames.
func Binaries() []string {
	var out []string
	for _, a := range registry {
		out = append(out, a.Binaries...)
	}
	return out
}

// Keep stores value in keys when name is a registry join key and reports whether it was;
// any other variable is never kept.
func Keep(keys *proto.JoinKeys, name, value string) bool {
	k, ok := envIndex[name]
	if !ok {
		return false
	}
	return keys.Set(k.Agent, string(k.Role), value)
}

// JoinKeysOf keeps the join keys of an environment given as NAME=VALUE strings; nil when it
// holds none.
func JoinKeysOf(env ...string) *proto.JoinKeys {
	var keys proto.JoinKeys
	for _, kv := range env {
		if name, value, ok := strings.Cut(kv, "="); ok {
			Keep(&keys, name, value)
		}
	}
	if keys.Empty() {
		return nil
	}
	return &keys
}

// byName returns the registry's descriptor of agent, nil for an unknown name.
func byName(agent string) *Agent {
	for i := range registry {
		if registry[i].Name == agent {
			return &registry[i]
		}
	}
	return nil
}

// ManagedPath returns where agent's managed configuration of the kind what ("settings",
// "settings.d", "hooks", "config") lives on goos, if it has one there: the first such entry.
func ManagedPath(agent, goos, what string) (string, bool) {
	if a := byName(agent); a != nil {
		for _, c := range a.Managed {
			if c.GOOS == goos && c.What == what {
				return c.Path, true
			}
		}
	}
	return "", false
}

// HookName returns the canonical `vigil hook --agent` value naming agent, the agent's name
// when it has none.
func HookName(agent string) string {
	if a := byName(agent); a != nil && len(a.HookNames) > 0 {
		return a.HookNames[0]
	}
	return agent
}

// HooksCarryTraceParent reports whether agent runs its hooks with a TRACEPARENT of its own.
func HooksCarryTraceParent(agent string) bool {
	a := byName(agent)
	return a != nil && a.HooksCarryTraceParent
}
