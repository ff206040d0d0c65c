package units_test

import (
	"testing"

	"github.com/wso2img/wso2img/internal/units"
)

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1000: "1.0 kB", 2949: "2.9 kB", 12_300_000: "12.3 MB", 1 << 30: "1.1 GB"} {
		if got := units.Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}
