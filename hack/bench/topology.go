//go:build linux

package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/wso2img/wso2img/internal/netfault"
	"github.com/wso2img/wso2img/internal/standin"
)

// The topology scenario: the base in the vendor's registry (as WSO2's images are in
// registry.wso2.com), reached only over a shaped link, and the image pushed to the
// user's own registry on loopback. Four steps, each run from a fresh state:
//
//  1. first: the first build of a new target repository, the target registry holding
//     nothing of the base;
//  2. second: another profile on the same base, into another target repository, once
//     the base has reached the target registry (by step 1);
//  3. update: the first profile again on WSO2's next update, a new tag whose image has
//     the base's layers and one more;
//  4. nochange: step 2's build again at once, to the same target.
const (
	wumUpdate = 1567933846116
	updateTag = "5.8.0.1567933846116-alpine3.10"
	// topoRepo is the vendor's repository prefix: <vendor>/bench-topo/wso2is.
	topoRepo = "bench-topo"
	// maxSlowRuns bounds the runs of the steps that move the whole base over the link
	// (40 s each for 500 MB at 100 Mbit/s): their spread is small next to what they
	// compare, and five would add a quarter of an hour.
	maxSlowRuns = 3
)

// Topology steps, in the order the tables show them.
var topoSteps = []string{"first", "second", "update", "nochange"}

// warmDockerfile names the Dockerfile row of step 2 on a builder that kept step 1's
// cache (the base's layers), as a long-lived builder would.
const warmDockerfile = "dockerfile warm"

// topoProfiles is the scenario's two profiles: the first (also built on the update) and
// the second.
type topoProfiles struct {
	first, second *Ext
	update        string // the first profile's YAML on the update
}

// parseBandwidth reads a link speed: "100Mbit" (also "100Mbit/s", "100Mbps"), "1Gbit",
// "512kbit", "12.5MB" (bytes per second), or "0" / "unlimited". It returns bytes per
// second.
func parseBandwidth(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if t == "0" || t == "unlimited" {
		return 0, nil
	}
	if n, ok := strings.CutSuffix(t, "bps"); ok {
		t = n + "bit"
	}
	t = strings.TrimSuffix(t, "/s")
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i <= 0 {
		return 0, fmt.Errorf("bandwidth %q: want a number and a unit, e.g. 100Mbit, 1Gbit, 12.5MB, or unlimited", s)
	}
	n, err := strconv.ParseFloat(t[:i], 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bandwidth %q: %q is not a positive number", s, t[:i])
	}
	units := map[string]float64{
		"bit": 1.0 / 8, "kbit": 1e3 / 8, "mbit": 1e6 / 8, "gbit": 1e9 / 8,
		"b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9,
	}
	u, ok := units[t[i:]]
	if !ok {
		return 0, fmt.Errorf("bandwidth %q: unknown unit %q (want bit, kbit, Mbit, Gbit, or B, kB, MB, GB for bytes)", s, t[i:])
	}
	if v := n * u; v >= 1 {
		return int64(v), nil
	}
	return 0, fmt.Errorf("bandwidth %q is less than a byte a second", s)
}

// shapeText is a link's shape in words: "100 Mbit/s each way, 20 ms round trip".
func shapeText(sh netfault.Shape) string {
	bw := func(b int64) string {
		if b == 0 {
			return "unlimited"
		}
		return strconv.FormatFloat(float64(b)*8/1e6, 'f', -1, 64) + " Mbit/s"
	}
	s := bw(sh.Down) + " each way"
	if sh.Up != sh.Down {
		s = bw(sh.Down) + " down, " + bw(sh.Up) + " up"
	}
	return s + fmt.Sprintf(", %s round trip", sh.RTT)
}

// netShape is the link's shape as the topology records it.
func netShape(t *Topology) netfault.Shape {
	return netfault.Shape{Up: t.Up, Down: t.Down, RTT: time.Duration(t.RTTms * float64(time.Millisecond))}
}

// topoSetup pushes the vendor's base and its update into the vendor registry (directly,
// not over the link: the set-up is not measured) and writes the two profiles.
func (h *harness) topoSetup(ctx context.Context, size, extSize int64, slowRuns int) (*Topology, *topoProfiles, error) {
	e := h.e
	t := &Topology{Vendor: e.vendor.Host, Link: e.link.Host(), Down: e.shape.Down, Up: e.shape.Up,
		RTTms: float64(e.shape.RTT) / float64(time.Millisecond), SlowRuns: slowRuns}
	start := time.Now()
	// Its own filler (one byte more than the label says), so that no blob of it is in
	// the target registry from the other scenarios.
	img, err := standin.Image(standin.Options{
		Product: "wso2is", Version: "5.8.0", Ports: []int{4000, 9763, 9443},
		FillerBytes: size + 1, Created: time.UnixMilli(wum),
	}, v1.Platform{OS: "linux", Architecture: runtime.GOARCH})
	if err != nil {
		return nil, nil, err
	}
	// WSO2's next update: the same image and one more layer holding the update's files,
	// a tenth of the filler's size.
	updLayer, err := tarLayer([]tarFile{{
		name: strings.TrimPrefix(home, "/") + "/updates/wum-" + strconv.FormatInt(wumUpdate, 10) + "/update.bin",
		size: size / 10, seed: "topology update",
	}}, time.UnixMilli(wumUpdate))
	if err != nil {
		return nil, nil, err
	}
	upd, err := mutate.Append(img, mutate.Addendum{Layer: updLayer, MediaType: types.OCILayer,
		History: v1.History{Created: v1.Time{Time: time.UnixMilli(wumUpdate)}, CreatedBy: "wso2img bench: WSO2 update " + strconv.FormatInt(wumUpdate, 10)}})
	if err != nil {
		return nil, nil, err
	}
	upd = mutate.ConfigMediaType(upd, types.OCIConfigJSON)
	if t.Base, err = h.pushVendorBase(ctx, img, size, baseTag, "base"); err != nil {
		return nil, nil, err
	}
	if t.Update, err = h.pushVendorBase(ctx, upd, size, updateTag, "update"); err != nil {
		return nil, nil, err
	}
	have := map[string]bool{}
	for _, d := range blobDigests(img) {
		have[d.Digest.String()] = true
		t.BaseBlobBytes += d.Size
	}
	m, err := upd.Manifest()
	if err != nil {
		return nil, nil, err
	}
	for i, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		if have[d.Digest.String()] {
			continue
		}
		t.Changed = append(t.Changed, d.Digest.String())
		t.ChangedBytes += d.Size
		if i > 0 {
			t.ChangedLayerBytes += d.Size
		}
	}
	logf("vendor registry %s behind the link %s (%s): base %s, update +%s in %s", e.vendor.Host, e.link.Host(), shapeText(e.shape),
		humanBytes(t.Base.Compressed), humanBytes(t.ChangedLayerBytes), time.Since(start).Round(100*time.Millisecond))

	p := &topoProfiles{}
	if p.first, err = h.topoExt("first", extSize); err != nil {
		return nil, nil, err
	}
	if p.second, err = h.topoExt("second", extSize); err != nil {
		return nil, nil, err
	}
	p.update = filepath.Join(p.first.Dir, "update.yaml")
	if err := os.WriteFile(p.update, []byte(profileTextAt("bench.example/acme/wso2is-first", extInputs(p.first), wumUpdate)), 0o644); err != nil {
		return nil, nil, err
	}
	t.Profiles = []*Ext{p.first, p.second}
	return t, p, nil
}

// blobDigests lists an image's config and layers.
func blobDigests(img v1.Image) []v1.Descriptor {
	m, err := img.Manifest()
	if err != nil {
		return nil
	}
	return append([]v1.Descriptor{m.Config}, m.Layers...)
}

// pushVendorBase pushes img to the vendor registry under tag and describes it as the
// tools see it: behind the link.
func (h *harness) pushVendorBase(ctx context.Context, img v1.Image, size int64, tag, slug string) (*Base, error) {
	e := h.e
	b := &Base{Label: sizeLabel(size), Filler: size + 1, Mirror: e.link.Host() + "/" + topoRepo, tag: tag}
	b.Repo = b.Mirror + "/wso2is"
	var err error
	if b.Digest, err = standin.Push(ctx, e.vendor.Host+"/"+topoRepo+"/wso2is:"+tag, img, true); err != nil {
		return nil, fmt.Errorf("pushing the topology %s to the vendor registry: %w", slug, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	for _, l := range m.Layers {
		b.Layers = append(b.Layers, l.Digest.String())
		b.Compressed += l.Size
		h.vendorLayers[l.Digest.String()] = true
		h.baseLayers[l.Digest.String()] = true
	}
	b.dockerfile = filepath.Join(e.work, "dockerfiles", "topology-"+slug)
	if err := os.MkdirAll(b.dockerfile, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(b.dockerfile, "Dockerfile"), []byte(dockerfileText(b)), 0o644); err != nil {
		return nil, err
	}
	return b, nil
}

// topoExt writes a profile folder of four random jars (seeded by the step, so the two
// profiles add different files) and its profile on the base.
func (h *harness) topoExt(slug string, size int64) (*Ext, error) {
	x := &Ext{Label: sizeLabel(size), Bytes: size, Dir: filepath.Join(h.e.work, "topology", slug)}
	parts := []int64{size / 2, size * 3 / 10, size * 15 / 100}
	parts = append(parts, size-parts[0]-parts[1]-parts[2])
	for i, n := range parts {
		f := fmt.Sprintf("acme-%s-%d.jar", slug, i+1)
		if err := randomFile(filepath.Join(x.Dir, "files", f), n, "topology/"+f); err != nil {
			return nil, err
		}
		x.Files = append(x.Files, f)
	}
	x.Profile = filepath.Join(x.Dir, slug+".yaml")
	text := profileTextAt("bench.example/acme/wso2is-"+slug, extInputs(x), wum)
	return x, os.WriteFile(x.Profile, []byte(text), 0o644)
}

func extInputs(x *Ext) string {
	var b strings.Builder
	for _, f := range x.Files {
		fmt.Fprintf(&b, "  - {path: files/%s, dest: repository/components/lib/}\n", f)
	}
	return b.String()
}

// topology runs the four steps with every tool. The tools take turns within each run,
// as in the cold scenario. The steps that move the whole base over the link (1 and 3,
// and every step of the Dockerfile path and buildah, which pull the base each cold run)
// run at most maxSlowRuns times; step 2 and 4 of wso2img and the limit run -runs
// times, on the base copied by the last step 1.
func (h *harness) topology(ctx context.Context, size, extSize int64) error {
	slow := min(h.runs, maxSlowRuns)
	t, p, err := h.topoSetup(ctx, size, extSize, slow)
	if err != nil {
		return err
	}
	h.res.Topology = t
	rows := map[string]*Row{}
	add := func(step, tool string, runs int, x *Ext, b *Base) {
		r := &Row{Scenario: "topology", Step: step, Tool: tool, Base: b.Label, BaseSize: b.Filler, Added: x.Bytes, runs: runs}
		h.res.Rows = append(h.res.Rows, r)
		rows[step+" "+tool] = r
	}
	for _, tool := range allTools {
		if !h.tools[tool] {
			continue
		}
		fast := slow
		if tool == "wso2img" || tool == "limit" {
			fast = h.runs
		}
		add("first", tool, slow, p.first, t.Base)
		add("second", tool, fast, p.second, t.Base)
		if tool == "wso2img" && len(h.e.sign) > 0 {
			add("second", unsignedTool, fast, p.second, t.Base)
		}
		if tool == "dockerfile" {
			add("second", warmDockerfile, slow, p.second, t.Base)
		}
		add("update", tool, slow, p.first, t.Update)
		if tool != "limit" {
			add("nochange", tool, fast, p.second, t.Base)
		}
		if tool == "buildah" && h.e.buildahErr != "" {
			for _, s := range topoSteps {
				if r := rows[s+" buildah"]; r != nil {
					r.Error = h.e.buildahErr
				}
			}
		}
	}

	var wsoCache, limitCache string // the base's copies in the target registry
	for i := 0; i < h.runs; i++ {
		isSlow := i < slow
		logf("vendor registry ≠ target registry, run %d of %d", i+1, h.runs)
		if h.tools["wso2img"] {
			if isSlow {
				wsoCache = h.e.nextTarget("bases")
			}
			if err := h.topoWso2img(ctx, t, p, rows, wsoCache, isSlow); err != nil {
				return err
			}
		}
		if h.tools["dockerfile"] && isSlow {
			if err := h.topoDockerfile(ctx, t, p, rows); err != nil {
				return err
			}
		}
		if h.tools["buildah"] && isSlow {
			if err := h.topoBuildah(ctx, t, p, rows); err != nil {
				return err
			}
		}
		if h.tools["limit"] {
			if isSlow {
				limitCache = h.e.nextTarget("limit-bases") + "/wso2is"
			}
			if err := h.topoLimit(ctx, t, p, rows, limitCache, isSlow); err != nil {
				return err
			}
		}
	}
	return nil
}

// repoPath is a repository without its registry, as the registry's log names it.
func (h *harness) repoPath(repo string) string {
	return strings.TrimPrefix(repo, h.e.reg.Host+"/")
}

// topoWso2img runs wso2img's steps of one run: 1 (on a slow run), 2 and its unsigned
// twin, 4 right after 2, and 3 (on a slow run). cache is the --base-cache prefix, fresh
// on a slow run.
func (h *harness) topoWso2img(ctx context.Context, t *Topology, p *topoProfiles, rows map[string]*Row, cache string, isSlow bool) error {
	copyRepo := h.repoPath(cache) + "/wso2is"
	build := func(row *Row, profile string, b *Base, target, logName string, unsigned bool) (Sample, outcome, error) {
		s, out, err := h.sample(ctx, b, func() (outcome, error) {
			out, err := h.e.runWso2img(ctx, wso2imgRun{verb: "build", profiles: []string{profile}, base: b, target: target,
				baseCache: cache, unsigned: unsigned, logBase: filepath.Join(h.e.work, "logs", logName)})
			out.copyRepo = copyRepo
			return out, err
		})
		if err == nil && out.copied != s.BaseCopied {
			h.res.note(fmt.Sprintf("wso2img reported baseBytesCopied %d in the topology step %q, the target registry's log %d", out.copied, row.Step, s.BaseCopied))
		}
		return s, out, err
	}
	mustPush := func(row *Row, s Sample, out outcome, err error, target string) bool {
		if ctx.Err() != nil {
			return false
		}
		if err == nil && (out.pushed == nil || !*out.pushed) {
			err = fmt.Errorf("wso2img says it pushed nothing to the fresh repository %s", target)
		}
		return h.record(row, s, err)
	}

	first := rows["first wso2img"]
	var t1 string
	if isSlow {
		if first.Error != "" {
			return nil
		}
		if err := h.prune(ctx); err != nil {
			return err
		}
		t1 = h.e.nextTarget("topo-wso2img")
		s, out, err := build(first, p.first.Profile, t.Base, t1, filepath.Base(t1)+".first", false)
		if !mustPush(first, s, out, err, t1) {
			return context.Cause(ctx)
		}
	}
	if len(first.Samples) == 0 {
		return nil // step 2 needs the base that step 1 copies
	}

	second, again := rows["second wso2img"], rows["nochange wso2img"]
	if second.Error == "" {
		if err := h.prune(ctx); err != nil {
			return err
		}
		t2 := h.e.nextTarget("topo-wso2img")
		s, out, err := build(second, p.second.Profile, t.Base, t2, filepath.Base(t2)+".second", false)
		if mustPush(second, s, out, err, t2) {
			// Step 4: the same build at once, cache warm, to the same target.
			s2, out2, err := build(again, p.second.Profile, t.Base, t2, filepath.Base(t2)+".again", false)
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			if err == nil {
				s2.SameDigest = ptr(s2.Digest == s.Digest)
				if out2.pushed != nil && *out2.pushed {
					h.res.note("wso2img pushed again on the topology's no-change rebuild")
				}
			}
			h.record(again, s2, err)
		} else if ctx.Err() != nil {
			return context.Cause(ctx)
		}
	}
	if u := rows["second "+unsignedTool]; u != nil && u.Error == "" {
		if err := h.prune(ctx); err != nil {
			return err
		}
		t2u := h.e.nextTarget("topo-wso2img-unsigned")
		s, out, err := build(u, p.second.Profile, t.Base, t2u, filepath.Base(t2u)+".second", true)
		if !mustPush(u, s, out, err, t2u) && ctx.Err() != nil {
			return context.Cause(ctx)
		}
	}
	if upd := rows["update wso2img"]; isSlow && upd.Error == "" {
		if err := h.prune(ctx); err != nil {
			return err
		}
		// The first profile's repository gets the update, as it would for a user.
		s, out, err := build(upd, p.update, t.Update, t1, filepath.Base(t1)+".update", false)
		if !mustPush(upd, s, out, err, t1) && ctx.Err() != nil {
			return context.Cause(ctx)
		}
	}
	return nil
}

// topoDockerfile runs the Dockerfile path's steps of one run, FROM the base over the
// link: 1; 2 on the builder step 1 left warm (the base's layers in its cache); 2 from a
// pruned cache and 4 right after it; 3 from a pruned cache, into step 1's repository.
func (h *harness) topoDockerfile(ctx context.Context, t *Topology, p *topoProfiles, rows map[string]*Row) error {
	run := func(row *Row, x *Ext, b *Base, target, logName string, prune bool) (Sample, error) {
		if prune {
			if err := h.prune(ctx); err != nil {
				return Sample{}, err
			}
		}
		s, _, err := h.sample(ctx, b, func() (outcome, error) {
			return h.e.dockerfile(ctx, x, b, target, filepath.Join(h.e.work, "logs", logName))
		})
		if ctx.Err() != nil {
			return s, context.Cause(ctx)
		}
		h.record(row, s, err)
		return s, nil
	}
	first := rows["first dockerfile"]
	if first.Error != "" {
		return nil
	}
	t1 := h.e.nextTarget("topo-dockerfile")
	if _, err := run(first, p.first, t.Base, t1, filepath.Base(t1)+".first", true); err != nil {
		return err
	}
	if warm := rows["second "+warmDockerfile]; len(first.Samples) > 0 && warm.Error == "" {
		tw := h.e.nextTarget("topo-dockerfile-warm")
		if _, err := run(warm, p.second, t.Base, tw, filepath.Base(tw)+".second-warm", false); err != nil {
			return err
		}
	}
	second, again := rows["second dockerfile"], rows["nochange dockerfile"]
	if second.Error == "" {
		t2 := h.e.nextTarget("topo-dockerfile")
		n := len(second.Samples)
		s, err := run(second, p.second, t.Base, t2, filepath.Base(t2)+".second", true)
		if err != nil {
			return err
		}
		if len(second.Samples) > n {
			s2, _, err := h.sample(ctx, t.Base, func() (outcome, error) {
				return h.e.dockerfile(ctx, p.second, t.Base, t2, filepath.Join(h.e.work, "logs", filepath.Base(t2)+".again"))
			})
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			if err == nil {
				s2.SameDigest = ptr(s2.Digest == s.Digest)
			}
			h.record(again, s2, err)
		}
	}
	if upd := rows["update dockerfile"]; upd.Error == "" && len(first.Samples) > 0 {
		if _, err := run(upd, p.first, t.Update, t1, filepath.Base(t1)+".update", true); err != nil {
			return err
		}
	}
	return nil
}

// topoBuildah runs buildah's steps of one run, each cold step from empty storage: 1,
// 2 and 4 right after it, 3 into step 1's repository.
func (h *harness) topoBuildah(ctx context.Context, t *Topology, p *topoProfiles, rows map[string]*Row) error {
	fresh := func(row *Row, x *Ext, b *Base, target, logName string) (Sample, bool, error) {
		if row.Error != "" {
			return Sample{}, false, nil
		}
		s, runErr, err := h.buildahFresh(ctx, b, x, target, filepath.Join(h.e.work, "logs", logName))
		if err != nil {
			return s, false, err
		}
		if h.e.buildah == "" {
			for _, st := range topoSteps {
				if r := rows[st+" buildah"]; r != nil && r.Error == "" && len(r.Samples) == 0 {
					r.Error = h.e.buildahErr
				}
			}
			return s, false, nil
		}
		return s, h.record(row, s, runErr), nil
	}
	t1 := h.e.nextTarget("topo-buildah")
	if _, _, err := fresh(rows["first buildah"], p.first, t.Base, t1, filepath.Base(t1)+".first"); err != nil {
		return err
	}
	t2 := h.e.nextTarget("topo-buildah")
	s, ok, err := fresh(rows["second buildah"], p.second, t.Base, t2, filepath.Base(t2)+".second")
	if err != nil {
		return err
	}
	if ok {
		s2, _, err := h.sample(ctx, t.Base, func() (outcome, error) {
			return h.e.buildahRun(ctx, p.second, t.Base, t2, h.buildahDrv, filepath.Join(h.e.work, "logs", filepath.Base(t2)+".again"))
		})
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if err == nil {
			s2.SameDigest = ptr(s2.Digest == s.Digest)
		}
		h.record(rows["nochange buildah"], s2, err)
	}
	if _, _, err := fresh(rows["update buildah"], p.first, t.Update, t1, filepath.Base(t1)+".update"); err != nil {
		return err
	}
	return h.e.wipeBuildah()
}

// topoLimit runs the physical limit's steps of one run. cache is its own copy of the
// base in the target registry, fresh on a slow run: step 1 copies the base into it over
// the link, step 3 the update's new blobs; steps 1, 2 and 3 push the added layer with
// the base's layers mounted from it.
func (h *harness) topoLimit(ctx context.Context, t *Topology, p *topoProfiles, rows map[string]*Row, cache string, isSlow bool) error {
	run := func(row *Row, x *Ext, b *Base, copyBase bool, target string, mtime int64) error {
		if row.Error != "" {
			return nil
		}
		s, _, err := h.sample(ctx, b, func() (outcome, error) {
			return h.e.limitTopo(ctx, x, b, cache, copyBase, target, mtime)
		})
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		h.record(row, s, err)
		return nil
	}
	first := rows["first limit"]
	var t1 string
	if isSlow {
		t1 = h.e.nextTarget("topo-limit")
		if err := run(first, p.first, t.Base, true, t1, wum); err != nil {
			return err
		}
	}
	if len(first.Samples) == 0 {
		return nil
	}
	if err := run(rows["second limit"], p.second, t.Base, false, h.e.nextTarget("topo-limit"), wum); err != nil {
		return err
	}
	if isSlow {
		return run(rows["update limit"], p.first, t.Update, true, t1, wumUpdate)
	}
	return nil
}

// limitTopo is the physical limit when the base is in another registry. With copyBase,
// it first copies the base from the vendor (over the link) into cache in the target
// registry, by tag, as go-containerregistry copies: only the blobs cache lacks are
// sent, streamed from registry to registry. Then it does what the single-registry limit
// does: the added files as one gzip tar layer, pushed with the config and the manifest,
// the base's layers mounted from cache. Nothing that publishes the image into the
// target registry, on a base that is not there yet, can do less.
func (e *env) limitTopo(ctx context.Context, x *Ext, b *Base, cache string, copyBase bool, target string, mtime int64) (outcome, error) {
	start := time.Now()
	copied := start
	if copyBase {
		src, err := name.ParseReference(b.Ref(), name.Insecure)
		if err != nil {
			return outcome{}, err
		}
		dst, err := name.ParseReference(cache+":"+b.tag, name.Insecure)
		if err != nil {
			return outcome{}, err
		}
		img, err := remote.Image(src, remote.WithContext(ctx))
		if err != nil {
			return outcome{}, fmt.Errorf("reading the base %s over the link: %w", src, err)
		}
		if err := remote.Write(dst, img, remote.WithContext(ctx)); err != nil {
			return outcome{}, fmt.Errorf("copying the base %s to %s: %w", src, dst, err)
		}
		copied = time.Now()
	}
	layer, err := extLayer(x, mtime)
	if err != nil {
		return outcome{}, err
	}
	built := time.Now()
	baseRef, err := name.ParseReference(cache+"@"+b.Digest, name.Insecure)
	if err != nil {
		return outcome{}, err
	}
	base, err := remote.Image(baseRef, remote.WithContext(ctx))
	if err != nil {
		return outcome{}, fmt.Errorf("reading the base's copy %s: %w", baseRef, err)
	}
	img, err := mutate.Append(base, mutate.Addendum{Layer: layer, MediaType: types.OCILayer})
	if err != nil {
		return outcome{}, err
	}
	d, err := img.Digest()
	if err != nil {
		return outcome{}, err
	}
	ref, err := name.ParseReference(target+"/wso2is:"+b.tag, name.Insecure)
	if err != nil {
		return outcome{}, err
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		return outcome{}, fmt.Errorf("pushing %s: %w", ref, err)
	}
	end := time.Now()
	ph := map[string]float64{"tar + gzip": built.Sub(copied).Seconds(), "push": end.Sub(built).Seconds()}
	if copyBase {
		ph["copy the base over the link"] = copied.Sub(start).Seconds()
	}
	return outcome{ref: target + "/wso2is@" + d.String(), digest: d.String(), phases: ph,
		copyRepo: strings.TrimPrefix(cache, e.reg.Host+"/")}, nil
}

// tarFile is a file of seeded random bytes in a generated layer.
type tarFile struct {
	name string // path in the layer, without a leading /
	size int64
	seed string
}

// tarLayer is a gzip tar layer, held in memory, of seeded random files owned by the
// product user, at mtime, with their parent directories.
func tarLayer(files []tarFile, mtime time.Time) (*memLayer, error) {
	var comp bytes.Buffer
	diff := sha256.New()
	zw, err := gzip.NewWriterLevel(&comp, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(io.MultiWriter(diff, zw))
	dirs := map[string]bool{}
	for _, f := range files {
		var parents []string
		for d := filepath.Dir(f.name); d != "." && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
			parents = append([]string{d}, parents...)
		}
		for _, d := range parents {
			uid := productID
			if d == "home" {
				uid = 0
			}
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, Uid: uid, Gid: uid, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
				return nil, err
			}
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o644, Size: f.size, Uid: productID, Gid: productID, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
		key := sha256.Sum256([]byte("wso2img bench\x00" + f.seed))
		if _, err := io.CopyN(tw, rand.NewChaCha8(key), f.size); err != nil {
			return nil, err
		}
	}
	return closeLayer(tw, zw, &comp, diff)
}
