//go:build !unix

package inputs

import (
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// lockStage creates dir/.lock; without flock, a stage is judged abandoned by its age.
func lockStage(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
}

func abandoned(dir string, old bool) bool { return old }

func owner(fs.FileInfo) (int, bool) { return 0, false }

func lchtimes(p string, t time.Time) error {
	fi, err := os.Lstat(p)
	if err != nil || fi.Mode()&fs.ModeSymlink != 0 {
		return err
	}
	return os.Chtimes(p, t, t)
}

const readFlags = os.O_RDONLY
