package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/util/progress/progressui"
	"github.com/spf13/cobra"

	"github.com/wso2img/wso2img/build"
	"github.com/wso2img/wso2img/build/buildkitd"
	"github.com/wso2img/wso2img/watch"
)

// buildkitOptions say which BuildKit daemon builds.
type buildkitOptions struct {
	Host     string
	StateDir string
	Progress string
}

func (o *buildkitOptions) AddFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.Host, "buildkit-host", "", "BuildKit daemon `ADDRESS` (unix:///run/buildkit/buildkitd.sock, tcp://…); env BUILDKIT_HOST. Unset: the default socket, else a private buildkitd wso2img starts and reuses")
	cmd.Flags().StringVar(&o.StateDir, "state-dir", "", "folder of the private buildkitd (default $XDG_STATE_HOME/wso2img/buildkitd)")
	cmd.Flags().StringVar(&o.Progress, "progress", "auto", "progress display on stderr: auto, plain, tty, quiet or rawjson")
}

func addBuild(root *cobra.Command) {
	var (
		reg       registryOptions
		in        inputOptions
		target    targetOptions
		bk        buildkitOptions
		sig       signOptions
		output    string
		asJSON    bool
		ifChanged bool
	)
	cmd := &cobra.Command{
		Use:   "build PROFILE...",
		Short: "Build each profile's image through BuildKit and push it by digest, then tag it",
		Long: `build plans each profile (see wso2img plan: base pinned by digest, every input
verified) and builds it through BuildKit: the inputs become one layer owned by the
product's non-root user, merged onto the untouched base, whose layers are never pulled
(the registry mounts them across repositories). The image is reproducible: timestamps
are the update's time, so the same profile and inputs give the same digest.

The image is pushed by digest first; only then are its tags written. A unique tag
(5.8.0.1565855673150, 4.2.0.15) never moves: if it names another digest, the build
stops before pushing and asks for a new release. Pushing the same image again is a
no-op. Floating tags (5.8.0, 4.2.0.0) follow the newest build.`,
		Example: `  wso2img build --registry registry.acme.com/wso2 profiles/is.yaml
  wso2img build --output oci:out/ profiles/is.yaml
  wso2img build --json profiles/*.yaml | jq -r '.[].digest'`,
		Args: argsAtLeast(1, "profile"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := buildOptions(&reg, &in, &target, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			out, err := build.ParseOutput(output)
			if err != nil {
				return usageError{err}
			}
			profs, err := loadProfiles(args)
			if err != nil {
				return err
			}
			if ifChanged {
				if out.Kind != "registry" {
					return usageError{fmt.Errorf("--if-changed compares with the target registry; it cannot go with --output %s", output)}
				}
				opts.Select = watch.Select(opts.Registry)
			}
			if out.Kind != "registry" {
				// A signature lives in a registry, beside the image: nothing to sign here.
				if sig.Sign == "true" {
					return usageError{fmt.Errorf("--sign needs a registry to store the signature; it cannot go with --output %s", output)}
				}
				sig.Sign = "false"
			}
			signer, err := sig.signer(cmd.Context(), opts.Registry, prefixed{cmd.ErrOrStderr()})
			if err != nil {
				return err
			}
			var afterPush build.Step
			if signer != nil {
				afterPush = signStep(signer, time.Now())
			}
			c, err := buildkitd.Connect(cmd.Context(), buildkitd.Options{Host: bk.Host, StateDir: bk.StateDir, Insecure: reg.Insecure, Log: cmd.ErrOrStderr()})
			if err != nil {
				return err
			}
			defer c.Close()
			results, err := runBuilds(cmd.Context(), cmd.ErrOrStderr(), bk.Progress, func(status chan *client.SolveStatus) ([]*build.Result, error) {
				return build.All(cmd.Context(), opts, c, status, profs, out, afterPush)
			})
			printResults(cmd.OutOrStdout(), results, asJSON)
			return firstErr(err, buildToActions(results))
		},
	}
	reg.AddFlags(cmd)
	in.AddFlags(cmd)
	target.AddFlags(cmd)
	bk.AddFlags(cmd)
	sig.AddFlags(cmd)
	cmd.Flags().StringVar(&output, "output", "registry", "where the image goes: registry (push to the target), oci:DIR (OCI layout) or tar:FILE (OCI archive)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON document (an array, one object per profile) on stdout")
	cmd.Flags().BoolVar(&ifChanged, "if-changed", false, "build only the profiles that wso2img watch finds due (new update, moved base, changed profile or inputs); running it again builds nothing")
	root.AddCommand(cmd)
}

// runBuilds draws BuildKit's progress on w while run builds.
func runBuilds(ctx context.Context, w io.Writer, mode string, run func(chan *client.SolveStatus) ([]*build.Result, error)) ([]*build.Result, error) {
	display, err := progressui.NewDisplay(w, progressui.DisplayMode(mode))
	if err != nil {
		return nil, usageError{fmt.Errorf("--progress %s: %w", mode, err)}
	}
	status := make(chan *client.SolveStatus)
	drawn := make(chan struct{})
	go func() {
		defer close(drawn)
		// A context of its own, so that a failed build still shows why.
		_, _ = display.UpdateFrom(context.WithoutCancel(ctx), status)
	}()
	results, err := run(status)
	close(status)
	<-drawn
	return results, err
}

func printResults(w io.Writer, results []*build.Result, asJSON bool) {
	var done []*build.Result
	for _, r := range results {
		if r != nil {
			done = append(done, r)
		}
	}
	if asJSON {
		if done == nil {
			done = []*build.Result{}
		}
		_ = writeJSON(w, done)
		return
	}
	for _, r := range done {
		if r.Skipped {
			fmt.Fprintf(w, "%s\tnot built: %s\n", r.Profile, strings.Join(r.Reasons, "; "))
			continue
		}
		where := r.Image + "@" + r.Digest
		if r.Output != "" {
			where = r.Output + "  " + r.Digest
		}
		fmt.Fprintf(w, "%s\t%s\n", r.Profile, where)
		if len(r.Tags) > 0 {
			fmt.Fprintf(w, "  tags\t%s\n", strings.Join(r.Tags, " "))
		}
		fmt.Fprintf(w, "  base\t%s@%s\n", r.Base.Ref, r.Base.Digest)
		pushed := "pushed"
		if !r.Pushed {
			pushed = "already in the registry: nothing pushed"
		}
		if r.Output != "" {
			pushed = "written"
		}
		fmt.Fprintf(w, "  added\t%d layer(s), %s (%s)\n", r.LayersAdded, humanBytes(r.BytesAdded), pushed)
		signed := "no"
		if r.Signed {
			signed = "yes"
		}
		fmt.Fprintf(w, "  signed\t%s\n", signed)
		if len(r.Reasons) > 0 {
			fmt.Fprintf(w, "  why\t%s\n", strings.Join(r.Reasons, "; "))
		}
	}
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
