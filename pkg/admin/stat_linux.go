package admin

import (
	"io/fs"
	"syscall"
	"time"
)

// fileUID is the owner of a file, from Linux's stat.
func fileUID(fi fs.FileInfo) (uid int, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

// changed is when a directory entry last changed (its ctime, a Linux stat
// field): for a hook, when it was installed.
func changed(fi fs.FileInfo) time.Time {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
	}
	return fi.ModTime()
}
