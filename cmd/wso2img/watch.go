package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/wso2img/wso2img/build"
	"github.com/wso2img/wso2img/profiles"
	"github.com/wso2img/wso2img/watch"
)

func addWatch(root *cobra.Command) {
	var (
		reg    registryOptions
		in     inputOptions
		target targetOptions
		sc     scanOptions
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "watch PROFILE...",
		Short: "Report which profiles need a rebuild: a new WSO2 update, a moved base, changed inputs",
		Long: `watch plans each profile — resolving "wum: latest" / "level: latest" to the newest
update WSO2 published for its version and OS, and the base tag to its digest — and
compares the result with what the target repository already holds: the image of the
same update and its rebuild ID (a hash of the base digest, the profile and every input).

A profile is due when the target lacks its update (a new WSO2 update), or holds it
built from another base digest (the base moved behind its tag), profile or inputs. Then
"wso2img build --if-changed" rebuilds exactly the due profiles; a changed image of an
update already published gets the next release, since unique tags never move.

An image that did not change is due all the same for a new vulnerability scan (reason
"rescan") when its last scan is older than --rescan-after, or, with --rescan, when
today's vulnerability DB finds what the gate refuses: new CVEs appear in images
nobody rebuilt.

The exit code is 0 whether or not anything is due; it is not 0 when a profile cannot be
checked (an input fails verification: 3).`,
		Example: `  wso2img watch profiles/*.yaml
  wso2img watch --json profiles/*.yaml | jq -r '.[] | select(.due) | .profile'`,
		Args: argsAtLeast(1, "profile"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := buildOptions(&reg, &in, &target, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			profs, err := loadProfiles(args)
			if err != nil {
				return err
			}
			rescan, err := sc.rescan(profs, reg.Insecure, prefixed{cmd.ErrOrStderr()})
			if err != nil {
				return err
			}
			statuses, err := eachProfile(cmd.Context(), args, opts, func(ctx context.Context, p *build.Planner, prof *profiles.Profile) (*watch.Status, error) {
				plan, err := p.Plan(ctx, prof)
				if err != nil {
					return nil, err
				}
				defer plan.Close()
				return watch.Check(ctx, opts.Registry, plan, rescan)
			})
			return firstErr(err, watchToActions(statuses), emit(cmd.OutOrStdout(), asJSON, statuses, printStatuses))
		},
	}
	reg.AddFlags(cmd)
	in.AddFlags(cmd)
	target.AddFlags(cmd)
	sc.AddFlags(cmd, false, true)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON document (an array, one object per profile) on stdout")
	root.AddCommand(cmd)
}

func printStatuses(w io.Writer, statuses []*watch.Status) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROFILE\tDUE\tTAG\tWHY")
	for _, st := range statuses {
		due := "no"
		if st.Due {
			due = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", st.Profile, due, st.Tag, strings.Join(st.Reasons, "; "))
	}
	tw.Flush()
}
