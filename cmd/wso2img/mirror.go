package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wso2img/wso2img/build"
	"github.com/wso2img/wso2img/internal/units"
	"github.com/wso2img/wso2img/mirror"
	"github.com/wso2img/wso2img/profiles"
)

func addMirror(root *cobra.Command) {
	var (
		reg    registryOptions
		to     string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "mirror PROFILE...",
		Short: "Copy each profile's base (all platforms, with its cosign signature) into your registry",
		Long: `WSO2 deletes old tags from its registry weekly. mirror copies the base each profile
builds on — by digest, every platform, byte for byte, with the cosign signature,
attestations and SBOM stored beside it — into your own registry, under --to PREFIX
followed by the base's repository path (registry.wso2.com/wso2-is/is:7.1.0.3 →
PREFIX/wso2-is/is:7.1.0.3), or into the profile's base.mirror repository.

Build from the copy with "--mirror registry.wso2.com=PREFIX" (or mirror: in wso2img.yaml),
or set base.mirror in the profile. Labels of the images built still name the official
base, and its digest is the same.`,
		Example: `  wso2img mirror --to registry.acme.com/mirror profiles/*.yaml
  wso2img build --mirror registry.wso2.com=registry.acme.com/mirror profiles/*.yaml`,
		Args: argsAtLeast(1, "profile"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := buildOptions(&reg, &inputOptions{}, &targetOptions{}, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			results, err := eachProfile(cmd.Context(), args, opts, func(ctx context.Context, p *build.Planner, prof *profiles.Profile) (*mirror.Result, error) {
				return mirrorProfile(ctx, p, opts, prof, to)
			})
			return firstErr(err, emit(cmd.OutOrStdout(), asJSON, results, printMirrored))
		},
	}
	reg.AddFlags(cmd)
	cmd.Flags().StringVar(&to, "to", "", "mirror `PREFIX` in your registry (default: each profile's base.mirror)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON document (an array, one object per profile) on stdout")
	root.AddCommand(cmd)
}

func printMirrored(w io.Writer, results []*mirror.Result) {
	for _, r := range results {
		copied := "no cosign signature found"
		if len(r.Copied) > 0 {
			copied = "with " + strings.Join(r.Copied, ", ")
		}
		fmt.Fprintf(w, "%s\t%s → %s\n  digest\t%s (%s)\n  copied\t%d blob(s), %s (the rest was there)\n  build with\t--mirror %s\n",
			r.Profile, r.From, r.To, r.Digest, copied, r.Blobs, units.Bytes(r.Bytes), r.MirrorFlag)
	}
}

// mirrorProfile copies one profile's base.
func mirrorProfile(ctx context.Context, planner *build.Planner, opts build.Options, p *profiles.Profile, to string) (*mirror.Result, error) {
	plan, err := planner.PlanBase(ctx, p)
	if err != nil {
		return nil, err
	}
	r := &mirror.Result{Profile: p.Name, From: plan.Base.Ref, Source: plan.Base.Pull}
	switch {
	case to != "":
		if r.To, r.MirrorFlag, err = mirror.Destination(to, plan.Base.Ref); err != nil {
			return nil, usageError{fmt.Errorf("profile %q: %w", p.Name, err)}
		}
	case p.Base.Mirror != "":
		r.To = p.InMirror(plan.Base.Ref)
		r.MirrorFlag = "(none needed: the profile's base.mirror is " + p.Base.Mirror + ")"
	default:
		return nil, usageError{fmt.Errorf("profile %q: where to? pass --to PREFIX or set base.mirror in the profile", p.Name)}
	}
	c, err := mirror.Copy(ctx, opts.Registry, plan.Base.Pull, r.To)
	if err != nil {
		return nil, fmt.Errorf("profile %q: %w", p.Name, err)
	}
	r.Digest, r.Copied, r.Blobs, r.Bytes = c.Digest, c.Artifacts, c.Blobs, c.Bytes
	return r, nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
