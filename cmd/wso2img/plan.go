package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/wso2img/wso2img/build"
	"github.com/wso2img/wso2img/profiles"
)

func addPlan(root *cobra.Command) {
	var (
		reg    registryOptions
		in     inputOptions
		target targetOptions
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "plan PROFILE...",
		Short: "Resolve the base, verify every input, and print what a build would do",
		Long: `plan loads and validates each profile (a file, or a stock profile's name), resolves
the base tag to a digest and checks it against base.digest, fetches and verifies every
input (HTTPS only, checksum, GPG signature), and prints the tags, the base, each input
with its digest and destination, and the user and ports of the image. It builds and
pushes nothing.`,
		Example: `  wso2img plan examples/wso2is-mysql.yaml
  wso2img plan --json profiles/*.yaml | jq '.[].tags'`,
		Args: argsAtLeast(1, "profile"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := buildOptions(&reg, &in, &target, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			plans, err := eachProfile(cmd.Context(), args, opts, func(ctx context.Context, p *build.Planner, prof *profiles.Profile) (*build.Plan, error) {
				return p.Plan(ctx, prof)
			})
			defer closePlans(plans)
			return firstErr(err, emit(cmd.OutOrStdout(), asJSON, planViews(plans), printPlans))
		},
	}
	reg.AddFlags(cmd)
	in.AddFlags(cmd)
	target.AddFlags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON document (an array, one object per profile) on stdout")
	root.AddCommand(cmd)
}

// planView is the JSON shape of a plan: the plan plus the profile it came from.
type planView struct {
	Profile       string `json:"profile"`
	File          string `json:"file"`
	ProfileDigest string `json:"profileDigest"`
	*build.Plan
}

func planViews(plans []*build.Plan) []planView {
	views := make([]planView, len(plans))
	for i, p := range plans {
		views[i] = planView{Profile: p.Profile.Name, File: p.Profile.File, ProfileDigest: p.Profile.Digest(), Plan: p}
	}
	return views
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printPlans(w io.Writer, views []planView) {
	for i, v := range views {
		if i > 0 {
			fmt.Fprintln(w)
		}
		printPlan(w, v.Plan)
	}
}

func printPlan(w io.Writer, p *build.Plan) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, args...)...) }
	row("profile", "%s (%s)", p.Profile.Name, p.Profile.File)
	image := p.Repository
	if image == "" {
		image = "(no target: set target.repository or --registry to push)"
	}
	row("image", "%s", image)
	for i, t := range p.Tags {
		kind := "floating"
		if t.Unique {
			kind = "unique"
		}
		row(first(i, "tags"), "%s  (%s)", t.Tag, kind)
	}
	row("base", "%s", p.Base.Ref)
	row("", "%s", p.Base.Digest)
	if p.Base.Mirrored {
		row("", "pulled from %s", p.Base.Pull)
	}
	row("platforms", "%s", strings.Join(p.Platforms, ", "))
	row("created", "%s", p.Created.Format("2006-01-02T15:04:05Z"))
	row("user", "%d:%d", p.UID, p.GID)
	row("home", "%s", p.Home)
	row("ports", "%s", joinInts(p.Ports, " "))
	if len(p.Inputs) == 0 {
		row("inputs", "(none)")
	}
	for i, in := range p.Inputs {
		what := in.ModeString
		if in.Dir {
			what = fmt.Sprintf("dir, %d entries", len(in.Files))
		}
		row(first(i, "inputs"), "%s  %s  (%s)", in.Dest, shortDigest(in.Digest), what)
		row("", "  from %s", in.Source)
		if in.Signer != "" {
			row("", "  gpg signature by %s", in.Signer)
		}
	}
	tw.Flush()
}

func first(i int, label string) string {
	if i == 0 {
		return label
	}
	return ""
}

// shortDigest keeps a digest readable in a table: algorithm and 12 hex digits.
func shortDigest(d string) string {
	if alg, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return alg + ":" + hex[:12]
	}
	return d
}
