// Command bench measures what Vigil costs the processes around it: the loadgen's loops
// (open+close, fork+exec, loopback connect) with no sensor, with empty programs on Vigil's hooks
// (the floor), and with `vigil run` following or ignoring the loadgen. Rounds are interleaved
// (each round runs every configuration once, in an order rotated per round) and medians are
// reported, because the VMs this runs on are small and shared. No timing is asserted; the
// output is a report (bench/results/quick.md and quick.json). See bench/README.md.
//
// Usage (as root): go run ./bench -vigil /tmp/vigil -loadgen /tmp/loadgen
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// options are the command line.
type options struct {
	vigil, loadgen string
	rounds         int
	n              map[string]int // timed operations per workload
	configs        []string
	out            string
}

func main() {
	var o options
	var nOpen, nForkExec, nConnect int
	var configs string
	flag.StringVar(&o.vigil, "vigil", "", "built vigil binary (go build -o /tmp/vigil ./cmd/vigil)")
	flag.StringVar(&o.loadgen, "loadgen", "", "built loadgen binary (go build -o /tmp/loadgen ./bench/loadgen)")
	flag.IntVar(&o.rounds, "rounds", 9, "interleaved rounds; each runs every configuration once")
	flag.IntVar(&nOpen, "n-open", 200000, "open+close operations per run")
	flag.IntVar(&nForkExec, "n-forkexec", 1000, "fork+exec operations per run")
	flag.IntVar(&nConnect, "n-connect", 10000, "connect operations per run")
	flag.StringVar(&configs, "configs", strings.Join(defaultConfigs, ","), "configurations to run, comma-separated (known: "+strings.Join(knownConfigs, ", ")+")")
	flag.StringVar(&o.out, "out", "bench/results", "directory for quick.md and quick.json")
	flag.Parse()
	o.n = map[string]int{"open": nOpen, "forkexec": nForkExec, "connect": nConnect}
	o.configs = strings.Split(configs, ",")
	if err := validate(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// validate checks the options before anything is started.
func validate(o options) error {
	if o.rounds < 1 {
		return fmt.Errorf("-rounds must be >= 1, got %d", o.rounds)
	}
	for w, n := range o.n {
		if n < 1 {
			return fmt.Errorf("-n-%s must be >= 1, got %d", w, n)
		}
	}
	seen := map[string]bool{}
	for _, c := range o.configs {
		if !isKnown(c) {
			return fmt.Errorf("unknown configuration %q (known: %s)", c, strings.Join(knownConfigs, ", "))
		}
		if seen[c] {
			return fmt.Errorf("configuration %q given twice", c)
		}
		seen[c] = true
	}
	if !seen[configNone] {
		return fmt.Errorf("-configs must include %q: overheads are relative to it", configNone)
	}
	return nil
}

func isKnown(c string) bool {
	for _, k := range knownConfigs {
		if c == k {
			return true
		}
	}
	return false
}
