package sensor

import (
	"os"
	"syscall"
)

// statIdentity returns the device, inode and change time behind fi.
func statIdentity(fi os.FileInfo) (dev, ino uint64, ctimeSec, ctimeNsec int64, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, 0, 0, false
	}
	return st.Dev, st.Ino, st.Ctim.Sec, st.Ctim.Nsec, true
}
