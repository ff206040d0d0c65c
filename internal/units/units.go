// Package units formats sizes for people, the one way wso2img shows them in logs and
// results.
package units

import "fmt"

// Bytes formats n bytes with SI units, as download tools and registries do ("12.3 MB").
func Bytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
