package linux

import (
	"github.com/cilium/ebpf"

	"github.com/vigil-sensor/vigil/bpf"
)

// legacySyscallTracepoints are x86-64's path calls that predate their *at forms (open, creat,
// rename, unlink, rmdir, link, symlink, chmod, chown, lchown). Every x86-64 kernel has them, so
// a missing one fails the attach like any other.
var legacySyscallTracepoints = []syscallTracepoint{
	{"sys_exit_open", func(p *bpf.VigilPrograms) *ebpf.Program { return p.ExitOpen }, false},
	{"sys_exit_creat", func(p *bpf.VigilPrograms) *ebpf.Program { return p.ExitCreat }, false},
	{"sys_exit_rename", func(p *bpf.VigilPrograms) *ebpf.Program { return p.ExitRename }, false},
	{"sys_exit_unlink", func(p *bpf.VigilPrograms) *ebpf.Program { return p.ExitUnlink }, false},
	{"sys_exit_rmdir", func(p *bpf.VigilPrograms) *ebpf.Program { return p.ExitRmdir }, false},
	{"sys_exit_link", func(p *bpf.VigilPrograms) *ebpf.Program { return p.ExitLink }, false},
	{"sys_exit_symlink", func(p *bpf.VigilPrograms) *ebpf.Program { return p.ExitSymlink }, false},
	{"sys_exit_chmod", func(p *bpf.VigilPrograms) *ebpf.Program { return p.ExitChmod }, false},
	{"sys_exit_chown", func(p *bpf.VigilPrograms) *ebpf.Program { return p.ExitChown }, false},
	{"sys_exit_lchown", func(p *bpf.VigilPrograms) *ebpf.Program { return p.ExitLchown }, false},
}
