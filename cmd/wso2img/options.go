package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/wso2img/wso2img/build"
	"github.com/wso2img/wso2img/build/inputs"
	"github.com/wso2img/wso2img/internal/registry"
	"github.com/wso2img/wso2img/internal/version"
	"github.com/wso2img/wso2img/profiles"
	"github.com/wso2img/wso2img/verify"
)

// registryOptions say how to reach registries.
type registryOptions struct {
	// Insecure hosts are spoken to over plain HTTP.
	Insecure []string
	// Mirrors rewrite base references, FROM=TO.
	Mirrors []string
}

func (o *registryOptions) AddFlags(cmd *cobra.Command) {
	cmd.Flags().StringSliceVar(&o.Insecure, "insecure-registry", nil, "registry `HOST[:PORT]` to reach over plain HTTP (loopback registries in tests and demos); repeatable")
	cmd.Flags().StringSliceVar(&o.Mirrors, "mirror", nil, "pull bases from a mirror: `FROM=TO` replaces the reference prefix FROM (docker.wso2.com) with TO (registry.acme.com/mirror); repeatable")
}

func (o *registryOptions) options() (registry.Options, error) {
	ro := registry.Options{Insecure: o.Insecure, UserAgent: version.UserAgent()}
	for _, m := range o.Mirrors {
		mm, err := registry.ParseMirror(m)
		if err != nil {
			return ro, usageError{err}
		}
		ro.Mirrors = append(ro.Mirrors, mm)
	}
	return ro, nil
}

// inputOptions say how inputs are fetched.
type inputOptions struct {
	CAFile       string
	CacheDir     string
	MaxSize      string
	StallTimeout time.Duration
	Netrc        string
}

func (o *inputOptions) AddFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.CAFile, "ca-file", "", "extra PEM CA bundle trusted for HTTPS inputs (corporate mirrors); SSL_CERT_FILE is honoured too")
	cmd.Flags().StringVar(&o.CacheDir, "cache-dir", "", "download cache (default $XDG_CACHE_HOME/wso2img)")
	cmd.Flags().StringVar(&o.MaxSize, "max-input-size", "2GiB", "largest `SIZE` of an input (a download, a local file, an archive's files) whose profile entry sets no maxSize")
	cmd.Flags().DurationVar(&o.StallTimeout, "stall-timeout", inputs.DefaultStallTimeout, "fail a download that receives no byte for this `DURATION` (connecting, TLS, headers or body), and a registry connection on which nothing moves for it")
	cmd.Flags().StringVar(&o.Netrc, "netrc", "", "netrc `FILE` whose machine entries give credentials for input downloads by host (default $NETRC, else ~/.netrc when it exists)")
}

// options turns the flags into inputs.Options.
func (o *inputOptions) options(log io.Writer) (inputs.Options, error) {
	if o.MaxSize == "" {
		o.MaxSize = "2GiB"
	}
	size, err := profiles.ParseByteSize(o.MaxSize)
	if err != nil || size <= 0 {
		return inputs.Options{}, usageError{fmt.Errorf("--max-input-size %q: expected a size such as 500MiB or 2GiB", o.MaxSize)}
	}
	return inputs.Options{CAFile: o.CAFile, CacheDir: o.CacheDir, UserAgent: version.UserAgent(), Log: log,
		MaxSize: int64(size), StallTimeout: o.StallTimeout, Netrc: o.Netrc}, nil
}

// targetOptions say where images go.
type targetOptions struct {
	Registry string
}

func (o *targetOptions) AddFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.Registry, "registry", "", "push under this `PREFIX` instead of each profile's target.repository, keeping the repository's last element (127.0.0.1:5000/acme → 127.0.0.1:5000/acme/wso2is)")
}

// buildOptions assembles build.Options from the option groups; log lines go to log.
func buildOptions(r *registryOptions, in *inputOptions, t *targetOptions, w io.Writer) (build.Options, error) {
	log := prefixed{w}
	ro, err := r.options()
	if err != nil {
		return build.Options{}, err
	}
	inOpts, err := in.options(log)
	if err != nil {
		return build.Options{}, err
	}
	ro.StallTimeout = in.StallTimeout
	return build.Options{
		Registry:       ro,
		Inputs:         inOpts,
		RegistryPrefix: t.Registry,
		Log:            log,
		CheckBase:      checkBase(ro, log),
	}, nil
}

// checkBase verifies a base's cosign signature when its profile asks for it
// (base.verify; the stock profiles of registry.wso2.com ask for WSO2's key), at the digest
// it is pulled from, before anything else happens. A profile that turns it off is
// reminded of it on every run.
func checkBase(reg registry.Options, log io.Writer) func(context.Context, *build.Plan) error {
	return func(ctx context.Context, plan *build.Plan) error {
		v := plan.Profile.Base.Verify
		if v == nil {
			return nil
		}
		if v.Off {
			fmt.Fprintf(log, "WARNING: profile %q: base.verify is false: the signature of base %s is NOT checked (WSO2 signs its registry.wso2.com images; stock profiles check them with WSO2's key)\n", plan.Profile.Name, plan.Base.Ref)
			return nil
		}
		ref, err := reg.NewDigest(plan.Base.Pull)
		if err != nil {
			return err
		}
		return verify.Base(ctx, reg, plan.Profile.Name, ref, verify.SignatureOptions{
			Key: v.Key, Identity: v.Identity, IdentityRegexp: v.IdentityRegexp,
			Issuer: v.Issuer, IssuerRegexp: v.IssuerRegexp, IgnoreTlog: v.InsecureIgnoreTlog,
		})
	}
}

// loadProfiles loads every profile named on the command line, reporting all that fail.
func loadProfiles(args []string) ([]*profiles.Profile, error) {
	var out []*profiles.Profile
	var errs []error
	for _, a := range args {
		p, err := profiles.Load(a)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, p)
	}
	if len(errs) > 0 {
		return nil, build.JoinErrors(errs)
	}
	return out, nil
}

// prefixed marks each log line as wso2img's, so that it stands out among BuildKit's
// progress on stderr. The packages write whole lines.
type prefixed struct{ w io.Writer }

func (p prefixed) Write(b []byte) (int, error) {
	if _, err := p.w.Write(append([]byte("wso2img: "), b...)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// closePlans removes the plans' staged inputs.
func closePlans(plans []*build.Plan) {
	for _, p := range plans {
		p.Close()
	}
}

// eachProfile loads the profiles named on the command line and runs do on each with one
// planner (one download cache, one HTTP client), collecting the results of those that
// succeed and every failure, so that one bad profile does not hide the others.
func eachProfile[T any](ctx context.Context, args []string, opts build.Options, do func(context.Context, *build.Planner, *profiles.Profile) (T, error)) ([]T, error) {
	profs, err := loadProfiles(args)
	if err != nil {
		return nil, err
	}
	planner, err := build.NewPlanner(opts)
	if err != nil {
		return nil, usageError{err}
	}
	results := []T{}
	var errs []error
	for _, p := range profs {
		r, err := do(ctx, planner, p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		results = append(results, r)
	}
	return results, build.JoinErrors(errs)
}

// emit writes results on stdout, as one JSON document or as text.
func emit[T any](w io.Writer, asJSON bool, results []T, text func(io.Writer, []T)) error {
	if asJSON {
		return writeJSON(w, results)
	}
	text(w, results)
	return nil
}
