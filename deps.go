//go:build deps

// Package main pins dependencies that code still being written will import; removed once
// every one of them is used for real.
package main

import (
	_ "github.com/ProtonMail/go-crypto/openpgp"
	_ "github.com/google/go-containerregistry/pkg/v1/remote"
	_ "github.com/moby/buildkit/client"
	_ "github.com/moby/buildkit/client/llb"
	_ "github.com/moby/buildkit/util/progress/progressui"
	_ "github.com/sigstore/cosign/v2/pkg/cosign"
	_ "github.com/spf13/cobra"
	_ "github.com/spf13/viper"
	_ "go.yaml.in/yaml/v3"
	_ "golang.org/x/sync/errgroup"
)
