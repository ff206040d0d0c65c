// Package build turns a profile into an image: it plans (resolves and pins the base,
// fetches and verifies every input), generates the LLB that adds the inputs as one layer
// on the untouched base, and solves it on BuildKit: pushed by digest (never tagged), or
// exported to a local OCI layout.
//
// It prints nothing itself: progress goes to the writers and channels callers pass in.
// What follows the push (scan, sign, attest, tag) is the publish package's job.
package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/platforms"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/wso2img/wso2img/build/inputs"
	"github.com/wso2img/wso2img/build/tomlcheck"
	"github.com/wso2img/wso2img/build/truststore"
	"github.com/wso2img/wso2img/internal/registry"
	"github.com/wso2img/wso2img/profiles"
	"github.com/wso2img/wso2img/tags"
)

// Options configure planning and building.
type Options struct {
	// Registry says how to reach registries (plain-HTTP hosts, mirrors, auth).
	Registry registry.Options
	// Inputs configure fetching (cache, CA bundle).
	Inputs inputs.Options
	// RegistryPrefix, when set, replaces the target repository's registry and path,
	// keeping its last element (--registry).
	RegistryPrefix string
	// Log receives progress lines; nil is silent.
	Log io.Writer
	// CheckBase, when set, runs once the base is resolved and before any input is used
	// or anything built: the base's signature check (a failure stops the profile).
	CheckBase func(ctx context.Context, plan *Plan) error
	// CacheTo, when set, is a repository ("registry.acme.com/wso2img/cache") where every
	// solve exports its build cache (BuildKit's registry cache, mode=max), tagged with the
	// profile's name, so that another daemon (a replaced pod) can start warm.
	CacheTo string
	// CacheFrom, when set, is a repository of such caches that every solve imports from
	// (the profile's tag; a missing one only means a cold build).
	CacheFrom string
}

// Planner resolves bases and verifies inputs. One Planner serves many profiles, so they
// share one download cache and HTTP client.
type Planner struct {
	opts    Options
	fetcher *inputs.Fetcher
}

// NewPlanner sets up a Planner.
func NewPlanner(opts Options) (*Planner, error) {
	if opts.Inputs.Log == nil {
		opts.Inputs.Log = opts.Log
	}
	f, err := inputs.New(opts.Inputs)
	if err != nil {
		return nil, err
	}
	return &Planner{opts: opts, fetcher: f}, nil
}

// Plan is everything a build needs, resolved and verified. Nothing in it comes from
// the network unverified.
type Plan struct {
	Profile *profiles.Profile `json:"-"`
	// Repository is where the image is pushed ("" when the profile names none).
	Repository string            `json:"image,omitempty"`
	Tags       []tags.Published  `json:"tags"`
	Base       Base              `json:"base"`
	Home       string            `json:"home"`
	UID        int               `json:"uid"`
	GID        int               `json:"gid"`
	Ports      []int             `json:"ports"`
	Platforms  []string          `json:"platforms"`
	Inputs     []Input           `json:"inputs"`
	Created    time.Time         `json:"created"`
	Update     profiles.Update   `json:"update"`
	Env        map[string]string `json:"env,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	// Reasons say why the plan is built (set by Options.Select), for the result.
	Reasons []string `json:"-"`
	// RebuildID identifies the image's content (see rebuildID).
	RebuildID string `json:"rebuildId"`
	// Source and Revision locate the profile in git, when it lives in a repository.
	Source   string `json:"source,omitempty"`
	Revision string `json:"revision,omitempty"`
	// Configs are the base's configs by platform.
	Configs map[string]*v1.ConfigFile `json:"-"`
	// stage holds the verified copies of the inputs, which the build reads.
	stage *inputs.Stage
}

// Close removes the verified copies of the plan's inputs, which its build reads: call
// it once the plan is built, or will not be. A plan made from it by WithRelease shares
// them, so closing either closes both. It is safe to call more than once, and on nil.
func (plan *Plan) Close() error {
	if plan == nil || plan.stage == nil {
		return nil
	}
	return plan.stage.Close()
}

// Base is the resolved base image.
type Base struct {
	// Ref is the base as the profile names it.
	Ref string `json:"ref"`
	// Pull is where it is pulled from, by digest: Ref's repository or its mirror.
	Pull string `json:"pull"`
	// Digest is the manifest (or index) digest behind Ref.
	Digest string `json:"digest"`
	// Platforms the base provides, of those the profile builds.
	Platforms []string `json:"platforms"`
	// Index says whether the digest names an image index.
	Index bool `json:"index"`
	// Mirrored says whether Pull is a mirror of Ref's repository.
	Mirrored bool `json:"mirrored,omitempty"`
}

// Input is a verified input and where it lands.
type Input struct {
	*inputs.Verified `json:"-"`
	Source           string      `json:"source"`
	Digest           string      `json:"digest"`
	Size             int64       `json:"size"`
	Dest             string      `json:"dest"`
	Dir              bool        `json:"dir,omitempty"`
	Mode             fs.FileMode `json:"-"`
	ModeString       string      `json:"mode,omitempty"`
	Signer           string      `json:"signer,omitempty"`
	// Archive is the digest of the archive an extracted input came from (Digest is that
	// of the tree it holds).
	Archive string `json:"archive,omitempty"`
	// TrustStore describes a trust store input.
	TrustStore *TrustStore `json:"truststore,omitempty"`
}

// TrustStore is what a trust store input was made of. It never holds the password.
type TrustStore struct {
	// Format is JKS or PKCS12.
	Format string `json:"format"`
	// Password says where the password came from: "default" (wso2carbon) or
	// "env VARIABLE".
	Password     string `json:"password"`
	AllowExpired bool   `json:"allowExpired,omitempty"`
	AllowNonCA   bool   `json:"allowNonCA,omitempty"`
	// Certificates are the verified certificate files, in the profile's order.
	Certificates []TrustCertificate `json:"certificates"`
	// Entries are the store's entries, sorted by alias.
	Entries []TrustEntry `json:"entries"`
}

// TrustCertificate is one verified certificate file of a trust store.
type TrustCertificate struct {
	Source string `json:"source"`
	Digest string `json:"digest"`
	Alias  string `json:"alias,omitempty"`
	Signer string `json:"signer,omitempty"`
}

// TrustEntry is one entry of a trust store, as keytool -list names it.
type TrustEntry struct {
	Alias   string `json:"alias"`
	Subject string `json:"subject"`
	SHA256  string `json:"sha256"`
}

// Plan resolves the profile's base and verifies every input, keeping verified copies
// for the build (call Plan.Close when done with the plan). Base and inputs are worked
// on at once; every failure is reported, joined.
func (p *Planner) Plan(ctx context.Context, prof *profiles.Profile) (*Plan, error) {
	prof, plan, err := p.start(ctx, prof)
	if err != nil {
		return nil, err
	}
	specs, err := p.specs(prof)
	if err != nil {
		return nil, err
	}
	stage, err := p.fetcher.NewStage()
	if err != nil {
		return nil, fmt.Errorf("profile %q: %w", prof.Name, err)
	}
	var verified []*inputs.Verified
	var baseErr, inputErr error
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { baseErr = p.base(gctx, prof, plan); return nil })
	g.Go(func() error { verified, inputErr = stage.FetchAll(gctx, specs.all); return nil })
	_ = g.Wait()
	if err := errors.Join(baseErr, inputErr); err != nil {
		stage.Close()
		return nil, err
	}
	plan.stage = stage
	plan.Source, plan.Revision = gitSource(ctx, prof.Dir)
	if err := p.finish(ctx, prof, plan, specs, verified); err != nil {
		stage.Close()
		return nil, err
	}
	return plan, nil
}

// PlanBase resolves only the profile's base (its update when it follows the latest,
// its digest, its platforms): what mirroring needs, without fetching any input.
func (p *Planner) PlanBase(ctx context.Context, prof *profiles.Profile) (*Plan, error) {
	prof, plan, err := p.start(ctx, prof)
	if err != nil {
		return nil, err
	}
	if err := p.base(ctx, prof, plan); err != nil {
		return nil, err
	}
	return plan, nil
}

// base resolves the base and runs the CheckBase hook on it.
func (p *Planner) base(ctx context.Context, prof *profiles.Profile, plan *Plan) error {
	if err := p.resolveBase(ctx, prof, plan); err != nil {
		return err
	}
	if p.opts.CheckBase != nil {
		return p.opts.CheckBase(ctx, plan)
	}
	return nil
}

// start resolves a "latest" update and fills in what the profile alone decides.
func (p *Planner) start(ctx context.Context, prof *profiles.Profile) (*profiles.Profile, *Plan, error) {
	if prof.Update.Follows() {
		resolved, err := p.resolveLatest(ctx, prof)
		if err != nil {
			return nil, nil, err
		}
		prof = resolved
	}
	return prof, &Plan{
		Profile:    prof,
		Repository: prof.Repository(p.opts.RegistryPrefix),
		Tags:       prof.Tags(),
		UID:        prof.User.UID,
		GID:        prof.User.GID,
		Platforms:  normalizePlatforms(prof.BuildPlatforms()),
		Update:     prof.Update,
		Env:        prof.Env,
		Labels:     prof.Labels,
	}, nil
}

// inputSpecs are the specs to fetch for a profile's inputs: one for a url or a path,
// one per certificate file for a trust store.
type inputSpecs struct {
	all []inputs.Spec
	// of lists, for each of the profile's inputs, the indexes of its specs in all.
	of [][]int
}

func (p *Planner) specs(prof *profiles.Profile) (inputSpecs, error) {
	var keyring *inputs.Keyring
	if prof.GPG.Keyring != "" {
		k, err := inputs.LoadKeyring(prof.GPG.Keyring, prof.GPG.Fingerprints)
		if err != nil {
			// LoadKeyring's message starts with the path, which the VerifyError names already.
			why := strings.TrimPrefix(err.Error(), "loading keyring "+prof.GPG.Keyring+": ")
			return inputSpecs{}, &inputs.VerifyError{Profile: prof.Name, Field: "gpg.keyring", Source: prof.GPG.Keyring,
				What: "gpg keyring", Expected: "the pinned keys", Found: why, Err: err}
		}
		keyring = k
	}
	if err := checkEnv(prof); err != nil {
		return inputSpecs{}, err
	}
	var sp inputSpecs
	add := func(i int, s inputs.Spec) {
		s.Profile, s.Keyring = prof.Name, keyring
		sp.of[i] = append(sp.of[i], len(sp.all))
		sp.all = append(sp.all, s)
	}
	sp.of = make([][]int, len(prof.Inputs))
	for i, in := range prof.Inputs {
		if ts := in.TrustStore; ts != nil {
			for j, c := range ts.Certificates {
				add(i, inputs.Spec{
					Field: fmt.Sprintf("inputs[%d].truststore.certificates[%d]", i, j),
					URL:   c.URL, Path: c.Path, Root: c.Root,
					SHA256: strings.ToLower(c.SHA256), SHA512: strings.ToLower(c.SHA512),
					Signature: c.Signature, Auth: specAuth(c.Auth), MaxSize: inputs.CertificateMaxSize,
				})
			}
			continue
		}
		add(i, inputs.Spec{
			Field: fmt.Sprintf("inputs[%d]", i),
			URL:   in.URL, Path: in.Path, Root: in.Root,
			SHA256: strings.ToLower(in.SHA256), SHA512: strings.ToLower(in.SHA512),
			Signature: in.Signature, Auth: specAuth(in.Auth), MaxSize: int64(in.MaxSize), Extract: in.Extract,
		})
	}
	return sp, nil
}

func specAuth(a *profiles.Auth) *inputs.Auth {
	if a == nil {
		return nil
	}
	return &inputs.Auth{Env: a.Env, Basic: a.Scheme == "basic"}
}

// checkEnv refuses, before anything is fetched, a profile whose credentials or trust
// store password come from a variable that is not set: a profile error (the run's
// environment does not fit the profile), not a failed verification.
func checkEnv(prof *profiles.Profile) error {
	var probs []profiles.Problem
	need := func(field, env, what string) {
		if os.Getenv(env) == "" {
			probs = append(probs, profiles.Problem{Field: field, Message: fmt.Sprintf("$%s is not set (or empty): it holds %s", env, what)})
		}
	}
	for i, in := range prof.Inputs {
		if in.Auth != nil {
			need(fmt.Sprintf("inputs[%d].auth.env", i), in.Auth.Env, "the credentials of the url")
		}
		if ts := in.TrustStore; ts != nil {
			if ts.Password != nil {
				need(fmt.Sprintf("inputs[%d].truststore.password.env", i), ts.Password.Env, "the trust store's password")
			}
			for j, c := range ts.Certificates {
				if c.Auth != nil {
					need(fmt.Sprintf("inputs[%d].truststore.certificates[%d].auth.env", i, j), c.Auth.Env, "the credentials of the url")
				}
			}
		}
	}
	if len(probs) > 0 {
		return &profiles.Error{File: prof.File, Problems: probs}
	}
	return nil
}

// resolveBase finds the digest behind the base reference, checks the pin and the
// platforms, and reads each platform's config. Only manifests and configs are read:
// the base's layers are never downloaded.
func (p *Planner) resolveBase(ctx context.Context, prof *profiles.Profile, plan *Plan) error {
	ref := prof.BaseRef()
	pull := p.pullName(prof, ref)
	mirrored := pull != ref
	r, err := p.opts.Registry.ParseReference(pull)
	if err != nil {
		return fmt.Errorf("profile %q: base %s: %w", prof.Name, pull, err)
	}
	desc, err := remote.Get(r, p.opts.Registry.Remote(ctx)...)
	if err != nil {
		return fmt.Errorf("profile %q: resolving base %s: %w", prof.Name, pull, err)
	}
	digest := desc.Digest.String()
	if prof.Base.Digest != "" && prof.Base.Digest != digest {
		return &inputs.VerifyError{Profile: prof.Name, Field: "base.digest", Source: pull, What: "base digest",
			Expected: prof.Base.Digest, Found: digest}
	}
	plan.Base = Base{Ref: ref, Pull: r.Context().Digest(digest).String(), Digest: digest, Mirrored: mirrored}
	plan.Configs = map[string]*v1.ConfigFile{}

	if !desc.MediaType.IsIndex() && desc.MediaType != types.DockerManifestSchema2 && desc.MediaType != types.OCIManifestSchema1 {
		return fmt.Errorf("profile %q: base %s is a %s, not an image", prof.Name, pull, desc.MediaType)
	}
	plan.Base.Index = desc.MediaType.IsIndex()
	all, err := registry.PlatformImages(desc)
	var np *registry.NoPlatformError
	if errors.As(err, &np) {
		return &inputs.VerifyError{Profile: prof.Name, Field: "base.image", Source: pull, What: "base index",
			Expected: "an index whose every image names its platform", Found: np.Error(), Err: err}
	}
	if err != nil {
		return fmt.Errorf("profile %q: reading base %s: %w", prof.Name, pull, err)
	}
	have := map[string]v1.Image{}
	var offered []string
	for _, pi := range all {
		if _, dup := have[pi.Platform]; !dup {
			have[pi.Platform] = pi.Image
			offered = append(offered, pi.Platform)
		}
	}
	images := map[string]v1.Image{}
	for _, pl := range plan.Platforms {
		img, ok := have[pl]
		if !ok {
			return &PlatformError{Profile: prof.Name, Base: ref, Missing: pl, Offered: offered}
		}
		images[pl] = img
	}
	for pl, img := range images {
		cf, err := img.ConfigFile()
		if err != nil {
			return fmt.Errorf("profile %q: reading base config %s (%s): %w", prof.Name, pull, pl, err)
		}
		plan.Configs[pl] = cf
	}
	plan.Base.Platforms = plan.Platforms
	return nil
}

// pullName is where a base reference (or repository) is pulled from: the profile's
// base.mirror, else a --mirror that covers it, else itself.
func (p *Planner) pullName(prof *profiles.Profile, ref string) string {
	if prof.Base.Mirror != "" {
		return prof.InMirror(ref)
	}
	m, _ := p.opts.Registry.Mirrored(ref)
	return m
}

// PlatformError is a platform the profile builds that the base does not provide.
type PlatformError struct {
	Profile, Base, Missing string
	Offered                []string
}

func (e *PlatformError) Error() string {
	return fmt.Sprintf("profile %q: base %s has no %s image (it has: %s); there is nothing to extend for that platform",
		e.Profile, e.Base, e.Missing, strings.Join(e.Offered, ", "))
}

// finish fills in what needs both the base and the inputs: home, ports, modes, time,
// trust stores (built at the update's time), and the checks of where inputs land.
func (p *Planner) finish(ctx context.Context, prof *profiles.Profile, plan *Plan, sp inputSpecs, verified []*inputs.Verified) error {
	first := plan.Configs[plan.Platforms[0]]
	baseHome := envValue(first.Config.Env, "WSO2_SERVER_HOME")
	switch {
	case prof.Home == "" && baseHome == "":
		return &profiles.Error{File: prof.File, Problems: []profiles.Problem{{Field: "home",
			Message: fmt.Sprintf("not set, and base %s has no WSO2_SERVER_HOME to take it from", plan.Base.Ref)}}}
	case prof.Home != "" && baseHome != "" && prof.Home != baseHome:
		return &profiles.Error{File: prof.File, Problems: []profiles.Problem{{Field: "home",
			Message: fmt.Sprintf("%s, but base %s has WSO2_SERVER_HOME=%s: files would land where the server does not look", prof.Home, plan.Base.Ref, baseHome)}}}
	case prof.Home != "":
		plan.Home = prof.Home
	default:
		plan.Home = baseHome
	}

	if len(prof.Ports) > 0 {
		plan.Ports = slices.Clone(prof.Ports)
	} else {
		for port := range first.Config.ExposedPorts {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSuffix(port, "/tcp"), "/udp"))
			if err == nil {
				plan.Ports = append(plan.Ports, n)
			}
		}
	}
	sort.Ints(plan.Ports)

	// The update's time makes the build reproducible (SOURCE_DATE_EPOCH): a WUM update
	// carries it; a U2 level does not, so the base image's creation time stands in.
	if prof.Update.WUM != 0 {
		plan.Created = prof.Tag().Time()
	} else {
		plan.Created = first.Created.UTC()
	}

	withHome := *prof
	withHome.Home = plan.Home
	var errs []error
	for i, pin := range prof.Inputs {
		var in Input
		if pin.TrustStore != nil {
			var err error
			if in, err = p.trustStore(ctx, &withHome, plan, i, sp, verified); err != nil {
				errs = append(errs, err)
				continue
			}
		} else {
			v := verified[sp.of[i][0]]
			in = Input{Verified: v, Source: v.Spec.URL, Digest: v.Digest, Size: v.Size, Dest: withHome.DestPath(i), Dir: v.Dir, Signer: v.Signer, Archive: v.Archive}
			if in.Source == "" {
				in.Source = v.Spec.Path
			}
		}
		if !in.Dir {
			in.Mode = 0o644
			if m := pin.Mode; m != "" {
				n, _ := strconv.ParseUint(m, 8, 32) // validated by the profile loader
				in.Mode = fs.FileMode(n)
			} else if in.Spec.Path != "" && in.Files[0].Mode&0o111 != 0 {
				in.Mode = 0o755
			}
			in.ModeString = fmt.Sprintf("%04o", uint32(in.Mode))
		} else if pin.Mode != "" {
			return &profiles.Error{File: prof.File, Problems: []profiles.Problem{{Field: fmt.Sprintf("inputs[%d].mode", i),
				Message: fmt.Sprintf("%s is a directory: a mode applies to one file", in.Source)}}}
		}
		plan.Inputs = append(plan.Inputs, in)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := checkDests(prof, plan); err != nil {
		return err
	}
	if err := checkConfigs(plan); err != nil {
		return err
	}
	plan.RebuildID = rebuildID(plan)
	return nil
}

// trustStore builds trust store input i from its verified certificate files, at the
// plan's time (the update's), and stages it.
func (p *Planner) trustStore(ctx context.Context, prof *profiles.Profile, plan *Plan, i int, sp inputSpecs, verified []*inputs.Verified) (Input, error) {
	ts := prof.Inputs[i].TrustStore
	format := truststore.Format(strings.ToUpper(ts.Format))
	if ts.Format == "" {
		var why string
		format, why = truststore.DefaultFormat(prof.Product, prof.Version)
		if p.opts.Log != nil {
			fmt.Fprintf(p.opts.Log, "profile %q: inputs[%d]: trust store format %s: %s\n", prof.Name, i, format, why)
		}
	}
	info := &TrustStore{Format: string(format), Password: "default", AllowExpired: ts.AllowExpired, AllowNonCA: ts.AllowNonCA}
	// Entries are dated with the update's time (the same bytes every run); certificates
	// must be valid now.
	opts := truststore.Options{Format: format, Password: truststore.DefaultPassword, Time: plan.Created, ValidAt: time.Now(), AllowExpired: ts.AllowExpired, AllowNonCA: ts.AllowNonCA}
	if ts.Password != nil {
		info.Password = "env " + ts.Password.Env
		opts.Password = os.Getenv(ts.Password.Env)
		if opts.Password == "" {
			return Input{}, &profiles.Error{File: prof.File, Problems: []profiles.Problem{{Field: fmt.Sprintf("inputs[%d].truststore.password.env", i),
				Message: fmt.Sprintf("$%s is not set (or empty): it holds the trust store's password", ts.Password.Env)}}}
		}
	}
	spec := inputs.TrustStoreSpec{Profile: prof.Name, Field: fmt.Sprintf("inputs[%d].truststore", i), Options: opts}
	var sources []string
	for j, k := range sp.of[i] {
		v := verified[k]
		spec.Certificates = append(spec.Certificates, v)
		spec.Aliases = append(spec.Aliases, ts.Certificates[j].Alias)
		src := v.Spec.URL
		if src == "" {
			src = v.Spec.Path
		}
		sources = append(sources, src)
		info.Certificates = append(info.Certificates, TrustCertificate{Source: src, Digest: v.Digest, Alias: ts.Certificates[j].Alias, Signer: v.Signer})
	}
	v, entries, err := plan.stage.TrustStore(ctx, spec)
	if err != nil {
		return Input{}, err
	}
	for _, e := range entries {
		info.Entries = append(info.Entries, TrustEntry{Alias: e.Alias, Subject: e.Subject, SHA256: e.SHA256})
	}
	return Input{Verified: v, Source: "truststore:" + strings.Join(sources, ","), Digest: v.Digest, Size: v.Size,
		Dest: prof.TrustStoreDest(i, format.FileName()), TrustStore: info}, nil
}

// configPaths are where WSO2 products read deployment.toml, relative to the product
// home: Identity Server and API Manager, and Micro Integrator 4.x.
var configPaths = []string{"repository/conf/deployment.toml", "conf/deployment.toml"}

// maxConfigSize bounds a deployment.toml that is checked: a real one is a few kB.
const maxConfigSize = 16 << 20

// checkConfigs parses every file that lands where the product reads its
// deployment.toml, from a file, a directory or an extracted archive, so that a typo
// fails before anything is built and not when the server starts. A file that does
// not parse is a *inputs.VerifyError (exit code 3: an input whose content failed a
// check, like a checksum, not a mistake in the profile) whose Err is the
// *tomlcheck.Error, with its line and column.
func checkConfigs(plan *Plan) error {
	targets := map[string]bool{}
	for _, c := range configPaths {
		targets[path.Join(plan.Home, c)] = true
	}
	var errs []error
	for i, in := range plan.Inputs {
		check := func(local, name string) {
			if err := checkConfig(plan, i, in, local, name); err != nil {
				errs = append(errs, err)
			}
		}
		if !in.Dir {
			if targets[in.Dest] && in.TrustStore == nil {
				check(in.Local, in.Source)
			}
			continue
		}
		for _, f := range in.Files {
			if f.Type == "file" && targets[path.Join(in.Dest, f.Rel)] {
				check(filepath.Join(in.Local, filepath.FromSlash(f.Rel)), in.Source+"/"+f.Rel)
			}
		}
	}
	return errors.Join(errs...)
}

func checkConfig(plan *Plan, i int, in Input, local, name string) error {
	verr := func(expected, found string, err error) error {
		return &inputs.VerifyError{Profile: plan.Profile.Name, Field: fmt.Sprintf("inputs[%d]", i), Source: name,
			What: inputs.WhatConfig, Expected: expected, Found: found, Err: err}
	}
	f, err := os.Open(local)
	if err != nil {
		return fmt.Errorf("profile %q, inputs[%d] (%s): reading the staged deployment.toml: %w", plan.Profile.Name, i, name, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return fmt.Errorf("profile %q, inputs[%d] (%s): reading the staged deployment.toml: %w", plan.Profile.Name, i, name, err)
	}
	if len(data) > maxConfigSize {
		return verr(fmt.Sprintf("a deployment.toml of at most %d MiB", maxConfigSize>>20), "a bigger file", nil)
	}
	if err := tomlcheck.Check(name, data); err != nil {
		return verr("TOML that parses (the product reads it only when it starts)", err.Error(), err)
	}
	return nil
}

// rebuildID identifies what an image is made of: the base digest, the profile (without
// its release, which only names a rebuild) and every input's digest, destination and
// mode; for an extracted archive also the archive's digest, for a trust store its
// format, options, where its password comes from and its certificates' digests and
// aliases. Two plans with the same ID build the same image; `watch` compares it with the
// label of what the target holds, so "nothing changed" is decided exactly.
func rebuildID(plan *Plan) string {
	prof := *plan.Profile
	prof.Release = 0
	h := sha256.New()
	fmt.Fprintf(h, "base %s\nprofile %s\nplatforms %s\n", plan.Base.Digest, prof.Digest(), strings.Join(plan.Platforms, ","))
	for _, in := range plan.Inputs {
		fmt.Fprintf(h, "input %s %s %s %v\n", in.Digest, in.Dest, in.ModeString, in.Dir)
		// Lines for the newer kinds only where they occur, so that the ID of a plan
		// without them is what it always was.
		if in.Archive != "" {
			fmt.Fprintf(h, "extracted from %s\n", in.Archive)
		}
		if ts := in.TrustStore; ts != nil {
			// Where the password comes from, never its value.
			fmt.Fprintf(h, "truststore %s password %s allowExpired %v allowNonCA %v\n", ts.Format, ts.Password, ts.AllowExpired, ts.AllowNonCA)
			for _, c := range ts.Certificates {
				fmt.Fprintf(h, "certificate %s alias %q\n", c.Digest, c.Alias)
			}
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// WithRelease is the plan published under another release of the same update: the same
// image content, other tags.
func (plan *Plan) WithRelease(release int) *Plan {
	c := *plan
	prof := *plan.Profile
	prof.Release = release
	c.Profile = &prof
	c.Tags = prof.Tags()
	return &c
}

// checkDests catches what the loader could not: a local path that became a directory or
// a file since, and an absolute dest once the home came from the base.
func checkDests(prof *profiles.Profile, plan *Plan) error {
	var probs []profiles.Problem
	seen := map[string]int{}
	for i, in := range plan.Inputs {
		if in.Dest != plan.Home && !strings.HasPrefix(in.Dest, plan.Home+"/") {
			probs = append(probs, profiles.Problem{Field: fmt.Sprintf("inputs[%d].dest", i),
				Message: fmt.Sprintf("%s is outside the product home %s", in.Dest, plan.Home)})
		}
		if j, dup := seen[in.Dest]; dup && !(in.Dir && plan.Inputs[j].Dir) {
			probs = append(probs, profiles.Problem{Field: fmt.Sprintf("inputs[%d].dest", i),
				Message: fmt.Sprintf("%s is also where inputs[%d] goes", in.Dest, j)})
		}
		seen[in.Dest] = i
	}
	probs = append(probs, overlaps(plan)...)
	if len(probs) > 0 {
		return &profiles.Error{File: prof.File, Problems: probs}
	}
	return symlinksInHome(prof, plan)
}

// provided is a path the layer writes, and which input writes it.
type provided struct {
	input int
	dir   bool
}

// overlaps finds paths that two inputs write, unless both write a directory there (two
// directory inputs may fill one folder), and paths one input writes below another's
// file: the layer would hold one of them, silently.
func overlaps(plan *Plan) []profiles.Problem {
	paths := map[string]provided{}
	var probs []profiles.Problem
	add := func(i int, p string, dir bool) {
		if prev, ok := paths[p]; ok && prev.input != i && !(prev.dir && dir) {
			probs = append(probs, profiles.Problem{Field: fmt.Sprintf("inputs[%d].dest", i),
				Message: fmt.Sprintf("%s is also written by inputs[%d]: one would silently replace the other", p, prev.input)})
			return
		}
		if _, ok := paths[p]; !ok {
			paths[p] = provided{i, dir}
		}
	}
	for i, in := range plan.Inputs {
		if !in.Dir || in.Verified == nil {
			add(i, in.Dest, false)
			continue
		}
		add(i, in.Dest, true)
		for _, f := range in.Verified.Files {
			add(i, path.Join(in.Dest, f.Rel), f.Type == "dir")
		}
	}
	for p, pr := range paths {
		for d := path.Dir(p); d != "/" && d != "."; d = path.Dir(d) {
			if above, ok := paths[d]; ok && !above.dir && above.input != pr.input {
				probs = append(probs, profiles.Problem{Field: fmt.Sprintf("inputs[%d].dest", pr.input),
					Message: fmt.Sprintf("%s lands below %s, which inputs[%d] writes as a file", p, d, above.input)})
				break
			}
		}
	}
	sort.Slice(probs, func(i, j int) bool { return probs[i].Message < probs[j].Message })
	return probs
}

// symlinksInHome refuses a symlink of a directory input (or an extracted archive) that
// points out of the product home once it is in the image: what it reaches there is the
// base's, or nothing, never what was verified.
func symlinksInHome(prof *profiles.Profile, plan *Plan) error {
	for i, in := range plan.Inputs {
		if !in.Dir || in.Verified == nil {
			continue
		}
		for _, f := range in.Verified.Files {
			if f.Type != "symlink" {
				continue
			}
			at := path.Join(in.Dest, f.Rel)
			to := f.Target
			if !path.IsAbs(to) {
				to = path.Join(path.Dir(at), to)
			}
			to = path.Clean(to)
			if to != plan.Home && !strings.HasPrefix(to, plan.Home+"/") {
				return &inputs.VerifyError{Profile: prof.Name, Field: fmt.Sprintf("inputs[%d]", i), Source: in.Source, What: "symlink",
					Expected: "symlinks that stay inside the product home " + plan.Home + " in the image",
					Found:    fmt.Sprintf("%s -> %s, which points to %s", f.Rel, f.Target, to)}
			}
		}
	}
	return nil
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

func normalizePlatforms(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = platforms.Format(platforms.Normalize(platforms.MustParse(s)))
	}
	return out
}
