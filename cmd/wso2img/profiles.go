package main

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/wso2img/wso2img/profiles"
)

func addProfiles(root *cobra.Command) {
	cmd := &cobra.Command{
		Use:   "profiles",
		Short: "List and show the stock profiles of WSO2 products",
		Long: `Stock profiles hold what is fixed for a WSO2 product image: the official base
repository, the product user's uid:gid, the product home and the ports. Start a profile
from one with "extends: NAME", then add an update and your inputs.`,
	}
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the stock profiles",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			stock := profiles.StockProfiles()
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), stock)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tPRODUCT\tVERSION\tOS\tBASE\tUID:GID\tPORTS")
			for _, s := range stock {
				p := s.Profile
				os := p.OS + p.OSVersion
				if os == "" {
					os = "ubuntu"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d:%d\t%s\n", s.Name, p.Product, p.Version, os, p.Base.Image, p.User.UID, p.User.GID, joinInts(p.Ports, " "))
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Print a stock profile's YAML",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("profiles show needs one stock profile name (see wso2img profiles list)")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			b, ok := profiles.StockYAML(args[0])
			if !ok {
				return usageError{fmt.Errorf("no stock profile %q (see wso2img profiles list)", args[0])}
			}
			_, err := cmd.OutOrStdout().Write(b)
			return err
		},
	}
	cmd.AddCommand(list, show)
	root.AddCommand(cmd)
}

func joinInts(ns []int, sep string) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, sep)
}
