package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/util/progress/progressui"
	"github.com/spf13/cobra"

	"github.com/wso2img/wso2img/build"
	"github.com/wso2img/wso2img/build/fleet"
	"github.com/wso2img/wso2img/internal/units"
	"github.com/wso2img/wso2img/profiles"
	"github.com/wso2img/wso2img/publish"
	"github.com/wso2img/wso2img/sign"
	"github.com/wso2img/wso2img/watch"
)

// buildkitOptions say which BuildKit daemons build, and with which cache.
type buildkitOptions struct {
	Hosts         []string
	CA, Cert, Key string
	Parallel      int
	Builders      buildersValue
	CacheTo       string
	CacheFrom     string
	StateDir      string
	Progress      string
}

func (o *buildkitOptions) AddFlags(cmd *cobra.Command) {
	cmd.Flags().StringSliceVar(&o.Hosts, "buildkit-host", nil, "BuildKit daemon `ADDRESS`: unix:///run/buildkit/buildkitd.sock, tcp://HOST:PORT, kube-pod://POD?namespace=NS, docker-container://NAME; repeatable: builds are spread over them, and a lost one's builds move to the next; env BUILDKIT_HOST (one address). Unset (and no builders): the default socket, else a private buildkitd wso2img starts and reuses")
	cmd.Flags().StringVar(&o.CA, "buildkit-ca", "", "PEM `FILE` of the CA that signed the tcp:// builders' certificates (mutual TLS)")
	cmd.Flags().StringVar(&o.Cert, "buildkit-cert", "", "PEM `FILE` of the client certificate for the tcp:// builders")
	cmd.Flags().StringVar(&o.Key, "buildkit-key", "", "PEM `FILE` of the client key for the tcp:// builders")
	cmd.Flags().IntVar(&o.Parallel, "buildkit-parallel", 0, fmt.Sprintf("builds each --buildkit-host builder runs at once before the next one spills to the next-ranked builder (0: %d with several builders, no limit with one)", fleet.DefaultParallel))
	cmd.Flags().Var(&o.Builders, "builders", "builders as a YAML list of {host, ca, cert, key, parallel}, in addition to --buildkit-host; usually `builders:` in the config file")
	cmd.Flags().StringVar(&o.CacheTo, "cache-to", "", "export each profile's build cache to `REPOSITORY`:<profile> (BuildKit registry cache, mode=max), so that another builder starts warm")
	cmd.Flags().StringVar(&o.CacheFrom, "cache-from", "", "import each profile's build cache from `REPOSITORY`:<profile> (written by --cache-to)")
	cmd.Flags().StringVar(&o.StateDir, "state-dir", "", "folder of the private buildkitd (default $XDG_STATE_HOME/wso2img/buildkitd)")
	cmd.Flags().StringVar(&o.Progress, "progress", "auto", "progress display on stderr: auto, plain, tty, quiet or rawjson")
}

// buildFlags are the flags of `wso2img build`.
type buildFlags struct {
	reg       registryOptions
	in        inputOptions
	target    targetOptions
	bk        buildkitOptions
	sig       signOptions
	scan      scanOptions
	output    string
	asJSON    bool
	ifChanged bool
	baseCache string
}

func addBuild(root *cobra.Command) {
	var f buildFlags
	cmd := &cobra.Command{
		Use:   "build PROFILE...",
		Short: "Build each profile's image through BuildKit, push it by digest, sign it, then tag it",
		Long: `build plans each profile (see wso2img plan: base pinned by digest, every input
verified) and builds it through BuildKit: the inputs become one layer owned by the
product's non-root user, merged onto the untouched base, whose layers are never pulled
(the registry mounts them across repositories). The image is reproducible: timestamps
are the update's time, so the same profile and inputs give the same digest.

The image is pushed by digest first, then signed with cosign (signature, SLSA
provenance and SPDX SBOM; see --sign), and only then are its tags written: no tag names
an unsigned image. A unique tag (5.8.0.1565855673150, 4.2.0.15) never moves: if it names
another digest, the build stops before pushing and asks for a new release. Pushing the
same image again is a no-op. Floating tags (5.8.0, 4.2.0.0) follow the newest build.`,
		Example: `  wso2img build --registry registry.acme.com/wso2 --key cosign.key profiles/is.yaml
  wso2img build --if-changed profiles/*.yaml          # a nightly job: only what is due
  wso2img build --output oci:out/ profiles/is.yaml
  wso2img build --json profiles/*.yaml | jq -r '.[].digest'`,
		Args: argsAtLeast(1, "profile"),
		RunE: func(cmd *cobra.Command, args []string) error { return f.run(cmd, args) },
	}
	f.reg.AddFlags(cmd)
	f.in.AddFlags(cmd)
	f.target.AddFlags(cmd)
	f.bk.AddFlags(cmd)
	f.sig.AddFlags(cmd)
	f.scan.AddFlags(cmd, true, true)
	cmd.Flags().StringVar(&f.output, "output", "registry", "where the image goes: registry (push to the target), oci:DIR (OCI layout) or tar:FILE (OCI archive)")
	cmd.Flags().BoolVar(&f.asJSON, "json", false, "print one JSON document (an array, one object per profile) on stdout")
	cmd.Flags().StringVar(&f.baseCache, "base-cache", "", "where a base from another registry is kept in the target registry, so that its layers are mounted, not pulled and pushed again: a repository `PREFIX` in the target registry, true for the default <target registry>/"+publish.DefaultBaseCache+", or false for none (default: each profile's baseCache, else true)")
	cmd.Flags().BoolVar(&f.ifChanged, "if-changed", false, "build only the profiles that wso2img watch finds due (new update, moved base, changed profile or inputs); running it again builds nothing")
	root.AddCommand(cmd)
}

func (f *buildFlags) run(cmd *cobra.Command, args []string) error {
	ctx, stderr := cmd.Context(), cmd.ErrOrStderr()
	opts, err := buildOptions(&f.reg, &f.in, &f.target, stderr)
	if err != nil {
		return err
	}
	opts.CacheTo, opts.CacheFrom = f.bk.CacheTo, f.bk.CacheFrom
	for _, c := range [][2]string{{"--cache-to", opts.CacheTo}, {"--cache-from", opts.CacheFrom}} {
		if _, err := build.CacheRef(c[1], "x"); c[1] != "" && err != nil {
			return usageError{fmt.Errorf("%s: %w", c[0], err)}
		}
	}
	builders, err := f.bk.builders()
	if err != nil {
		return err
	}
	out, err := build.ParseOutput(f.output)
	if err != nil {
		return usageError{err}
	}
	if out.Kind != "registry" {
		switch {
		case f.ifChanged:
			return usageError{fmt.Errorf("--if-changed compares with the target registry; it cannot go with --output %s", f.output)}
		case f.sig.Sign == "true":
			return usageError{fmt.Errorf("--sign needs a registry to store the signature beside the image; it cannot go with --output %s", f.output)}
		}
		f.sig.Sign = "false"
	}
	bc, err := parseBaseCache(f.baseCache)
	if err != nil {
		return usageError{err}
	}
	profs, err := loadProfiles(args)
	if err != nil {
		return err
	}
	rescan, err := f.scan.rescan(profs, f.reg.Insecure, prefixed{stderr})
	if err != nil {
		return err
	}
	if !f.ifChanged && (rescan.After > 0 || rescan.Scanner != nil) {
		return usageError{fmt.Errorf("--rescan-after and --rescan say when an unchanged image is due: they go with --if-changed")}
	}
	var scanner publish.Scanner
	scanOff := "the vulnerability gate is off for local output"
	if out.Kind == "registry" {
		if scanner, scanOff, err = f.scan.scanner(profs, f.reg.Insecure, prefixed{stderr}); err != nil {
			return err
		}
	}
	// The key is loaded (scrypt, for a key file) while wso2img connects to BuildKit,
	// and a key that cannot be loaded fails before anything is planned or built.
	type loaded struct {
		s   *sign.Signer
		err error
	}
	key := make(chan loaded, 1)
	go func() {
		s, err := f.sig.signer(ctx, opts.Registry, prefixed{stderr})
		key <- loaded{s, err}
	}()
	planner, err := build.NewPlanner(opts)
	if err != nil {
		<-key
		return usageError{err}
	}
	results, err := runBuilds(ctx, stderr, f.bk.Progress, func(status chan *client.SolveStatus) ([]*publish.Result, error) {
		builder, done, cerr := f.bk.connect(ctx, opts, builders, f.reg.Insecure, status, stderr)
		k := <-key
		if cerr != nil || k.err != nil {
			if done != nil {
				done()
			}
			return nil, firstErr(k.err, cerr)
		}
		defer done()
		signer := k.s
		po := publish.Options{Registry: opts.Registry, Planner: planner, Builder: builder, Output: out, Signer: signer, Log: prefixed{stderr}, BaseCache: bc,
			Scanner: scanner, ScanOff: scanOff}
		if f.ifChanged {
			po.Select = watch.Select(opts.Registry, rescan)
		}
		if fl, ok := builder.(interface{ Slots() int }); ok {
			po.Parallel = max(publish.DefaultParallel, fl.Slots())
		}
		p, err := publish.New(po)
		if err != nil {
			return nil, usageError{err}
		}
		return p.Run(ctx, profs)
	})
	results = nonNil(results)
	return firstErr(err, buildToActions(results), emit(cmd.OutOrStdout(), f.asJSON, results, printBuilds))
}

// parseBaseCache reads --base-cache: "" (the profiles decide), true, false or a prefix.
func parseBaseCache(s string) (*profiles.BaseCache, error) {
	switch s {
	case "":
		return nil, nil
	case "true":
		return &profiles.BaseCache{}, nil
	case "false":
		return &profiles.BaseCache{Off: true}, nil
	}
	if !strings.Contains(s, "/") || strings.ContainsAny(s, "@ ") {
		return nil, fmt.Errorf("--base-cache %q: expected a repository prefix in the target registry (registry.acme.com/wso2img-bases), true or false", s)
	}
	return &profiles.BaseCache{Prefix: strings.TrimSuffix(s, "/")}, nil
}

// runBuilds draws BuildKit's progress on w while run builds.
func runBuilds(ctx context.Context, w io.Writer, mode string, run func(chan *client.SolveStatus) ([]*publish.Result, error)) ([]*publish.Result, error) {
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

func printBuilds(w io.Writer, done []*publish.Result) {
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
		fmt.Fprintf(w, "  added\t%d layer(s), %s (%s)\n", r.LayersAdded, units.Bytes(r.BytesAdded), pushed)
		if r.BaseBytesCopied > 0 || r.BaseBytesPulled > 0 {
			fmt.Fprintf(w, "  base\t%s copied into the target registry, %s pulled and pushed again\n", units.Bytes(r.BaseBytesCopied), units.Bytes(r.BaseBytesPulled))
		}
		signed := "no"
		if r.Signed {
			signed = "yes"
		}
		fmt.Fprintf(w, "  signed\t%s\n", signed)
		if len(r.Reasons) > 0 {
			fmt.Fprintf(w, "  why\t%s\n", strings.Join(r.Reasons, "; "))
		}
		printFindings(w, r)
		for _, n := range r.Notes {
			fmt.Fprintf(w, "  note\t%s\n", n)
		}
	}
}
