// Package floor attaches empty eBPF programs to the hooks Vigil uses, so the benchmark can
// measure the cost of the hooks themselves (the floor) apart from what Vigil's programs do.
// The generated floor_{x86,arm64}_bpfel.go and .o (one object per architecture, as Vigil's)
// are committed so that building needs no clang.
package floor

//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target amd64,arm64 Floor floor.bpf.c -- -I../../bpf
