//go:build linux

package main

import (
	"context"
	"crypto/sha256"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/wso2img/wso2img/internal/standin"
)

// harness runs the scenarios on one env and records them in res.
type harness struct {
	e          *env
	res        *Result
	runs       int
	tools      map[string]bool // which tools the cold rows run
	baseLayers map[string]bool // every base's layer digests, to count base bytes pulled
	// vendorLayers are the layer digests of the vendor registry's bases (the topology
	// scenario), to count base bytes pulled over the link.
	vendorLayers map[string]bool
	buildahDrv   string // storage driver that works, once one has
}

// pushBases pushes one stand-in base per size, each in its own repository under the
// official tag, as a mirror of docker.wso2.com.
func (h *harness) pushBases(ctx context.Context, sizes []int64) error {
	for _, size := range sizes {
		label := sizeLabel(size)
		slug := strings.ToLower(strings.ReplaceAll(label, " ", ""))
		b := &Base{Label: label, Filler: size, Mirror: h.e.reg.Host + "/bench-" + slug}
		b.Repo = b.Mirror + "/wso2is"
		start := time.Now()
		img, err := standin.Image(standin.Options{
			Product: "wso2is", Version: "5.8.0", Ports: []int{4000, 9763, 9443},
			FillerBytes: size, Created: time.UnixMilli(wum),
		}, v1.Platform{OS: "linux", Architecture: runtime.GOARCH})
		if err != nil {
			return err
		}
		if b.Digest, err = standin.Push(ctx, b.Repo+":"+baseTag, img, true); err != nil {
			return err
		}
		m, err := img.Manifest()
		if err != nil {
			return err
		}
		for _, l := range m.Layers {
			b.Layers = append(b.Layers, l.Digest.String())
			b.Compressed += l.Size
			h.baseLayers[l.Digest.String()] = true
		}
		b.dockerfile = filepath.Join(h.e.work, "dockerfiles", slug)
		if err := os.MkdirAll(b.dockerfile, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(b.dockerfile, "Dockerfile"), []byte(dockerfileText(b)), 0o644); err != nil {
			return err
		}
		logf("base %s: %s (%s in %d layers) pushed in %.1fs", label, b.Ref(), humanBytes(b.Compressed), len(b.Layers), time.Since(start).Seconds())
		h.res.Bases = append(h.res.Bases, b)
	}
	return nil
}

// randomFile writes size bytes of seeded random data: incompressible, like jars and
// keystores, and the same on every run of the harness.
func randomFile(file string, size int64, seed string) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	key := sha256.Sum256([]byte("wso2img bench\x00" + seed))
	if _, err := io.CopyN(f, rand.NewChaCha8(key), size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// makeExt writes an extension of size bytes: a profile folder with four jars that share
// the size (half, 30 %, 15 %, the rest) and a profile adding them to the lib folder.
func (h *harness) makeExt(id int, size int64) (*Ext, error) {
	x := &Ext{ID: id, Label: sizeLabel(size), Bytes: size, Dir: filepath.Join(h.e.work, "ext", fmt.Sprintf("ext-%d", id))}
	parts := []int64{size / 2, size * 3 / 10, size * 15 / 100}
	parts = append(parts, size-parts[0]-parts[1]-parts[2])
	var inputs strings.Builder
	for i, n := range parts {
		f := fmt.Sprintf("acme-ext-%d.jar", i+1)
		if err := randomFile(filepath.Join(x.Dir, "files", f), n, fmt.Sprintf("%d/%s", size, f)); err != nil {
			return nil, err
		}
		x.Files = append(x.Files, f)
		fmt.Fprintf(&inputs, "  - {path: files/%s, dest: repository/components/lib/}\n", f)
	}
	x.Profile = filepath.Join(x.Dir, "bench.yaml")
	if err := os.WriteFile(x.Profile, []byte(profileText("bench.example/acme/wso2is", inputs.String())), 0o644); err != nil {
		return nil, err
	}
	h.res.Exts = append(h.res.Exts, x)
	return x, nil
}

func profileText(target, inputs string) string {
	return profileTextAt(target, inputs, wum)
}

// profileTextAt is a profile on the update of the WUM timestamp update.
func profileTextAt(target, inputs string, update int64) string {
	return fmt.Sprintf("extends: wso2is-5.8.0-alpine\nupdate: {wum: %d}\ntarget: {repository: %s}\ninputs:\n%s", update, target, inputs)
}

// sample runs one build and adds what the registry and buildkitd saw to what the tool
// reported.
func (h *harness) sample(ctx context.Context, b *Base, run func() (outcome, error)) (Sample, outcome, error) {
	mark, err := h.e.requestCount()
	if err != nil {
		return Sample{}, outcome{}, err
	}
	vmark, err := h.e.markVendor()
	if err != nil {
		return Sample{}, outcome{}, err
	}
	// Dirty pages of the run before (a base unpacked, a storage wiped) would otherwise be
	// written back during this one.
	syscall.Sync()
	resetPeakRSS(h.e.bkPID)
	cpu0 := cpuSeconds(h.e.bkPID)
	start := time.Now()
	out, err := run()
	wall := time.Since(start)
	if err != nil {
		return Sample{}, out, err
	}
	s := Sample{Wall: wall.Seconds(), RSS: out.rss, CPU: out.cpu, Digest: out.digest, Phases: out.phases, Signed: out.signed}
	if out.buildkit {
		s.DaemonRSS = peakRSS(h.e.bkPID)
		s.DaemonCPU = cpuSeconds(h.e.bkPID) - cpu0
	}
	st, err := h.e.statsSince(mark, h.baseLayers)
	if err != nil {
		return s, out, err
	}
	s.BasePulled, s.Pushed, s.Uploads, s.Mounts, s.Manifests = st.BasePulled, st.Pushed, st.Uploads, st.Mounts, st.Manifests
	vs, err := h.e.vendorSince(vmark, h.vendorLayers)
	if err != nil {
		return s, out, err
	}
	s.VendorPulled, s.VendorRequests, s.LinkDown, s.LinkUp, s.LinkConns = vs.BasePulled, vs.Requests, vs.Down, vs.Up, vs.Conns
	if out.copyRepo != "" {
		s.BaseCopied = st.ByRepo[out.copyRepo]
	}
	s.ReportedPulled = out.reportedPulled
	if out.ref != "" {
		shape, err := inspect(ctx, out.ref, b)
		if err != nil {
			return s, out, err
		}
		s.LayersAdded, s.SizeDelta, s.BaseKept = shape.LayersAdded, shape.SizeDelta, shape.BaseKept
	}
	return s, out, nil
}

// prune empties buildkitd's cache, so that the next build starts cold.
func (h *harness) prune(ctx context.Context) error {
	return h.e.bk.Prune(ctx)
}

// record appends a sample to a row, or its error: a row with an error runs no more.
func (h *harness) record(row *Row, s Sample, err error) bool {
	if row.Error != "" {
		return false
	}
	if err != nil {
		row.Error = firstLines(err.Error(), 12)
		logf("  %s %s: FAILED: %v", row.Scenario, row.Tool, err)
		return false
	}
	row.Samples = append(row.Samples, s)
	runs := h.runs
	if row.runs > 0 {
		runs = row.runs
	}
	scenario := row.Scenario
	if row.Step != "" {
		scenario = row.Step
	}
	logf("  %-8s %-10s %-6s on %-6s run %d/%d: %6.2fs  pulled %s  pushed %s", scenario, row.Tool, sizeLabel(row.Added), row.Base, len(row.Samples), runs, s.Wall, humanBytes(s.BasePulled), humanBytes(s.Pushed))
	if row.Scenario == "topology" {
		logf("           over the link: base %s, all %s down / %s up, %d connections, %d vendor requests; base copied %s", humanBytes(s.VendorPulled), humanBytes(s.LinkDown), humanBytes(s.LinkUp), s.LinkConns, s.VendorRequests, humanBytes(s.BaseCopied))
	}
	return true
}

// cold runs the cold build + push of every extension on every base with every tool, and
// each tool's rebuild of the same thing right after.
func (h *harness) cold(ctx context.Context) error {
	for _, b := range h.res.Bases {
		for _, x := range h.res.Exts {
			logf("cold build + push of %s on the %s base", x.Label, b.Label)
			rows := map[string]*Row{}
			for _, t := range allTools {
				if !h.tools[t] {
					continue
				}
				rows["cold "+t] = h.res.row("cold", t, b, x, 0)
				if t != "limit" {
					rows["nochange "+t] = h.res.row("nochange", t, b, x, 0)
				}
			}
			// What signing costs, for the scenario the targets name: the same build unsigned.
			var unsigned *Row
			if hb, hx := h.res.headline(); hb == b && hx == x && h.tools["wso2img"] && len(h.e.sign) > 0 {
				unsigned = h.res.row("cold", unsignedTool, b, x, 0)
			}
			if h.tools["buildah"] && h.e.buildahErr != "" {
				rows["cold buildah"].Error, rows["nochange buildah"].Error = h.e.buildahErr, h.e.buildahErr
			}
			// The tools take turns within each run, so that a slow spell of the machine
			// falls on all of them rather than on one tool's runs.
			for i := 0; i < h.runs; i++ {
				if h.tools["wso2img"] {
					if err := h.coldWso2img(ctx, b, x, rows["cold wso2img"], rows["nochange wso2img"], false); err != nil {
						return err
					}
				}
				if unsigned != nil {
					if err := h.coldWso2img(ctx, b, x, unsigned, nil, true); err != nil {
						return err
					}
				}
				if h.tools["dockerfile"] {
					if err := h.coldDockerfile(ctx, b, x, rows["cold dockerfile"], rows["nochange dockerfile"]); err != nil {
						return err
					}
				}
				if h.tools["buildah"] {
					if err := h.coldBuildah(ctx, b, x, rows["cold buildah"], rows["nochange buildah"]); err != nil {
						return err
					}
				}
				if h.tools["limit"] {
					target := h.e.nextTarget("limit")
					s, _, err := h.sample(ctx, b, func() (outcome, error) { return h.e.limit(ctx, x, b, target) })
					if ctx.Err() != nil {
						return context.Cause(ctx)
					}
					h.record(rows["cold limit"], s, err)
				}
			}
		}
	}
	return nil
}

// coldWso2img runs one cold wso2img build, then (unless again is nil) the same build
// again.
func (h *harness) coldWso2img(ctx context.Context, b *Base, x *Ext, cold, again *Row, unsigned bool) error {
	if cold.Error != "" {
		return nil
	}
	if err := h.prune(ctx); err != nil {
		return err
	}
	target := h.e.nextTarget("wso2img")
	logBase := filepath.Join(h.e.work, "logs", filepath.Base(target))
	run := func(suffix string) func() (outcome, error) {
		return func() (outcome, error) {
			return h.e.runWso2img(ctx, wso2imgRun{verb: "build", profiles: []string{x.Profile}, base: b, target: target, logBase: logBase + suffix, unsigned: unsigned})
		}
	}
	s, out, err := h.sample(ctx, b, run(".cold"))
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if err == nil && (out.pushed == nil || !*out.pushed) {
		err = fmt.Errorf("wso2img says it pushed nothing to the fresh repository %s", target)
	}
	if !h.record(cold, s, err) || again == nil {
		return nil
	}
	// The same build again, cache warm, same target: wso2img finds the identical image
	// under its unique tag and pushes nothing.
	s2, out2, err := h.sample(ctx, b, run(".again"))
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if err == nil {
		s2.SameDigest = ptr(s2.Digest == s.Digest)
		if out2.pushed != nil && *out2.pushed {
			h.res.note(fmt.Sprintf("wso2img pushed again on a no-change rebuild of %s on %s", x.Label, b.Label))
		}
	}
	h.record(again, s2, err)
	return nil
}

func (h *harness) coldDockerfile(ctx context.Context, b *Base, x *Ext, cold, again *Row) error {
	if cold.Error != "" {
		return nil
	}
	if err := h.prune(ctx); err != nil {
		return err
	}
	target := h.e.nextTarget("dockerfile")
	logBase := filepath.Join(h.e.work, "logs", filepath.Base(target))
	s, _, err := h.sample(ctx, b, func() (outcome, error) { return h.e.dockerfile(ctx, x, b, target, logBase+".cold") })
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if !h.record(cold, s, err) {
		return nil
	}
	s2, _, err := h.sample(ctx, b, func() (outcome, error) { return h.e.dockerfile(ctx, x, b, target, logBase+".again") })
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if err == nil {
		s2.SameDigest = ptr(s2.Digest == s.Digest)
	}
	h.record(again, s2, err)
	return nil
}

// coldBuildah runs buildah from empty storage, then the same build again on the storage
// it left.
func (h *harness) coldBuildah(ctx context.Context, b *Base, x *Ext, cold, again *Row) error {
	if cold.Error != "" {
		return nil
	}
	if h.e.buildah == "" {
		cold.Error, again.Error = h.e.buildahErr, h.e.buildahErr
		return nil
	}
	target := h.e.nextTarget("buildah")
	logBase := filepath.Join(h.e.work, "logs", filepath.Base(target))
	s, runErr, err := h.buildahFresh(ctx, b, x, target, logBase+".cold")
	if err != nil {
		return err
	}
	if h.e.buildah == "" {
		cold.Error, again.Error = h.e.buildahErr, h.e.buildahErr
		return nil
	}
	if !h.record(cold, s, runErr) {
		return nil
	}
	s2, _, err := h.sample(ctx, b, func() (outcome, error) {
		return h.e.buildahRun(ctx, x, b, target, h.buildahDrv, logBase+".again")
	})
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if err == nil {
		s2.SameDigest = ptr(s2.Digest == s.Digest)
	}
	h.record(again, s2, err)
	return h.e.wipeBuildah()
}

// buildahFresh wipes buildah's storage and builds once with overlay storage (Debian's
// default for root), falling back to vfs if overlay cannot work here. runErr is the
// build's failure, for the row; err stops the harness. If neither driver has ever
// worked, it disables buildah (h.e.buildah is "" and h.e.buildahErr says why).
func (h *harness) buildahFresh(ctx context.Context, b *Base, x *Ext, target, logBase string) (s Sample, runErr, err error) {
	drivers := []string{"overlay", "vfs"}
	if h.buildahDrv != "" {
		drivers = []string{h.buildahDrv}
	}
	var errs []string
	for _, drv := range drivers {
		if err := h.e.wipeBuildah(); err != nil {
			return s, nil, err
		}
		s, _, runErr = h.sample(ctx, b, func() (outcome, error) { return h.e.buildahRun(ctx, x, b, target, drv, logBase+"-"+drv) })
		if ctx.Err() != nil {
			return s, nil, context.Cause(ctx)
		}
		if runErr == nil {
			if h.buildahDrv == "" {
				h.buildahDrv = drv
				h.res.Buildah = firstLine("buildah", "--version") + ", run as root, storage driver " + drv
				if len(errs) > 0 {
					h.res.Buildah += " (overlay failed: " + errs[0] + ")"
				}
			}
			return s, nil, nil
		}
		errs = append(errs, drv+": "+firstLines(runErr.Error(), 8))
	}
	if h.buildahDrv == "" {
		// Neither driver works on this machine: say so in every buildah row from now on.
		h.e.buildahErr = "buildah cannot build here: " + strings.Join(errs, "; ")
		h.e.buildah = ""
		h.res.Buildah = h.e.buildahErr
	}
	return s, runErr, nil
}

// profiles builds n distinct small profiles on one base in one wso2img invocation, cold.
func (h *harness) profiles(ctx context.Context, b *Base, ns []int, size int64) error {
	maxN := 0
	for _, n := range ns {
		maxN = max(maxN, n)
	}
	var files []string
	for i := 1; i <= maxN; i++ {
		dir := filepath.Join(h.e.work, "profiles", fmt.Sprintf("ext-%02d", i))
		jar := fmt.Sprintf("acme-%02d.jar", i)
		if err := randomFile(filepath.Join(dir, "files", jar), size, fmt.Sprintf("profile %d", i)); err != nil {
			return err
		}
		// A target repository per profile: they share the update, so a shared one would
		// give them the same unique tag.
		p := filepath.Join(dir, fmt.Sprintf("ext-%02d.yaml", i))
		text := profileText(fmt.Sprintf("bench.example/acme/ext-%02d", i), fmt.Sprintf("  - {path: files/%s, dest: repository/components/lib/}\n", jar))
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			return err
		}
		files = append(files, p)
	}
	for _, n := range ns {
		logf("%d profile(s) of %s each on the %s base, one wso2img build", n, sizeLabel(size), b.Label)
		row := h.res.row("profiles", "wso2img", b, nil, n)
		row.Added = size * int64(n)
		for i := 0; i < h.runs && row.Error == ""; i++ {
			if err := h.prune(ctx); err != nil {
				return err
			}
			target := h.e.nextTarget(fmt.Sprintf("profiles-%d", n))
			s, _, err := h.sample(ctx, b, func() (outcome, error) {
				return h.e.runWso2img(ctx, wso2imgRun{verb: "build", profiles: files[:n], base: b, target: target,
					logBase: filepath.Join(h.e.work, "logs", filepath.Base(target))})
			})
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			h.record(row, s, err)
		}
	}
	return nil
}

// stream measures wso2img while it streams one large input served over HTTPS from a
// local TLS server: its peak RSS while planning (download and hash into a fresh cache)
// and while building (the same, then handing the file to buildkitd), next to
// sha256sum's rate on the same file.
func (h *harness) stream(ctx context.Context, b *Base, size int64) error {
	dir := filepath.Join(h.e.work, "stream")
	file := filepath.Join(dir, "wso2-bundle.zip")
	logf("streaming %s of inputs (one HTTPS download with its sha256)", sizeLabel(size))
	if err := randomFile(file, size, "stream"); err != nil {
		return err
	}
	defer os.Remove(file)

	// sha256sum first: it gives the checksum the profile declares, and the yardstick.
	sumRow := h.res.row("stream", "sha256sum", nil, nil, 0)
	sumRow.Added = size
	var sum string
	for i := 0; i < h.runs && sumRow.Error == ""; i++ {
		res, err := command{path: "sha256sum", args: []string{file}, dir: dir, env: childEnv(), logBase: filepath.Join(dir, "sha256sum")}.run(ctx)
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		s := Sample{Wall: res.wall.Seconds(), RSS: res.rss, Rate: float64(size) / 1e6 / res.wall.Seconds()}
		if err == nil {
			if f := strings.Fields(string(res.stdout)); len(f) > 0 && len(f[0]) == 64 {
				sum = f[0]
			} else {
				err = fmt.Errorf("sha256sum printed %q", res.stdout)
			}
		}
		h.record(sumRow, s, err)
	}
	if sum == "" {
		return fmt.Errorf("no sha256 for the stream input: %s", sumRow.Error)
	}
	h.res.Stream = &Stream{Bytes: size, SHA256: sum, How: "one " + sizeLabel(size) + " input downloaded over HTTPS (a local TLS server of the harness, its CA passed with --ca-file) into a fresh download cache on every run, verified against its sha256"}

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(file)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer f.Close()
		http.ServeContent(w, r, "wso2-bundle.zip", time.UnixMilli(wum), f)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		return err
	}
	profile := filepath.Join(dir, "bundle.yaml")
	text := profileText("bench.example/acme/wso2is-bundle", fmt.Sprintf("  - {url: %s/wso2-bundle.zip, sha256: %q, dest: repository/components/dropins/}\n", srv.URL, sum))
	if err := os.WriteFile(profile, []byte(text), 0o644); err != nil {
		return err
	}

	// Plan (download and verify), build as configured (signed when the cold rows are),
	// and build unsigned, which tells what signing adds to the peak. Each build streams
	// the whole input through buildkitd's gzip, so the unsigned one runs at most 3 times.
	for _, v := range []struct {
		verb, tool string
		unsigned   bool
		runs       int
	}{
		{"plan", "wso2img plan", false, h.runs},
		{"build", "wso2img build", false, h.runs},
		{"build", "wso2img build --sign=false", true, min(h.runs, 3)},
	} {
		if v.unsigned && len(h.e.sign) == 0 {
			continue
		}
		verb := v.verb
		row := h.res.row("stream", v.tool, b, nil, 0)
		row.Added, row.runs = size, v.runs
		for i := 0; i < v.runs && row.Error == ""; i++ {
			if verb == "build" {
				if err := h.prune(ctx); err != nil {
					return err
				}
			}
			cache := filepath.Join(dir, "cache")
			if err := os.RemoveAll(cache); err != nil {
				return err
			}
			target := h.e.nextTarget("stream-" + verb)
			s, _, err := h.sample(ctx, b, func() (outcome, error) {
				return h.e.runWso2img(ctx, wso2imgRun{verb: verb, profiles: []string{profile}, base: b, target: target,
					cacheDir: cache, caFile: ca, unsigned: v.unsigned, logBase: filepath.Join(h.e.work, "logs", filepath.Base(target))})
			})
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			if err == nil {
				s.Rate = float64(size) / 1e6 / s.Wall
			}
			h.record(row, s, err)
		}
		if err := os.RemoveAll(filepath.Join(dir, "cache")); err != nil {
			return err
		}
	}
	// The 1 GB layer stays in buildkitd's cache otherwise.
	return h.prune(ctx)
}

// note records something worth a reader's attention.
func (res *Result) note(s string) {
	for _, n := range res.Notes {
		if n == s {
			return
		}
	}
	res.Notes = append(res.Notes, s)
}

func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = append(lines[:n], "…")
	}
	return strings.Join(lines, "\n")
}
