//go:build tools

// Package tools pins the BuildKit daemon and client that `make tools` builds into bin/.
// Its version must stay equal to the one the root go.mod requires (hack/tools.sh checks).
package tools

import (
	_ "github.com/moby/buildkit/cmd/buildctl"
	_ "github.com/moby/buildkit/cmd/buildkitd"
)
