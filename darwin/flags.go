package darwin

import (
	"fmt"
	"strings"
)

// An open's fflag is the kernel's file flags (FFLAGS(oflags): O_RDONLY becomes FREAD 1,
// O_WRONLY FWRITE 2, O_RDWR both), then the open(2) flags of <sys/fcntl.h> that the file keeps.
const (
	fRead  = 0x1
	fWrite = 0x2
)

var fflagNames = []struct {
	bit  int32
	name string
}{
	{0x4, "O_NONBLOCK"}, {0x8, "O_APPEND"}, {0x10, "O_SHLOCK"}, {0x20, "O_EXLOCK"}, {0x40, "O_ASYNC"},
	{0x80, "O_FSYNC"}, {0x100, "O_NOFOLLOW"}, {0x200, "O_CREAT"}, {0x400, "O_TRUNC"}, {0x800, "O_EXCL"},
	{0x8000, "O_EVTONLY"}, {0x20000, "O_NOCTTY"}, {0x100000, "O_DIRECTORY"}, {0x200000, "O_SYMLINK"},
	{0x400000, "O_DSYNC"}, {0x1000000, "O_CLOEXEC"}, {0x20000000, "O_NOFOLLOW_ANY"}, {0x40000000, "O_EXEC"},
}

// openFlags names an open's flags like the Linux lines (file.flags): the access mode first,
// then the flags by their macOS names; unknown bits (the kernel's own, such as FHASLOCK) in hex.
// An open for neither reading nor writing (O_EVTONLY, O_SEARCH) has no access mode name.
func openFlags(fflag int32) string {
	var names []string
	switch fflag & (fRead | fWrite) {
	case fRead:
		names = append(names, "O_RDONLY")
	case fWrite:
		names = append(names, "O_WRONLY")
	case fRead | fWrite:
		names = append(names, "O_RDWR")
	}
	rest := fflag &^ (fRead | fWrite)
	for _, f := range fflagNames {
		if rest&f.bit != 0 {
			names = append(names, f.name)
			rest &^= f.bit
		}
	}
	if rest != 0 {
		names = append(names, fmt.Sprintf("0x%x", uint32(rest)))
	}
	return strings.Join(names, "|")
}

// openAccess is file.access: read, write or read_write; path for an open that reads and
// writes no data (O_EVTONLY, O_SEARCH), as the Linux lines say of O_PATH.
func openAccess(fflag int32) string {
	switch fflag & (fRead | fWrite) {
	case fRead:
		return "read"
	case fWrite:
		return "write"
	case fRead | fWrite:
		return "read_write"
	}
	return "path"
}
