package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// installManaged configures the agents as a fleet would: `vigil install` into a scratch
// root, pointed at the scenario's OTLP receiver and hook socket, then that root's /etc laid
// over the machine's for this child (its own mount namespace, see main.go), so the agent
// reads its managed files where it always does and the machine's /etc is never written.
func installManaged(o childOpts) error {
	root := filepath.Join(o.dir, "managed-root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	cfg := filepath.Join(o.dir, "managed-install.yaml")
	yaml := fmt.Sprintf("correlate:\n  otlp_http: %s\n  hook_socket: %s\n  hook_undelivered_dir: %s\n",
		otlpAddr, filepath.Join(o.dir, "hook.sock"), filepath.Join(o.dir, "hook-undelivered"))
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		return err
	}
	out, err := exec.Command(o.vigil, "install", "--root", root, "--binary", o.vigil, "--config", cfg).CombinedOutput()
	os.WriteFile(filepath.Join(o.dir, "managed-install.txt"), out, 0o644)
	if err != nil {
		return fmt.Errorf("vigil install --root %s: %v: %s", root, err, out)
	}
	// A read-only overlay: the installed files first, the machine's /etc beneath.
	opts := "lowerdir=" + filepath.Join(root, "etc") + ":/etc"
	if out, err := exec.Command("mount", "-t", "overlay", "vigil-managed", "-o", opts, "/etc").CombinedOutput(); err != nil {
		return fmt.Errorf("mount the installed /etc over the machine's: %v: %s", err, out)
	}
	return nil
}
