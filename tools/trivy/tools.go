//go:build tools

// Package tools pins the stock Trivy CLI that `make tools` builds into bin/trivy. The
// scan package runs it as the vulnerability scanner of the publish pipeline, and the
// scan tests run it offline against a database that internal/trivydb writes.
package tools

import (
	_ "github.com/aquasecurity/trivy/cmd/trivy"
)
