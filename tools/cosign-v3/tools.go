//go:build tools

// Package tools pins the stock cosign v3 CLI that `make tools` builds into bin/cosign-v3.
// End-to-end tests run it to prove that signatures and attestations wso2img writes in
// cosign's tag layout (sha256-<hex>.sig/.att) still verify with cosign v3.
package tools

import (
	_ "github.com/sigstore/cosign/v3/cmd/cosign"
)
