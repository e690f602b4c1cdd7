// Package floor attaches empty eBPF programs to the hooks Vigil uses, so the benchmark can
// measure the cost of the hooks themselves (the floor) apart from what Vigil's programs do.
// The generated floor_bpfel.go and floor_bpfel.o are committed so that building needs no clang.
package floor

//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -D__TARGET_ARCH_x86" -target bpfel Floor floor.bpf.c -- -I../../bpf
