package main

import (
	"os"
	"path/filepath"

	"github.com/vigil-sensor/vigil/sensor"
	"github.com/vigil-sensor/vigil/sensor/install"
)

// defaultConfigPath is read when it exists and no --config is given.
const defaultConfigPath = install.DefaultConfigPath

// loadConfig loads the configuration `vigil run` uses: the file given, else
// defaultConfigPath under root ("" or "/" for this host) when it exists, else the embedded
// defaults. It returns the file it read, "" for the defaults.
func loadConfig(given, root string) (sensor.Config, string, error) {
	path := given
	if path == "" {
		if _, err := os.Stat(filepath.Join(root, defaultConfigPath)); err == nil {
			path = filepath.Join(root, defaultConfigPath)
		}
	}
	cfg, err := sensor.LoadConfig(path)
	return cfg, path, err
}
