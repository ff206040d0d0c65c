package inputs

import (
	"bytes"
	"time"
)

// SetProgressEvery changes how often downloads report progress, for a test; it returns
// the old period.
func SetProgressEvery(d time.Duration) time.Duration {
	old := progressEvery
	progressEvery = d
	return old
}

// ParseNetrc exposes the netrc parser to tests: machine, login and password of each
// entry.
func ParseNetrc(data string) [][3]string {
	var out [][3]string
	for _, e := range parseNetrc(data) {
		out = append(out, [3]string{e.machine, e.login, e.password})
	}
	return out
}

// StagedTime is the time every staged file carries.
var StagedTime = stagedTime

// CheckSignature exposes the signature check to tests: the pinned primary key's
// fingerprint that signed data, or why not.
func (k *Keyring) CheckSignature(data, sig []byte) (string, error) {
	return k.check(bytes.NewReader(data), sig)
}
