package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/wso2img/wso2img/build"
	"github.com/wso2img/wso2img/watch"
)

func addWatch(root *cobra.Command) {
	var (
		reg    registryOptions
		in     inputOptions
		target targetOptions
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
			planner, err := build.NewPlanner(opts)
			if err != nil {
				return usageError{err}
			}
			var statuses []*watch.Status
			var errs []error
			for _, p := range profs {
				plan, err := planner.Plan(cmd.Context(), p)
				if err == nil {
					var st *watch.Status
					if st, err = watch.Check(cmd.Context(), opts.Registry, plan); err == nil {
						statuses = append(statuses, st)
					}
				}
				if err != nil {
					errs = append(errs, err)
				}
			}
			if err := watchToActions(statuses); err != nil {
				errs = append(errs, err)
			}
			if asJSON {
				if statuses == nil {
					statuses = []*watch.Status{}
				}
				if err := writeJSON(cmd.OutOrStdout(), statuses); err != nil {
					return err
				}
			} else {
				printStatuses(cmd.OutOrStdout(), statuses)
			}
			return build.JoinErrors(errs)
		},
	}
	reg.AddFlags(cmd)
	in.AddFlags(cmd)
	target.AddFlags(cmd)
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
