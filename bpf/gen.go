// Package bpf holds Vigil's eBPF programs and their Go bindings. bpf2go builds one object per
// architecture (vigil_x86_bpfel.* for amd64, vigil_arm64_bpfel.* for arm64): their syscall
// tracepoints and saved-register layouts differ. The generated files are committed so that
// building and testing need no clang; `make generate` regenerates them with Debian's clang.
// -type generates the Go twins of the records' structs and of the enums the decoder reads.
package bpf

//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target amd64,arm64 -type event_header -type exec_event -type open_event -type connect_event -type exit_event -type mutate_event -type track_entry -type name_key -type inode_key -type event_kind -type mutate_op -type drop_kind -type env_name -type track_flag -type trunc_flag -type exe_flag -type walk_kind -type net_flag -type merge_flag -type merge_limit -type open_run -type merged_event Vigil vigil.bpf.c -- -I.
