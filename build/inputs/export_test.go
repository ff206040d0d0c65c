package inputs

import "time"

// SetProgressEvery changes how often downloads report progress, for a test; it returns
// the old period.
func SetProgressEvery(d time.Duration) time.Duration {
	old := progressEvery
	progressEvery = d
	return old
}
