//go:build linux

package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Facts of the stand-in base and of the profiles every tool builds.
const (
	wum       = 1565855673150
	baseTag   = "5.8.0.1565855673150-alpine3.10"
	home      = "/home/wso2carbon/wso2is-5.8.0"
	libDir    = home + "/repository/components/lib"
	productID = 802
)

// outcome is what a tool reports about one run, before the harness adds what the
// registry and the daemon saw.
type outcome struct {
	ref      string // the pushed image, by digest or tag
	digest   string
	rss      int64
	cpu      float64
	buildkit bool // built on the shared buildkitd: its peak RSS belongs to the run
	signed   bool
	pushed   *bool // wso2img's own "pushed"
	phases   map[string]float64
	results  []wso2imgResult
	// copied is wso2img's baseBytesCopied, reportedPulled its baseBytesPulled; copyRepo
	// the repository (without the registry) where the tool keeps the base's copy in the
	// target registry, whose uploads the harness counts as the base copied.
	copied, reportedPulled int64
	copyRepo               string
}

// wso2imgResult is the part of `wso2img build --json` the harness reads.
type wso2imgResult struct {
	Profile     string `json:"profile"`
	Image       string `json:"image"`
	Digest      string `json:"digest"`
	LayersAdded int    `json:"layersAdded"`
	BytesAdded  int64  `json:"bytesAdded"`
	Pushed      bool   `json:"pushed"`
	Signed      bool   `json:"signed"`
	// BaseBytesCopied and BaseBytesPulled: what wso2img copied of a base from another
	// registry into the target registry, and what BuildKit pulled of it to push.
	BaseBytesCopied int64 `json:"baseBytesCopied"`
	BaseBytesPulled int64 `json:"baseBytesPulled"`
}

// wso2imgRun is one `wso2img build` (or plan) of some profiles.
type wso2imgRun struct {
	verb     string // build or plan
	profiles []string
	base     *Base
	target   string // --registry prefix
	cacheDir string // "": the shared download cache
	caFile   string
	logBase  string
	unsigned bool // --sign=false even when the other builds sign
	// baseCache, when set, is --base-cache: where wso2img keeps a base from another
	// registry in the target registry.
	baseCache string
}

// wso2img runs bin/wso2img build the way a user would, with BuildKit's raw progress on
// stderr so that the time can be broken down.
func (e *env) runWso2img(ctx context.Context, r wso2imgRun) (outcome, error) {
	if r.cacheDir == "" {
		r.cacheDir = filepath.Join(e.work, "cache")
	}
	args := []string{r.verb,
		"--insecure-registry", e.reg.Host,
		"--mirror", "docker.wso2.com=" + r.base.Mirror,
		"--registry", r.target,
		"--cache-dir", r.cacheDir,
		"--json",
	}
	if r.caFile != "" {
		args = append(args, "--ca-file", r.caFile)
	}
	if e.link != nil && strings.HasPrefix(r.base.Mirror, e.link.Host()+"/") {
		args = append(args, "--insecure-registry", e.link.Host())
	}
	if r.baseCache != "" && r.verb == "build" {
		args = append(args, "--base-cache", r.baseCache)
	}
	if r.verb == "build" {
		// The gate is off: no other tool here scans, and a scan is the scanner's cost, not
		// the build's (Trivy would also need its database, which is not here offline).
		args = append(args, "--buildkit-host", e.bk.Addr, "--progress", "rawjson", "--scan=false")
		if r.unsigned {
			args = append(args, "--sign=false")
		} else {
			args = append(args, e.sign...)
		}
	}
	args = append(args, r.profiles...)
	xdg := filepath.Join(e.work, "xdg")
	c := command{
		path: e.wso2img, args: args, dir: e.work, logBase: r.logBase,
		// No config file, credentials or daemon of the user's may change what is measured.
		env: childEnv(append([]string{
			"XDG_CONFIG_HOME=" + filepath.Join(xdg, "config"), "XDG_STATE_HOME=" + filepath.Join(xdg, "state"),
			"XDG_CACHE_HOME=" + filepath.Join(xdg, "cache"), "DOCKER_CONFIG=" + filepath.Join(e.work, "docker"),
		}, e.signEnv...)...),
	}
	start := time.Now()
	res, err := c.run(ctx)
	end := time.Now()
	out := outcome{rss: res.rss, cpu: res.cpu, buildkit: r.verb == "build"}
	if err != nil {
		return out, err
	}
	if r.verb == "plan" {
		return out, nil
	}
	if err := json.Unmarshal(res.stdout, &out.results); err != nil {
		return out, fmt.Errorf("reading wso2img's --json output: %w: %.500s", err, res.stdout)
	}
	if len(out.results) != len(r.profiles) {
		return out, fmt.Errorf("wso2img printed %d results for %d profiles", len(out.results), len(r.profiles))
	}
	first := out.results[0]
	if first.Digest == "" || first.Image == "" {
		return out, fmt.Errorf("wso2img printed no image or digest: %.500s", res.stdout)
	}
	out.ref, out.digest, out.pushed, out.signed = first.Image+"@"+first.Digest, first.Digest, &first.Pushed, first.Signed
	for _, r := range out.results {
		out.copied += r.BaseBytesCopied
		out.reportedPulled += r.BaseBytesPulled
	}
	out.phases = phases(res.errLog, start, end)
	return out, nil
}

// dockerfile builds the extension the way WSO2 documents it, FROM the base by digest and
// one COPY --chown, through the same buildkitd, pushing with buildctl.
func (e *env) dockerfile(ctx context.Context, x *Ext, b *Base, target, logBase string) (outcome, error) {
	ref := target + "/wso2is:" + baseTag
	meta := logBase + ".metadata.json"
	c := command{path: e.buildctl, dir: e.work, logBase: logBase, env: childEnv(), args: []string{
		"--addr", e.bk.Addr, "build", "--frontend", "dockerfile.v0",
		"--local", "context=" + x.Dir, "--local", "dockerfile=" + b.dockerfile,
		"--output", "type=image,name=" + ref + ",push=true,registry.insecure=true",
		"--metadata-file", meta, "--progress", "rawjson",
	}}
	start := time.Now()
	res, err := c.run(ctx)
	end := time.Now()
	out := outcome{rss: res.rss, cpu: res.cpu, buildkit: true}
	if err != nil {
		return out, err
	}
	var md map[string]any
	data, err := os.ReadFile(meta)
	if err == nil {
		err = json.Unmarshal(data, &md)
	}
	if err != nil {
		return out, fmt.Errorf("reading buildctl's metadata: %w", err)
	}
	out.digest, _ = md["containerimage.digest"].(string)
	if out.digest == "" {
		return out, fmt.Errorf("buildctl's metadata has no image digest: %s", data)
	}
	out.ref = target + "/wso2is@" + out.digest
	out.phases = phases(res.errLog, start, end)
	return out, nil
}

// dockerfileText is the extension as WSO2's guides write it.
func dockerfileText(b *Base) string {
	return fmt.Sprintf("FROM %s\nCOPY --chown=%d:%d files/ %s/\n", b.Ref(), productID, productID, libDir)
}

// buildahRun builds the same Dockerfile with buildah bud and pushes it with buildah
// push, in a private mount namespace: buildah's overlay mounts die with it, and a folder
// of the run is bind-mounted over /var/lib/containers, where buildah keeps its blob-info
// cache (which blobs the registry holds, and their compressed digests). Left shared, it
// would remember from an earlier run that the registry holds the added layer, and no
// run would be cold; wiped with the storage before each cold run, it still serves the
// rebuild that follows, as it would on a user's machine.
func (e *env) buildahRun(ctx context.Context, x *Ext, b *Base, target, driver, logBase string) (outcome, error) {
	ref := target + "/wso2is:" + baseTag
	root := filepath.Join(e.work, "buildah")
	digestFile := logBase + ".digest"
	budDone := logBase + ".bud-done"
	script := `set -e
mkdir -p /var/lib/containers "$ROOT/containers"
mount --bind "$ROOT/containers" /var/lib/containers
b="buildah --root $ROOT/root --runroot $ROOT/run --storage-driver $DRIVER"
$b bud --tls-verify=false -f "$DOCKERFILE" -t wso2img-bench "$CONTEXT"
date +%s%N > "$BUD_DONE"
$b push --tls-verify=false --digestfile "$DIGEST_FILE" wso2img-bench "docker://$REF"
`
	c := command{path: "unshare", dir: e.work, logBase: logBase,
		args: []string{"--mount", "--propagation", "private", "--", "sh", "-c", script},
		env: childEnv("ROOT="+root, "DRIVER="+driver, "DOCKERFILE="+filepath.Join(b.dockerfile, "Dockerfile"),
			"CONTEXT="+x.Dir, "BUD_DONE="+budDone, "DIGEST_FILE="+digestFile, "REF="+ref, "PATH=/usr/sbin:/usr/bin:/sbin:/bin"),
	}
	start := time.Now()
	res, err := c.run(ctx)
	end := time.Now()
	out := outcome{rss: res.rss, cpu: res.cpu}
	if err != nil {
		return out, err
	}
	d, err := os.ReadFile(digestFile)
	if err != nil {
		return out, fmt.Errorf("buildah push wrote no digest: %w", err)
	}
	out.digest = strings.TrimSpace(string(d))
	out.ref = target + "/wso2is@" + out.digest
	if t, err := os.ReadFile(budDone); err == nil {
		if ns, err := strconv.ParseInt(strings.TrimSpace(string(t)), 10, 64); err == nil {
			mid := time.Unix(0, ns)
			out.phases = map[string]float64{"bud (pull, copy, commit)": mid.Sub(start).Seconds(), "push": end.Sub(mid).Seconds()}
		}
	}
	return out, nil
}

// wipeBuildah removes buildah's storage, so that the next run pulls the base again.
func (e *env) wipeBuildah() error {
	return os.RemoveAll(filepath.Join(e.work, "buildah"))
}

// limit is the physical limit: the added files as one gzip tar layer (the same
// entries, owner and compression level as BuildKit's), pushed with go-containerregistry
// next to the base's layers, which are mounted from the base's repository, then the
// config and the manifest. No build system does less and still publishes the image.
func (e *env) limit(ctx context.Context, x *Ext, b *Base, target string) (outcome, error) {
	start := time.Now()
	layer, err := extLayer(x, wum)
	if err != nil {
		return outcome{}, err
	}
	built := time.Now()
	baseRef, err := name.ParseReference(b.Ref(), name.Insecure)
	if err != nil {
		return outcome{}, err
	}
	base, err := remote.Image(baseRef, remote.WithContext(ctx))
	if err != nil {
		return outcome{}, fmt.Errorf("reading the base: %w", err)
	}
	img, err := mutate.Append(base, mutate.Addendum{Layer: layer, MediaType: types.OCILayer})
	if err != nil {
		return outcome{}, err
	}
	d, err := img.Digest()
	if err != nil {
		return outcome{}, err
	}
	ref, err := name.ParseReference(target+"/wso2is:"+baseTag, name.Insecure)
	if err != nil {
		return outcome{}, err
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		return outcome{}, fmt.Errorf("pushing %s: %w", ref, err)
	}
	end := time.Now()
	return outcome{
		ref: target + "/wso2is@" + d.String(), digest: d.String(),
		phases: map[string]float64{"tar + gzip": built.Sub(start).Seconds(), "push": end.Sub(built).Seconds()},
	}, nil
}

// extLayer is the extension as a gzip tar layer held in memory: the directories down to
// the lib folder and the files, owned by the product user, at the update's time (a WUM
// timestamp).
func extLayer(x *Ext, update int64) (*memLayer, error) {
	mtime := time.UnixMilli(update)
	var comp bytes.Buffer
	diff := sha256.New()
	zw, err := gzip.NewWriterLevel(&comp, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(io.MultiWriter(diff, zw))
	var dirs []string
	for d := libDir; d != "/"; d = path.Dir(d) {
		dirs = append([]string{d}, dirs...)
	}
	for _, d := range dirs {
		uid := productID
		if d == "/home" {
			uid = 0
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: 0o755, Uid: uid, Gid: uid, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
	}
	for _, f := range x.Files {
		if err := addFile(tw, filepath.Join(x.Dir, "files", f), strings.TrimPrefix(libDir, "/")+"/"+f, mtime); err != nil {
			return nil, err
		}
	}
	return closeLayer(tw, zw, &comp, diff)
}

func addFile(tw *tar.Writer, src, name string, mtime time.Time) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: st.Size(), Uid: productID, Gid: productID, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

// memLayer is a compressed layer in memory with its digests computed once.
type memLayer struct {
	data           []byte
	digest, diffID v1.Hash
}

var _ v1.Layer = (*memLayer)(nil)

func (l *memLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *memLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *memLayer) Size() (int64, error)                { return int64(len(l.data)), nil }
func (l *memLayer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }
func (l *memLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.data)), nil
}
func (l *memLayer) Uncompressed() (io.ReadCloser, error) {
	zr, err := gzip.NewReader(bytes.NewReader(l.data))
	if err != nil {
		return nil, err
	}
	return zr, nil
}

// rawStatus is the part of BuildKit's rawjson progress (one client.SolveStatus a line)
// that phases reads.
type rawStatus struct {
	Vertexes []struct {
		Name      string     `json:"name"`
		Started   *time.Time `json:"started"`
		Completed *time.Time `json:"completed"`
	} `json:"vertexes"`
	Statuses []struct {
		ID        string     `json:"id"`
		Started   *time.Time `json:"started"`
		Completed *time.Time `json:"completed"`
	} `json:"statuses"`
}

// phases breaks a BuildKit client's wall time down from its rawjson progress: the time
// before the daemon starts work (process start, planning, session), the span of each
// kind of step, and the time after the daemon's last step (reading back, tagging).
func phases(progressFile string, start, end time.Time) map[string]float64 {
	f, err := os.Open(progressFile)
	if err != nil {
		return nil
	}
	defer f.Close()
	type span struct{ from, to time.Time }
	spans := map[string]*span{}
	var first, last time.Time
	widen := func(kind string, from, to *time.Time) {
		if from == nil {
			return
		}
		if first.IsZero() || from.Before(first) {
			first = *from
		}
		if to != nil && to.After(last) {
			last = *to
		}
		if kind == "" || to == nil {
			return
		}
		s := spans[kind]
		if s == nil {
			spans[kind] = &span{*from, *to}
			return
		}
		if from.Before(s.from) {
			s.from = *from
		}
		if to.After(s.to) {
			s.to = *to
		}
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var st rawStatus
		if json.Unmarshal(line, &st) != nil {
			continue
		}
		for _, v := range st.Vertexes {
			widen("", v.Started, v.Completed)
		}
		for _, s := range st.Statuses {
			widen(statusKind(s.ID), s.Started, s.Completed)
		}
	}
	if first.IsZero() {
		return nil
	}
	out := map[string]float64{
		"before the first BuildKit step": first.Sub(start).Seconds(),
		"BuildKit steps":                 last.Sub(first).Seconds(),
		"after the last BuildKit step":   end.Sub(last).Seconds(),
	}
	for k, s := range spans {
		out[k] = s.to.Sub(s.from).Seconds()
	}
	return out
}

// statusKind groups BuildKit's progress statuses into the steps worth timing.
func statusKind(id string) string {
	for _, k := range []struct{ prefix, kind string }{
		{"sha256:", "pull base layers"},
		{"extracting", "unpack base layers"},
		{"resolve", "resolve base"},
		{"transferring", "transfer inputs"},
		{"exporting layers", "export layers (diff + gzip)"},
		{"rewriting layers", "rewrite timestamps"},
		{"pushing layers", "push layers"},
		{"pushing manifest", "push manifest"},
	} {
		if strings.HasPrefix(id, k.prefix) {
			return k.kind
		}
	}
	return ""
}

// closeLayer finishes a layer written through tw (tar) into zw (gzip) over comp, with
// diff hashing the uncompressed tar: the layer in memory with its digests.
func closeLayer(tw *tar.Writer, zw io.Closer, comp *bytes.Buffer, diff hash.Hash) (*memLayer, error) {
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	data := comp.Bytes()
	sum := sha256.Sum256(data)
	return &memLayer{
		data:   data,
		digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])},
		diffID: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(diff.Sum(nil))},
	}, nil
}
