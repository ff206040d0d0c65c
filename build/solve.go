package build

import (
	"context"
	"encoding/json"
	"fmt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/containerd/platforms"
	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth/authprovider"
	"github.com/tonistiigi/fsutil"

	"github.com/wso2img/wso2img/profiles"
)

// Output says where a build goes.
type Output struct {
	// Kind is "registry" (push to the plan's repository), "oci" (an OCI layout folder)
	// or "tar" (an OCI archive file).
	Kind string
	// Path is the folder or file for "oci" and "tar".
	Path string
}

// ParseOutput reads --output: "registry" (or ""), "oci:DIR" or "tar:FILE".
func ParseOutput(s string) (Output, error) {
	switch kind, p, _ := strings.Cut(s, ":"); kind {
	case "", "registry":
		return Output{Kind: "registry"}, nil
	case "oci", "tar":
		if p == "" {
			return Output{}, fmt.Errorf("--output %s needs a path: %s:PATH", kind, kind)
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return Output{}, err
		}
		return Output{Kind: kind, Path: abs}, nil
	default:
		return Output{}, fmt.Errorf("--output %q: expected registry, oci:DIR or tar:FILE", s)
	}
}

// solver runs builds on one BuildKit daemon, multiplexing every solve's progress into
// one status channel so that one display can draw concurrent builds.
type solver struct {
	c *client.Client
	// shared is the session of registry builds.
	shared sharedSession
	// name is the daemon's address, for messages ("" for the default one).
	name     string
	opts     Options
	status   chan<- *client.SolveStatus
	forwards sync.WaitGroup
}

// export describes what one solve does with its result.
type export struct {
	entry client.ExportEntry
	// close is called once the solve has returned (an output file).
	close func() error
}

// exportAttrs are the attributes common to every image export: OCI media types, the
// update's time for the config and history (the layer's files carry it already, see
// NewLayer), and the base annotations.
func exportAttrs(plan *Plan) map[string]string {
	a := map[string]string{
		"oci-mediatypes":    "true",
		"source-date-epoch": strconv.FormatInt(plan.Created.Unix(), 10),
	}
	labels := plan.ImageLabels()
	for _, k := range []string{profiles.LabelBaseName, profiles.LabelBaseDigest} {
		a["annotation."+k] = labels[k]
	}
	return a
}

// registryExport pushes by digest only: no tag is written by BuildKit. push=false
// computes the digest without pushing anything.
func registryExport(plan *Plan, push, insecure bool) export {
	a := exportAttrs(plan)
	a["push"] = strconv.FormatBool(push)
	if push {
		a["name"] = plan.Repository
		a["push-by-digest"] = "true"
		if insecure {
			a["registry.insecure"] = "true"
		}
	}
	return export{entry: client.ExportEntry{Type: client.ExporterImage, Attrs: a}}
}

// localExport writes an OCI layout folder or archive.
func localExport(plan *Plan, out Output) (export, error) {
	a := exportAttrs(plan)
	name := plan.Repository
	if name == "" {
		name = plan.Profile.Name
	}
	a["name"] = name + ":" + plan.Tags[0].Tag
	if out.Kind == "oci" {
		a["tar"] = "false"
		return export{entry: client.ExportEntry{Type: client.ExporterOCI, Attrs: a, OutputDir: out.Path}}, nil
	}
	if err := os.MkdirAll(filepath.Dir(out.Path), 0o755); err != nil {
		return export{}, err
	}
	f, err := os.Create(out.Path)
	if err != nil {
		return export{}, err
	}
	return export{
		entry: client.ExportEntry{Type: client.ExporterOCI, Attrs: a, Output: func(map[string]string) (io.WriteCloser, error) { return nopCloser{f}, nil }},
		close: f.Close,
	}, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// solve builds the plan's image for every platform and exports it once; it returns the
// exported image's (or index's) digest.
func (s *solver) solve(ctx context.Context, plan *Plan, ex export) (string, error) {
	layer := NewLayer(plan)
	mounts := map[string]fsutil.FS{}
	for name, dir := range layer.Locals {
		fs, err := fsutil.NewFS(dir)
		if err != nil {
			return "", fmt.Errorf("profile %q: reading %s: %w", plan.Profile.Name, dir, err)
		}
		mounts[name] = fs
	}
	cacheExports, cacheImports, err := cacheEntries(s.opts, plan)
	if err != nil {
		return "", fmt.Errorf("profile %q: %w", plan.Profile.Name, err)
	}
	opt := client.SolveOpt{
		Exports:      []client.ExportEntry{ex.entry},
		CacheExports: cacheExports,
		// Cache imports go on the build function's own solve requests (buildResult):
		// for a gateway build, SolveOpt.CacheImports only become frontend attributes
		// for a frontend to read.
	}
	if ex.entry.Type == client.ExporterImage && ex.entry.Output == nil && ex.entry.OutputDir == "" {
		// A registry build needs nothing of the session but folders and credentials:
		// the run's one shared session serves them.
		if err := s.shared.start(s.c); err != nil {
			return "", fmt.Errorf("profile %q: %w", plan.Profile.Name, err)
		}
		s.shared.add(mounts)
		opt.SharedSession, opt.SessionPreInitialized = s.shared.s, true
	} else {
		opt.LocalMounts = mounts
		opt.Session = []session.Attachable{authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{
			AuthConfigProvider: authprovider.LoadAuthConfig(loadDockerConfig()),
		})}
	}

	ch := make(chan *client.SolveStatus)
	s.forwards.Add(1)
	go func() {
		defer s.forwards.Done()
		for st := range ch {
			if s.status != nil {
				s.status <- st
			}
		}
	}()
	resp, err := s.c.Build(ctx, opt, "wso2img", func(ctx context.Context, c gateway.Client) (*gateway.Result, error) {
		return buildResult(ctx, c, plan, layer, cacheImports)
	}, ch)
	if ex.close != nil {
		if cerr := ex.close(); err == nil && cerr != nil {
			err = cerr
		}
	}
	if err != nil {
		at := ""
		if s.name != "" {
			at = " at " + s.name
		}
		if st, ok := status.FromError(err); ok && st.Code() == codes.Unavailable && ctx.Err() == nil {
			return "", fmt.Errorf("profile %q: BuildKit%s stopped answering in the middle of the build (the daemon died, or the connection to it was lost); no tag was written, and running again completes the image: %w", plan.Profile.Name, at, err)
		}
		return "", fmt.Errorf("profile %q: building on BuildKit%s: %w", plan.Profile.Name, at, err)
	}
	digest := resp.ExporterResponse[exptypes.ExporterImageDigestKey]
	if digest == "" {
		return "", fmt.Errorf("profile %q: BuildKit returned no image digest", plan.Profile.Name)
	}
	return digest, nil
}

// CacheRef is where the registry cache of a profile lives in repo (Options.CacheTo,
// CacheFrom): the profile's name as the tag, so that the profiles of one run, built
// side by side, never overwrite each other's cache.
func CacheRef(repo, profile string) (string, error) {
	r, err := name.NewRepository(repo)
	if err != nil {
		return "", fmt.Errorf("cache repository %q: expected a repository such as registry.acme.com/wso2img/cache (each profile's cache is tagged with its name): %w", repo, err)
	}
	tag := strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-' {
			return c
		}
		return '-'
	}, profile)
	tag = strings.TrimLeft(tag, ".-")
	if tag == "" {
		tag = "cache"
	}
	return r.Name() + ":" + tag[:min(len(tag), 128)], nil
}

// cacheEntries are BuildKit's registry cache exporter and importer for the plan, when
// Options ask for them: every intermediate result exported (mode=max), as an OCI image
// manifest, which more registries accept than a bare cache index.
func cacheEntries(opts Options, plan *Plan) (exports, imports []client.CacheOptionsEntry, err error) {
	entry := func(repo string, attrs map[string]string) (client.CacheOptionsEntry, error) {
		ref, err := CacheRef(repo, plan.Profile.Name)
		if err != nil {
			return client.CacheOptionsEntry{}, err
		}
		attrs["ref"] = ref
		if host, _, _ := strings.Cut(ref, "/"); opts.Registry.IsInsecure(host) {
			attrs["registry.insecure"] = "true"
		}
		return client.CacheOptionsEntry{Type: "registry", Attrs: attrs}, nil
	}
	if opts.CacheTo != "" {
		e, err := entry(opts.CacheTo, map[string]string{"mode": "max", "oci-mediatypes": "true", "image-manifest": "true"})
		if err != nil {
			return nil, nil, err
		}
		exports = append(exports, e)
	}
	if opts.CacheFrom != "" {
		e, err := entry(opts.CacheFrom, map[string]string{})
		if err != nil {
			return nil, nil, err
		}
		imports = append(imports, e)
	}
	return exports, imports, nil
}

// buildResult solves each platform's image and attaches its config (and the base's,
// which tells the exporter which history entries are the base's own, to keep their times).
func buildResult(ctx context.Context, c gateway.Client, plan *Plan, layer Layer, cacheImports []client.CacheOptionsEntry) (*gateway.Result, error) {
	var imports []gateway.CacheOptionsEntry
	for _, im := range cacheImports {
		imports = append(imports, gateway.CacheOptionsEntry{Type: im.Type, Attrs: im.Attrs})
	}
	res := gateway.NewResult()
	multi := len(plan.Platforms) > 1
	var exp exptypes.Platforms
	for _, pl := range plan.Platforms {
		p := platforms.MustParse(pl)
		def, err := layer.Image(plan, pl).Marshal(ctx, llb.Platform(p))
		if err != nil {
			return nil, fmt.Errorf("marshalling the build for %s: %w", pl, err)
		}
		r, err := c.Solve(ctx, gateway.SolveRequest{Definition: def.ToPB(), CacheImports: imports})
		if err != nil {
			return nil, err
		}
		ref, err := r.SingleRef()
		if err != nil {
			return nil, err
		}
		cfg, err := ImageConfig(plan, pl)
		if err != nil {
			return nil, err
		}
		cfgJSON, err := json.Marshal(cfg)
		if err != nil {
			return nil, err
		}
		baseJSON, err := json.Marshal(plan.Configs[pl])
		if err != nil {
			return nil, err
		}
		if !multi {
			res.SetRef(ref)
			res.AddMeta(exptypes.ExporterImageConfigKey, cfgJSON)
			res.AddMeta(exptypes.ExporterImageBaseConfigKey, baseJSON)
			continue
		}
		res.AddRef(pl, ref)
		res.AddMeta(exptypes.ExporterImageConfigKey+"/"+pl, cfgJSON)
		res.AddMeta(exptypes.ExporterImageBaseConfigKey+"/"+pl, baseJSON)
		exp.Platforms = append(exp.Platforms, exptypes.Platform{ID: pl, Platform: p})
	}
	if multi {
		dt, err := json.Marshal(exp)
		if err != nil {
			return nil, err
		}
		res.AddMeta(exptypes.ExporterPlatformsKey, dt)
	}
	return res, nil
}

// loadDockerConfig reads the docker config that holds registry credentials: from
// $DOCKER_CONFIG as it is now (the docker library reads that variable only once per
// process), else from ~/.docker.
func loadDockerConfig() *configfile.ConfigFile {
	if dir := os.Getenv("DOCKER_CONFIG"); dir != "" {
		if cf, err := config.Load(dir); err == nil {
			return cf
		}
	}
	return config.LoadDefaultConfigFile(io.Discard)
}
