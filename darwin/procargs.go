package darwin

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// parseProcArgs reads a kern.procargs2 buffer: argc (a 32-bit integer in the host's order,
// little-endian on every Mac Vigil runs on), the exec path NUL-terminated, NUL padding, then
// argc NUL-terminated arguments, then the environment, which is never read.
func parseProcArgs(b []byte) (exe string, args []string, err error) {
	if len(b) < 4 {
		return "", nil, errors.New("procargs2: shorter than argc")
	}
	argc := int(binary.LittleEndian.Uint32(b))
	b = b[4:]
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return "", nil, errors.New("procargs2: exec path not terminated")
	}
	exe, b = string(b[:i]), b[i:]
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	if argc > len(b) { // each argument takes at least its NUL
		return "", nil, fmt.Errorf("procargs2: argc %d in %d bytes", argc, len(b))
	}
	args = make([]string, 0, argc)
	for range argc {
		i := bytes.IndexByte(b, 0)
		if i < 0 {
			return "", nil, fmt.Errorf("procargs2: argument %d of %d not terminated", len(args)+1, argc)
		}
		args = append(args, string(b[:i]))
		b = b[i+1:]
	}
	return exe, args, nil
}
