//go:build unix

package inputs

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// lockStage creates dir/.lock and holds an exclusive lock on it for as long as the
// returned file is open: the kernel drops it when the process ends, however it ends,
// which is how a later sweep knows the stage is abandoned.
func lockStage(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// abandoned reports whether no process holds the stage at dir: its lock can be taken.
// A stage without a lock file is judged by its age.
func abandoned(dir string, old bool) bool {
	f, err := os.Open(filepath.Join(dir, ".lock"))
	if err != nil {
		return old
	}
	defer f.Close()
	return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil
}

// owner is the uid that owns a file.
func owner(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

// lchtimes sets the access and modification times of p, not of what a symlink names.
func lchtimes(p string, t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}

// readFlags open a file for reading without blocking on a named pipe that took its
// place after it was listed (a fifo is refused once it is open and seen for what it is).
const readFlags = os.O_RDONLY | syscall.O_NONBLOCK
