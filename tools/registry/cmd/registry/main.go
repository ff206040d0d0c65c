// Command registry is the CNCF distribution registry — its own server and command line,
// registry.RootCmd — built with only the drivers wso2img's tests, demo and benchmarks
// use: filesystem and in-memory storage, htpasswd auth. Upstream's cmd/registry also
// links the Azure, GCS and S3 storage drivers, whose cloud SDKs make a first build of
// the tool several times longer and are never used here. This module pins the version
// that `make tools` builds into bin/registry.
package main

import (
	"os"

	"github.com/distribution/distribution/v3/registry"
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
)

func main() {
	if err := registry.RootCmd.Execute(); err != nil {
		os.Exit(1)
	}
}
