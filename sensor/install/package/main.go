// Command package builds Vigil's fleet packages (make package):
//
//	dist/vigil_<version>_<arch>.deb and dist/vigil-<version>.<rpmarch>.rpm for amd64 and arm64,
//	built with nfpm as a library, so no packaging tool needs to be installed;
//	dist/darwin/, the macOS package's payload root (a universal binary and the LaunchDaemon),
//	its scripts, the PPPC profile and build-pkg.sh, so that a Mac only runs pkgbuild.
//
// Every file it lays is rendered by the same code `vigil install` uses (install.ServiceFile,
// sensor.DefaultYAML), so that the package's maintainer script, which runs `vigil install`,
// finds the unit and the configuration already as it would write them and changes neither.
//
// Usage (from anywhere in the repository):
//
//	make package   (go run ./sensor/install/package -version "$(VERSION)" -ldflags "$(LDFLAGS)" -out dist)
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "package:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("package", flag.ContinueOnError)
	describe := fs.String("version", "", "the build's version as git describe --tags --always --dirty prints it (required)")
	ldflags := fs.String("ldflags", "", "the linker flags vigil is built with, the Makefile's LDFLAGS (-X main.version=... -X main.commit=...) (required)")
	out := fs.String("out", "dist", "the directory the packages are written to")
	arches := fs.String("arch", "amd64,arm64", "the Linux architectures to package, comma-separated")
	formats := fs.String("formats", "deb,rpm,darwin", "what to build, comma-separated: deb, rpm, darwin")
	maintainer := fs.String("maintainer", defaultMaintainer, "the packages' Maintainer/Packager field")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *describe == "" || *ldflags == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("-version and -ldflags are required and nothing else is taken")
	}
	want := strings.Split(*formats, ",")
	for _, f := range want {
		if !slices.Contains([]string{"deb", "rpm", "darwin"}, f) {
			return fmt.Errorf("-formats: unknown format %q (deb, rpm, darwin)", f)
		}
	}
	b, err := newBuilder(*describe, *ldflags, *out, *maintainer)
	if err != nil {
		return err
	}
	defer b.close()
	var linux []string
	for _, f := range want {
		if f != "darwin" {
			linux = append(linux, f)
		}
	}
	if len(linux) > 0 {
		for arch := range strings.SplitSeq(*arches, ",") {
			for _, format := range linux {
				path, err := b.linuxPackage(format, arch)
				if err != nil {
					return err
				}
				fmt.Println("wrote", path)
			}
		}
	}
	if slices.Contains(want, "darwin") {
		dir, err := b.darwinPayload()
		if err != nil {
			return err
		}
		fmt.Println("wrote", dir)
	}
	return nil
}
