// Package version holds the version of the wso2img binary.
package version

import "runtime/debug"

// Version is set at build time (-ldflags "-X github.com/wso2img/wso2img/internal/version.Version=v1.2.3").
// Without it, the module version from the build info stands in (go install …@v1.2.3).
var Version = ""

// String returns the version, or "dev" for an unversioned build.
func String() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// UserAgent is what wso2img sends to registries and download servers.
func UserAgent() string { return "wso2img/" + String() }
