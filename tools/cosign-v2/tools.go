//go:build tools

// Package tools pins the stock cosign v2 CLI that `make tools` builds into bin/cosign-v2.
// End-to-end tests run it to prove that what wso2img signs and attests with cosign's Go
// library verifies with the cosign users actually have.
package tools

import (
	_ "github.com/sigstore/cosign/v2/cmd/cosign"
)
