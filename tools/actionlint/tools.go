//go:build tools

// Package tools pins actionlint, which `make test` runs on action.yml and the workflows.
package tools

import _ "github.com/rhysd/actionlint/cmd/actionlint"
