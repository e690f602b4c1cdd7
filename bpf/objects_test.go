package bpf

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
)

// x86OnlySyscalls are the path calls x86-64 keeps beside their *at forms. arm64's system call
// table, the generic one (include/uapi/asm-generic/unistd.h), never had them: they have no
// tracepoint there, and attaching to one would fail the sensor's start.
var x86OnlySyscalls = []string{"open", "creat", "rename", "unlink", "rmdir", "link", "symlink", "chmod", "chown", "lchown"}

const syscallExit = "tracepoint/syscalls/sys_exit_"

// TestObjectsPerArchitecture checks the arm64 object on any machine, since no arm64 one runs
// the tests: it has a program on no syscall tracepoint arm64 lacks, and otherwise exactly the
// x86-64 object's programs, on the same hooks, with the same maps and variables.
func TestObjectsPerArchitecture(t *testing.T) {
	x86 := loadObject(t, "vigil_x86_bpfel.o")
	arm64 := loadObject(t, "vigil_arm64_bpfel.o")

	x86Sections := map[string]bool{}
	for name, p := range x86.Programs {
		x86Sections[p.SectionName] = true
		call, _ := strings.CutPrefix(p.SectionName, syscallExit)
		if slices.Contains(x86OnlySyscalls, call) {
			continue
		}
		switch q, ok := arm64.Programs[name]; {
		case !ok:
			t.Errorf("program %s (%s) is missing from the arm64 object", name, p.SectionName)
		case q.SectionName != p.SectionName:
			t.Errorf("program %s is on %s in the arm64 object, on %s in the x86-64 one", name, q.SectionName, p.SectionName)
		}
	}
	for _, call := range x86OnlySyscalls {
		if !x86Sections[syscallExit+call] {
			t.Errorf("the x86-64 object has no program for %s(2)", call)
		}
	}
	for name, p := range arm64.Programs {
		if call, ok := strings.CutPrefix(p.SectionName, syscallExit); ok && slices.Contains(x86OnlySyscalls, call) {
			t.Errorf("arm64 program %s is on %s: arm64 has no %s(2)", name, p.SectionName, call)
		} else if _, ok := x86.Programs[name]; !ok {
			t.Errorf("arm64 program %s (%s) is not in the x86-64 object", name, p.SectionName)
		}
	}
	if x, a := slices.Sorted(maps.Keys(x86.Maps)), slices.Sorted(maps.Keys(arm64.Maps)); !slices.Equal(x, a) {
		t.Errorf("maps differ: x86-64 %v, arm64 %v", x, a)
	}
	if x, a := slices.Sorted(maps.Keys(x86.Variables)), slices.Sorted(maps.Keys(arm64.Variables)); !slices.Equal(x, a) {
		t.Errorf("variables differ: x86-64 %v, arm64 %v", x, a)
	}
}

func loadObject(t *testing.T, file string) *ebpf.CollectionSpec {
	t.Helper()
	spec, err := ebpf.LoadCollectionSpec(file)
	if err != nil {
		t.Fatalf("read %s: %v", file, err)
	}
	return spec
}
