// Command collector is a real OpenTelemetry Collector, built from the collector's own Go
// modules with only what the OTLP exporter's tests need: the OTLP receiver (gRPC and HTTP)
// and the contrib file exporter, whose output the tests read back. It is a module of its
// own so that the sensor's go.mod never pulls the collector's dependency tree; the tests
// build it with `go build` (cached by Go's build cache) and run it on loopback ports.
package main

import (
	"fmt"
	"os"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/fileexporter"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"
)

func main() {
	set := otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{Command: "vigil-test-collector", Description: "OTLP receiver + file exporter for Vigil's tests", Version: "test"},
		Factories: factories,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				ProviderFactories: []confmap.ProviderFactory{fileprovider.NewFactory()},
				DefaultScheme:     "file",
			},
		},
	}
	if err := otelcol.NewCommand(set).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "collector:", err)
		os.Exit(1)
	}
}

// factories are the collector's only components: what arrives over OTLP goes to a file, and
// the collector's own telemetry is configured as in the standard distributions.
func factories() (otelcol.Factories, error) {
	rf, ef := otlpreceiver.NewFactory(), fileexporter.NewFactory()
	return otelcol.Factories{
		Receivers: map[component.Type]receiver.Factory{rf.Type(): rf},
		Exporters: map[component.Type]exporter.Factory{ef.Type(): ef},
		Telemetry: otelconftelemetry.NewFactory(),
	}, nil
}
