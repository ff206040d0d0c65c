package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/wso2img/wso2img/internal/version"
)

func addVersion(root *cobra.Command) {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of wso2img and of the BuildKit client it speaks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := map[string]string{"wso2img": version.String(), "go": runtime.Version(), "buildkit": depVersion("github.com/moby/buildkit")}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), v)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wso2img %s (%s, BuildKit client %s)\n", v["wso2img"], v["go"], v["buildkit"])
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	root.AddCommand(cmd)
}

func depVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == path {
				return d.Version
			}
		}
	}
	return "unknown"
}
