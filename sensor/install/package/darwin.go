package main

import (
	"bytes"
	"debug/macho"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/vigil-sensor/vigil/sensor/install"
)

// darwinFiles are the macOS package's files kept in the repository (darwin/package), copied
// into dist/darwin with their modes.
var darwinFiles = []struct {
	name string
	mode os.FileMode
}{
	{"build-pkg.sh", 0o755},
	{"uninstall.sh", 0o755},
	{"scripts/preinstall", 0o755},
	{"scripts/postinstall", 0o755},
	{"com.vigil-sensor.vigil.pppc.mobileconfig", 0o644},
}

// darwinPayload lays dist/darwin, everything the macOS package is built from, so that a Mac
// only runs build-pkg.sh (pkgbuild, productbuild and the optional signing):
//
//	root/usr/local/bin/vigil                                the universal binary (amd64+arm64)
//	root/Library/LaunchDaemons/com.vigil-sensor.vigil.plist the LaunchDaemon
//	scripts/{preinstall,postinstall}, uninstall.sh, build-pkg.sh, the PPPC profile, VERSION
//
// The payload's binary and plist are what `vigil install` would write, so the postinstall's
// `vigil install` leaves them as they are, as on Linux.
func (b *builder) darwinPayload() (string, error) {
	dir := filepath.Join(b.out, "darwin")
	// A payload left from another version must not ship its files with this one.
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("clear %s: %w", dir, err)
	}
	var exes []string
	for _, arch := range []string{"amd64", "arm64"} {
		exe, err := b.compile("darwin", arch)
		if err != nil {
			return "", err
		}
		exes = append(exes, exe)
	}
	root := filepath.Join(dir, "root")
	universal, err := universalBinary(exes)
	if err != nil {
		return "", err
	}
	if err := writeFile(filepath.Join(root, install.DefaultBinary), universal, 0o755); err != nil {
		return "", err
	}
	plistPath, plist, err := install.ServiceFile("darwin", install.DefaultBinary)
	if err != nil {
		return "", err
	}
	// launchd refuses a daemon plist that is not root's 0644 (pkgbuild records root:wheel).
	if err := writeFile(filepath.Join(root, plistPath), plist, 0o644); err != nil {
		return "", err
	}
	for _, f := range darwinFiles {
		content, err := os.ReadFile(filepath.Join(b.repo, "darwin", "package", f.name))
		if err != nil {
			return "", fmt.Errorf("read darwin/package/%s: %w", f.name, err)
		}
		if err := writeFile(filepath.Join(dir, f.name), content, f.mode); err != nil {
			return "", err
		}
	}
	if err := writeFile(filepath.Join(dir, "VERSION"), []byte(b.version+"\n"), 0o644); err != nil {
		return "", err
	}
	return dir, nil
}

// writeFile writes content with exactly mode (past the umask), making its directories 0755.
func writeFile(path string, content []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create the directory of %s: %w", path, err)
	}
	if err := os.WriteFile(path, content, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(path, mode); err != nil {
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	return nil
}

// fatAlign is the slices' alignment in the universal file, as a power of two: 16 KiB, arm64's
// page size and a multiple of x86-64's 4 KiB, as lipo aligns arm64 slices.
const fatAlign = 14

// universalBinary joins Mach-O executables into one universal (fat) file, as lipo -create
// does, so that the macOS binary is built on Linux with the rest: a big-endian fat header, one
// fat_arch record (cputype, cpusubtype, offset, size, align) per slice, and each slice whole
// at an aligned offset, in cputype order (x86-64 before arm64, as lipo writes them). Each
// slice keeps the code signature the Go linker gave it; codesign re-signs them all.
func universalBinary(exes []string) ([]byte, error) {
	type slice struct {
		cpu  macho.Cpu
		sub  uint32
		data []byte
	}
	var ss []slice
	for _, exe := range exes {
		f, err := macho.Open(exe)
		if err != nil {
			return nil, fmt.Errorf("read the Mach-O header of %s: %w", exe, err)
		}
		cpu, sub := f.Cpu, f.SubCpu
		f.Close()
		data, err := os.ReadFile(exe)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", exe, err)
		}
		ss = append(ss, slice{cpu, sub, data})
	}
	slices.SortFunc(ss, func(a, b slice) int { return int(a.cpu) - int(b.cpu) })
	alignUp := func(n int) int { return (n + 1<<fatAlign - 1) &^ (1<<fatAlign - 1) }
	const fatHeaderSize, fatArchSize = 8, 20
	var out bytes.Buffer
	// bytes.Buffer's writes cannot fail: binary.Write's errors are those of the writer.
	binary.Write(&out, binary.BigEndian, [2]uint32{macho.MagicFat, uint32(len(ss))})
	offset := alignUp(fatHeaderSize + fatArchSize*len(ss))
	for _, s := range ss {
		binary.Write(&out, binary.BigEndian, [5]uint32{uint32(s.cpu), s.sub, uint32(offset), uint32(len(s.data)), fatAlign})
		offset = alignUp(offset + len(s.data))
	}
	for _, s := range ss {
		out.Write(make([]byte, alignUp(out.Len())-out.Len()))
		out.Write(s.data)
	}
	return out.Bytes(), nil
}
