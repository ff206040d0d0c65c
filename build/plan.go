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
}

// Plan resolves the profile's base and verifies every input. Base and inputs are
// worked on at once; every failure is reported, joined.
func (p *Planner) Plan(ctx context.Context, prof *profiles.Profile) (*Plan, error) {
	prof, plan, err := p.start(ctx, prof)
	if err != nil {
		return nil, err
	}
	specs, err := p.specs(prof)
	if err != nil {
		return nil, err
	}
	var verified []*inputs.Verified
	var baseErr, inputErr error
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { baseErr = p.base(gctx, prof, plan); return nil })
	g.Go(func() error { verified, inputErr = p.fetcher.FetchAll(gctx, specs); return nil })
	_ = g.Wait()
	if err := errors.Join(baseErr, inputErr); err != nil {
		return nil, err
	}
	plan.Source, plan.Revision = gitSource(ctx, prof.Dir)
	if err := p.finish(prof, plan, verified); err != nil {
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

func (p *Planner) specs(prof *profiles.Profile) ([]inputs.Spec, error) {
	var keyring *inputs.Keyring
	if prof.GPG.Keyring != "" {
		k, err := inputs.LoadKeyring(prof.GPG.Keyring, prof.GPG.Fingerprints)
		if err != nil {
			// LoadKeyring's message starts with the path, which the VerifyError names already.
			why := strings.TrimPrefix(err.Error(), "loading keyring "+prof.GPG.Keyring+": ")
			return nil, &inputs.VerifyError{Profile: prof.Name, Field: "gpg.keyring", Source: prof.GPG.Keyring,
				What: "gpg keyring", Expected: "the pinned keys", Found: why, Err: err}
		}
		keyring = k
	}
	specs := make([]inputs.Spec, len(prof.Inputs))
	for i, in := range prof.Inputs {
		specs[i] = inputs.Spec{
			Profile:   prof.Name,
			Field:     fmt.Sprintf("inputs[%d]", i),
			URL:       in.URL,
			Path:      in.Path,
			Root:      in.Root,
			SHA256:    strings.ToLower(in.SHA256),
			SHA512:    strings.ToLower(in.SHA512),
			Signature: in.Signature,
			Keyring:   keyring,
		}
	}
	return specs, nil
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

// finish fills in what needs both the base and the inputs: home, ports, modes, time.
func (p *Planner) finish(prof *profiles.Profile, plan *Plan, verified []*inputs.Verified) error {
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
	for i, v := range verified {
		in := Input{Verified: v, Source: v.Spec.URL, Digest: v.Digest, Size: v.Size, Dest: withHome.DestPath(i), Dir: v.Dir, Signer: v.Signer}
		if in.Source == "" {
			in.Source = v.Spec.Path
		}
		if !v.Dir {
			in.Mode = 0o644
			if m := prof.Inputs[i].Mode; m != "" {
				n, _ := strconv.ParseUint(m, 8, 32) // validated by the profile loader
				in.Mode = fs.FileMode(n)
			} else if v.Spec.Path != "" && v.Files[0].Mode&0o111 != 0 {
				in.Mode = 0o755
			}
			in.ModeString = fmt.Sprintf("%04o", uint32(in.Mode))
		} else if prof.Inputs[i].Mode != "" {
			return &profiles.Error{File: prof.File, Problems: []profiles.Problem{{Field: fmt.Sprintf("inputs[%d].mode", i),
				Message: fmt.Sprintf("%s is a directory: a mode applies to one file", v.Spec.Path)}}}
		}
		plan.Inputs = append(plan.Inputs, in)
	}
	if err := checkDests(prof, plan); err != nil {
		return err
	}
	plan.RebuildID = rebuildID(plan)
	return nil
}

// rebuildID identifies what an image is made of: the base digest, the profile (without
// its release, which only names a rebuild) and every input's digest, destination and
// mode. Two plans with the same ID build the same image; `watch` compares it with the
// label of what the target holds, so "nothing changed" is decided exactly.
func rebuildID(plan *Plan) string {
	prof := *plan.Profile
	prof.Release = 0
	h := sha256.New()
	fmt.Fprintf(h, "base %s\nprofile %s\nplatforms %s\n", plan.Base.Digest, prof.Digest(), strings.Join(plan.Platforms, ","))
	for _, in := range plan.Inputs {
		fmt.Fprintf(h, "input %s %s %s %v\n", in.Digest, in.Dest, in.ModeString, in.Dir)
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
	if len(probs) > 0 {
		return &profiles.Error{File: prof.File, Problems: probs}
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
