//go:build tools

// Package tools pins the CNCF distribution registry that `make tools` builds into
// bin/registry for end-to-end tests and the demo.
package tools

import (
	_ "github.com/distribution/distribution/v3/cmd/registry"
)
