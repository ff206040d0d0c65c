//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wso2img/wso2img/internal/netfault"
	"github.com/wso2img/wso2img/internal/testenv"
)

// env is what every scenario shares: one registry, one buildkitd, the binaries under
// test, and a work folder that is removed at the end. For the topology scenario it also
// has a second, "vendor" registry, reached only through a shaped link.
type env struct {
	work  string
	reg   *testenv.Registry
	bk    *testenv.Buildkitd
	bkPID int // buildkitd's pid, for its peak RSS; 0 when it could not be found

	vendor *testenv.Registry // nil unless the topology scenario runs
	link   *netfault.Shaper  // in front of vendor: the only address the tools are given
	shape  netfault.Shape

	wso2img, buildctl string
	buildah           string // "" when buildah is not installed
	buildahErr        string // why buildah rows are missing, when they are
	sign              []string
	signEnv           []string

	seq int // numbers the target repositories, so that every run pushes to a fresh one
}

// startEnv starts the registry and buildkitd under work. binary is the wso2img to
// measure; "" is bin/wso2img. A non-nil shape also starts the vendor registry behind a
// shaper with that shape, before buildkitd, whose configuration must name the shaper's
// address as a plain-HTTP registry.
func startEnv(ctx context.Context, work, binary string, shape *netfault.Shape) (*env, error) {
	e := &env{work: work}
	var err error
	if binary != "" {
		if e.wso2img, err = filepath.Abs(binary); err != nil {
			return nil, err
		}
	}
	for _, b := range []struct {
		name string
		dst  *string
	}{{"wso2img", &e.wso2img}, {"buildctl", &e.buildctl}} {
		if *b.dst != "" {
			continue
		}
		if *b.dst, err = testenv.Bin(b.name); err != nil {
			return nil, fmt.Errorf("%w (make build; make tools)", err)
		}
	}
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if e.reg, err = testenv.StartRegistry(startCtx, filepath.Join(work, "registry")); err != nil {
		return nil, err
	}
	insecure := []string{e.reg.Host}
	if shape != nil {
		if e.vendor, err = testenv.StartRegistry(startCtx, filepath.Join(work, "vendor")); err != nil {
			e.close()
			return nil, fmt.Errorf("starting the vendor registry: %w", err)
		}
		if e.link, err = netfault.StartShaper(startCtx, e.vendor.Host, *shape); err != nil {
			e.close()
			return nil, err
		}
		e.shape = *shape
		insecure = append(insecure, e.link.Host())
	}
	if e.bk, err = testenv.StartBuildkitd(startCtx, filepath.Join(work, "buildkitd"), insecure); err != nil {
		e.close()
		return nil, err
	}
	e.bkPID = findPID("--config\x00" + e.bk.ConfigFile + "\x00")
	return e, nil
}

// close stops the daemons; buildkitd's Close also unmounts what it left under work.
func (e *env) close() {
	if e.bk != nil {
		if err := e.bk.Close(); err != nil {
			logf("stopping buildkitd: %v", err)
		}
	}
	if e.link != nil {
		if err := e.link.Close(); err != nil {
			logf("stopping the shaper: %v", err)
		}
	}
	if e.vendor != nil {
		_ = e.vendor.Close()
	}
	if e.reg != nil {
		_ = e.reg.Close()
	}
}

// nextTarget returns a repository prefix no run has pushed to yet.
func (e *env) nextTarget(what string) string {
	e.seq++
	return fmt.Sprintf("%s/run-%03d-%s", e.reg.Host, e.seq, what)
}

// findPID returns the pid of the process whose NUL-separated command line contains
// needle, or 0. testenv does not expose the daemon's pid; its config path is unique.
func findPID(needle string) int {
	entries, _ := os.ReadDir("/proc")
	for _, d := range entries {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err == nil && bytes.Contains(append(cmdline, 0), []byte(needle)) {
			return pid
		}
	}
	return 0
}

// resetPeakRSS makes the kernel forget a process's peak RSS (VmHWM), so that the next
// read gives the peak of one run rather than of the daemon's life.
func resetPeakRSS(pid int) {
	if pid > 0 {
		_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
	}
}

// peakRSS reads a process's VmHWM in bytes, or 0.
func peakRSS(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// maxRSS is the peak RSS of an exited child (and of the descendants it waited for),
// when GNU time is missing; see timeBin for why it may read high.
func maxRSS(ps *os.ProcessState) int64 {
	if ps == nil {
		return 0
	}
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss << 10 // kilobytes on Linux
	}
	return 0
}

// regStats is what the registry served in a window of its log.
type regStats struct {
	// BasePulled is the body bytes of GETs of blobs that are layers of a base.
	BasePulled int64
	// Pushed is the size of every blob whose upload completed (PUT, or a monolithic
	// POST with a digest), as the registry stored it.
	Pushed int64
	// Uploads counts those blobs; Mounts counts cross-repository mounts (no bytes).
	Uploads, Mounts int
	// Manifests counts manifests written (the image, and a tag each).
	Manifests int
	// ByRepo is Pushed by repository (as the log names it: without the registry).
	ByRepo map[string]int64
}

// requestCount marks the start of a window of the registry's log.
func (e *env) requestCount() (int, error) {
	reqs, err := e.reg.Requests()
	return len(reqs), err
}

// statsSince sums the requests from the mark on. baseLayers holds the digests of every
// base's layers.
func (e *env) statsSince(mark int, baseLayers map[string]bool) (regStats, error) {
	reqs, err := e.reg.Requests()
	if err != nil {
		return regStats{}, err
	}
	s := regStats{ByRepo: map[string]int64{}}
	for _, r := range reqs[min(mark, len(reqs)):] {
		q, _ := url.ParseQuery(r.Query)
		switch {
		case r.Kind == "blob" && r.Method == "GET" && r.Status/100 == 2 && baseLayers[r.Reference]:
			s.BasePulled += r.Bytes
		case r.Kind == "upload" && r.Status == 201 && r.Method == "POST" && q.Get("mount") != "":
			s.Mounts++
		case r.Kind == "upload" && r.Status == 201 && (r.Method == "PUT" || r.Method == "POST") && q.Get("digest") != "":
			size, err := e.blobSize(q.Get("digest"))
			if err != nil {
				return s, err
			}
			s.Pushed += size
			s.ByRepo[r.Repository] += size
			s.Uploads++
		case r.Kind == "manifest" && r.Method == "PUT" && r.Status == 201:
			s.Manifests++
		}
	}
	return s, nil
}

// vendorMark is the start of a window of the vendor registry's log and of the link's
// counters.
type vendorMark struct {
	requests int
	link     netfault.Stats
}

func (e *env) markVendor() (vendorMark, error) {
	if e.vendor == nil {
		return vendorMark{}, nil
	}
	reqs, err := e.vendor.Requests()
	return vendorMark{requests: len(reqs), link: e.link.Stats()}, err
}

// vendorStats is what the vendor registry and its link carried in a window.
type vendorStats struct {
	BasePulled      int64 // body bytes of GETs of base layers, from the vendor's log
	Requests        int
	Down, Up, Conns int64 // the shaper's counters
}

// vendorSince sums the vendor's requests and the link's bytes from the mark on.
// baseLayers holds the digests of the vendor's bases' layers.
func (e *env) vendorSince(m vendorMark, baseLayers map[string]bool) (vendorStats, error) {
	if e.vendor == nil {
		return vendorStats{}, nil
	}
	// The registry logs a request before the client has read all of the response; the
	// shaper delivers the last bytes of a body up to RTT/2 later. Every tool has
	// exited (or, for the limit, returned) by now, so the log is complete.
	reqs, err := e.vendor.Requests()
	if err != nil {
		return vendorStats{}, err
	}
	st := e.link.Stats()
	v := vendorStats{Down: st.Down - m.link.Down, Up: st.Up - m.link.Up, Conns: st.Conns - m.link.Conns}
	for _, r := range reqs[min(m.requests, len(reqs)):] {
		v.Requests++
		if r.Kind == "blob" && r.Method == "GET" && r.Status/100 == 2 && baseLayers[r.Reference] {
			v.BasePulled += r.Bytes
		}
	}
	return v, nil
}

// blobSize reads a blob's size from the registry's filesystem storage.
func (e *env) blobSize(digest string) (int64, error) {
	h, err := v1.NewHash(digest)
	if err != nil {
		return 0, fmt.Errorf("upload of %q: %w", digest, err)
	}
	st, err := os.Stat(filepath.Join(e.reg.Dir, "storage", "docker", "registry", "v2", "blobs", h.Algorithm, h.Hex[:2], h.Hex, "data"))
	if err != nil {
		return 0, fmt.Errorf("size of uploaded blob %s: %w", digest, err)
	}
	return st.Size(), nil
}

// imageShape is what an image adds to its base.
type imageShape struct {
	LayersAdded int
	SizeDelta   int64 // compressed bytes of all layers, less the base's
	BaseKept    bool  // the base's layers are the image's first layers, digest for digest
}

// inspect reads a pushed image's manifest and compares it with its base's.
func inspect(ctx context.Context, ref string, base *Base) (imageShape, error) {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return imageShape{}, err
	}
	img, err := remote.Image(r, remote.WithContext(ctx))
	if err != nil {
		return imageShape{}, fmt.Errorf("reading %s: %w", ref, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return imageShape{}, fmt.Errorf("reading %s: %w", ref, err)
	}
	var s imageShape
	s.LayersAdded = len(m.Layers) - len(base.Layers)
	s.BaseKept = len(m.Layers) >= len(base.Layers)
	for i, l := range m.Layers {
		s.SizeDelta += l.Size
		if i < len(base.Layers) && l.Digest.String() != base.Layers[i] {
			s.BaseKept = false
		}
	}
	s.SizeDelta -= base.Compressed
	return s, nil
}

// command runs a child to completion, its output in files under dir (so that large
// outputs cost no memory here), and returns its peak RSS. The child is in its own
// process group, dies with this process, and its group gets SIGTERM (then SIGKILL after
// 15 s) when ctx ends.
type command struct {
	path    string
	args    []string
	env     []string // nil: this process's
	dir     string   // working directory
	logBase string   // output goes to logBase.out and logBase.err
}

type commandResult struct {
	wall   time.Duration
	rss    int64
	cpu    float64 // user + system seconds, of the child and the descendants it waited for
	stdout []byte
	errLog string // path of the stderr file
}

// timeBin is GNU time, which measures a child's peak RSS exactly. Go starts children
// with vfork, and Linux carries the parent's RSS into the child's ru_maxrss when the
// child execs (the old mm is the parent's), so a child's own getrusage would read
// max(harness, child). GNU time forks for real from a 2 MB process.
var timeBin = func() string {
	if p, err := exec.LookPath("time"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/time"); err == nil {
		return "/usr/bin/time"
	}
	return ""
}()

func (c command) run(ctx context.Context) (commandResult, error) {
	var res commandResult
	stdout, err := os.Create(c.logBase + ".out")
	if err != nil {
		return res, err
	}
	defer stdout.Close()
	stderr, err := os.Create(c.logBase + ".err")
	if err != nil {
		return res, err
	}
	defer stderr.Close()
	res.errLog = stderr.Name()
	path, args := c.path, c.args
	rssFile := c.logBase + ".rss"
	if timeBin != "" {
		path, args = timeBin, append([]string{"-f", "%M %U %S", "-o", rssFile, c.path}, c.args...)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = c.env, c.dir, stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 15 * time.Second
	start := time.Now()
	err = cmd.Run()
	res.wall = time.Since(start)
	if timeBin != "" {
		res.rss, res.cpu = readTime(rssFile)
	} else if ps := cmd.ProcessState; ps != nil {
		res.rss, res.cpu = maxRSS(ps), (ps.UserTime() + ps.SystemTime()).Seconds()
	}
	res.stdout, _ = os.ReadFile(stdout.Name())
	if err != nil {
		if ctx.Err() != nil {
			return res, context.Cause(ctx)
		}
		return res, fmt.Errorf("%s %s: %w\n%s", filepath.Base(c.path), strings.Join(c.args, " "), err, testenv.Tail(stderr.Name(), 15))
	}
	return res, nil
}

// readTime reads GNU time's "%M %U %S" (kilobytes, seconds, seconds): the last line of
// its output file (a line about a non-zero exit status may come first).
func readTime(file string) (rss int64, cpu float64) {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0, 0
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	f := strings.Fields(lines[len(lines)-1])
	if len(f) != 3 {
		return 0, 0
	}
	kb, _ := strconv.ParseInt(f[0], 10, 64)
	user, _ := strconv.ParseFloat(f[1], 64)
	sys, _ := strconv.ParseFloat(f[2], 64)
	return kb << 10, user + sys
}

// cpuSeconds reads a process's user + system time so far from /proc, or 0.
func cpuSeconds(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: count fields after it.
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// childEnv is this process's environment without what would change how wso2img or
// BuildKit behave (WSO2IMG_*, BUILDKIT_HOST, DOCKER_CONFIG, XDG dirs), plus extra.
func childEnv(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "WSO2IMG_") || strings.HasPrefix(k, "XDG_") || k == "BUILDKIT_HOST" || k == "DOCKER_CONFIG" || k == "COSIGN_PASSWORD" {
			continue
		}
		out = append(out, kv)
	}
	return append(out, extra...)
}

// firstLine runs a command and returns the first line of its output, for versions.
func firstLine(path string, args ...string) string {
	out, err := exec.Command(path, args...).CombinedOutput()
	if err != nil && len(out) == 0 {
		return "unknown (" + err.Error() + ")"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// procField returns the value after "key:" in a /proc file of "key: value" lines.
func procField(file, key string) string {
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
