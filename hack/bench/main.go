//go:build linux

// Command bench is `make bench`: it measures what extending a WSO2 image costs with
// wso2img — one layer merged onto a lazy base, pushed with cross-repository mounts —
// against the Dockerfile way WSO2 documents (built with BuildKit and with buildah) and
// against the physical limit of pushing only the added layer, on bases of growing size,
// and in the topology users have: the base in the vendor's registry, reached over a
// shaped link (internal/netfault), the image pushed to their own.
// It prints a markdown table and writes it, with the raw figures as JSON, the machine and
// the command, to docs/BENCHMARKS.md.
//
//	go run ./hack/bench                   # the full run (make bench), about 30 minutes
//	go run ./hack/bench -quick            # small sizes, 2 runs a row: checks the harness
//	go run ./hack/bench -only cold -runs 3
//	go run ./hack/bench -only topology -vendor-bandwidth 1Gbit -vendor-rtt 5ms
//
// It starts one registry and one buildkitd (internal/testenv) for the whole run, and for
// the topology scenario a second, "vendor" registry behind a netfault.Shaper, under a
// temporary folder that it removes at the end, also on failure, SIGINT or SIGTERM. It
// needs root, `make tools` and `make build`; buildah rows need Debian's buildah
// (hack/bench/deps.sh installs it), and say why when it cannot run.
//
// It is a development tool, not part of wso2img.
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/wso2img/wso2img/internal/netfault"
	"github.com/wso2img/wso2img/internal/testenv"
)

// analysis is the hand-written explanation of the targets that the figures miss,
// placed under the targets table.
//
//go:embed analysis.md
var analysis string

// sizes of one kind of run.
type sizes struct {
	bases    []int64
	exts     []int64
	profiles []int
	profile  int64 // bytes of each of the N profiles
	stream   int64
	// topoBase and topoExt are the base in the vendor registry and each profile's
	// additions in the topology scenario: the headline's sizes.
	topoBase, topoExt int64
	runs              int
}

var (
	full  = sizes{bases: []int64{100e6, 500e6, 1e9}, exts: []int64{5e6, 50e6}, profiles: []int{1, 5, 20}, profile: 1e6, stream: 1e9, topoBase: 500e6, topoExt: 5e6, runs: 5}
	quick = sizes{bases: []int64{10e6, 50e6, 100e6}, exts: []int64{1e6, 5e6}, profiles: []int{1, 5, 20}, profile: 100e3, stream: 100e6, topoBase: 50e6, topoExt: 1e6, runs: 2}
)

var (
	scenarios = []string{"gobench", "cold", "profiles", "stream", "topology"}
	allTools  = []string{"wso2img", "dockerfile", "buildah", "limit"}
)

func main() {
	os.Exit(run())
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func run() int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	isQuick := fs.Bool("quick", false, "small bases and extensions, 2 runs a row: for developing the harness, not for figures")
	runs := fs.Int("runs", 0, "runs a row (default 5, or 2 with -quick)")
	out := fs.String("out", "docs/BENCHMARKS.md", "the markdown page to write (\"\" writes none)")
	only := fs.String("only", strings.Join(scenarios, ","), "scenarios to run, comma-separated: "+strings.Join(scenarios, ", "))
	tmp := fs.String("tmp", "", "parent of the work folder (default $TMPDIR)")
	keep := fs.Bool("keep", false, "keep the work folder (logs, registry storage) for inspection")
	binary := fs.String("wso2img", "", "the wso2img binary to measure (default bin/wso2img): to compare a change")
	toolList := fs.String("tools", strings.Join(allTools, ","), "tools of the cold, no-change and topology rows, comma-separated: "+strings.Join(allTools, ", "))
	vendorBW := fs.String("vendor-bandwidth", "100Mbit", "topology: bandwidth of the link to the vendor registry, each way (100Mbit, 1Gbit, 12.5MB, unlimited)")
	vendorRTT := fs.Duration("vendor-rtt", 20*time.Millisecond, "topology: round-trip time the link to the vendor registry adds")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	sz := full
	if *isQuick {
		sz = quick
	}
	if *runs > 0 {
		sz.runs = *runs
	}
	want := map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		s = strings.TrimSpace(s)
		if !contains(scenarios, s) {
			logf("-only: unknown scenario %q (want %s)", s, strings.Join(scenarios, ", "))
			return 2
		}
		want[s] = true
	}

	bw, err := parseBandwidth(*vendorBW)
	if err != nil {
		logf("-vendor-bandwidth: %v", err)
		return 2
	}
	var shape *netfault.Shape
	if want["topology"] {
		shape = &netfault.Shape{Up: bw, Down: bw, RTT: *vendorRTT}
	}

	tools := map[string]bool{}
	for _, t := range strings.Split(*toolList, ",") {
		t = strings.TrimSpace(t)
		if !contains(allTools, t) {
			logf("-tools: unknown tool %q (want %s)", t, strings.Join(allTools, ", "))
			return 2
		}
		tools[t] = true
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	started := time.Now()
	res := &Result{
		Started: started.UTC().Format("2006-01-02 15:04 UTC"), Quick: *isQuick, Runs: sz.runs,
		Command: "go run ./hack/bench " + strings.Join(os.Args[1:], " "),
		Machine: machine(), Versions: map[string]string{},
	}
	res.Command = strings.TrimSpace(res.Command)
	if err := bench(ctx, res, sz, want, tools, *tmp, *keep, *binary, shape); err != nil {
		if ctx.Err() != nil {
			logf("interrupted: nothing written")
			return 130
		}
		logf("error: %v", err)
		res.Errors = append(res.Errors, "the run stopped early: "+err.Error())
	}
	res.Seconds = time.Since(started).Seconds()
	res.Machine.LoadEnd = loadAverage()
	res.evaluate()
	printTables(os.Stdout, res)
	if *out != "" {
		if err := writeReport(*out, res, analysis); err != nil {
			logf("writing %s: %v", *out, err)
			return 1
		}
		logf("wrote %s (%.1f minutes)", *out, res.Seconds/60)
	}
	if len(res.Errors) > 0 || res.failed() {
		return 1
	}
	return 0
}

// failed says whether a row other than buildah's (which may be unable to run here, and
// says so) has an error.
func (res *Result) failed() bool {
	for _, r := range res.Rows {
		if r.Error != "" && r.Tool != "buildah" {
			return true
		}
	}
	return false
}

// bench runs the chosen scenarios. Everything it starts is stopped, and its work folder
// removed, before it returns.
func bench(ctx context.Context, res *Result, sz sizes, want, tools map[string]bool, tmp string, keep bool, binary string, shape *netfault.Shape) error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return fmt.Errorf("run from the repository's root (make bench does): %w", err)
	}
	if want["gobench"] {
		logf("go benchmarks: go %s", strings.Join(goBenchArgs, " "))
		res.GoBench = runGoBench(ctx, root, nil)
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if res.GoBench.Error != "" {
			res.Errors = append(res.Errors, "go test -bench failed: "+res.GoBench.Error)
		}
	}
	singleRegistry := want["cold"] || want["profiles"] || want["stream"]
	if !singleRegistry && !want["topology"] {
		return nil
	}
	if os.Geteuid() != 0 {
		return errors.New("the builds need root (buildkitd with runc, buildah, a mount namespace)")
	}

	work, err := os.MkdirTemp(tmp, "wso2img-bench-")
	if err != nil {
		return err
	}
	res.Machine.WorkFS = filesystem(work)
	e, err := startEnv(ctx, work, binary, shape)
	if err != nil {
		_ = os.RemoveAll(work)
		return err
	}
	defer func() {
		e.close()
		if keep {
			logf("kept %s", work)
			return
		}
		if err := os.RemoveAll(work); err != nil {
			logf("removing %s: %v", work, err)
		}
	}()
	logf("registry %s, buildkitd %s, work folder %s", e.reg.Host, e.bk.Addr, work)
	for _, dir := range []string{"logs", "docker"} {
		if err := os.MkdirAll(filepath.Join(work, dir), 0o755); err != nil {
			return err
		}
	}
	if err := e.setup(ctx, res); err != nil {
		return err
	}

	if !tools["buildah"] {
		res.Buildah = "not run (-tools)"
	}
	h := &harness{e: e, res: res, runs: sz.runs, tools: tools, baseLayers: map[string]bool{}, vendorLayers: map[string]bool{}}
	if singleRegistry {
		if err := h.pushBases(ctx, sz.bases); err != nil {
			return err
		}
		for i, n := range sz.exts {
			if _, err := h.makeExt(i+1, n); err != nil {
				return err
			}
		}
	}
	steps := []struct {
		name string
		run  func() error
	}{
		{"cold", func() error { return h.cold(ctx) }},
		{"profiles", func() error { return h.profiles(ctx, res.Bases[len(res.Bases)/2], sz.profiles, sz.profile) }},
		{"stream", func() error { return h.stream(ctx, res.Bases[0], sz.stream) }},
		{"topology", func() error { return h.topology(ctx, sz.topoBase, sz.topoExt) }},
	}
	for _, s := range steps {
		if !want[s.name] {
			continue
		}
		if err := s.run(); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

// setup finds buildah and decides on signing.
func (e *env) setup(ctx context.Context, res *Result) error {
	res.Versions["wso2img"] = firstLine(e.wso2img, "version")
	res.Versions["buildkitd"] = firstLine(mustBin("buildkitd"), "--version")
	res.Versions["registry"] = firstLine(mustBin("registry"), "--version")
	res.Versions["go"] = runtime.Version()
	res.Versions["sha256sum"] = firstLine("sha256sum", "--version")

	if p, err := exec.LookPath("buildah"); err == nil {
		e.buildah = p
		res.Versions["buildah"] = firstLine(p, "--version")
		res.Buildah = "storage driver chosen at the first run"
	} else {
		e.buildahErr = "buildah is not installed (make bench installs Debian's with hack/bench/deps.sh)"
		res.Buildah = e.buildahErr
	}
	if _, err := exec.LookPath("unshare"); err != nil && e.buildah != "" {
		e.buildah, e.buildahErr = "", "unshare (util-linux) is missing: buildah runs in a private mount namespace"
		res.Buildah = e.buildahErr
	}

	if timeBin == "" {
		res.note("GNU time is missing (hack/bench/deps.sh installs it): peak RSS and CPU are the rusage Go reports for its children, which counts the harness's own RSS in each child's peak")
	}

	help, _ := exec.CommandContext(ctx, e.wso2img, "build", "--help").CombinedOutput()
	if !strings.Contains(string(help), "--key") {
		res.Signing = "not measured: `wso2img build --help` has no `--key` flag yet, so the wso2img rows push unsigned images"
		return nil
	}
	cosign, err := testenv.Bin("cosign-v2")
	if err != nil {
		res.Signing = "not measured: wso2img has --key but no cosign was found to make a key pair (" + err.Error() + ")"
		return nil
	}
	prefix := filepath.Join(e.work, "cosign", "bench")
	if err := os.MkdirAll(filepath.Dir(prefix), 0o700); err != nil {
		return err
	}
	const password = "wso2img-bench"
	cmd := exec.CommandContext(ctx, cosign, "generate-key-pair", "--output-key-prefix", prefix)
	cmd.Env = childEnv("COSIGN_PASSWORD=" + password)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("making a cosign key pair: %w: %s", err, out)
	}
	e.sign = []string{"--key", prefix + ".key", "--tlog-upload=false"}
	e.signEnv = []string{"COSIGN_PASSWORD=" + password}
	res.Signing = "on: every build signs with `--key` (a key pair from `cosign generate-key-pair`) and `--tlog-upload=false`"
	return nil
}

func mustBin(name string) string {
	p, err := testenv.Bin(name)
	if err != nil {
		return name
	}
	return p
}

// machine reads what the figures depend on from the machine itself.
func machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), CPU: procField("/proc/cpuinfo", "model name"), LoadStart: loadAverage()}
	if kb := procField("/proc/meminfo", "MemTotal"); kb != "" {
		var n int64
		if _, err := fmt.Sscanf(kb, "%d kB", &n); err == nil {
			m.MemoryGiB = fmt.Sprintf("%.1f GiB", float64(n)/(1<<20))
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	if data, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				m.OS = strings.Trim(v, `"`)
			}
		}
	}
	return m
}

func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// filesystem names the file system type of dir, since it bounds every tool's I/O.
func filesystem(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return "?"
	}
	switch st.Type {
	case 0xef53:
		return "ext4"
	case 0x01021994:
		return "tmpfs"
	case 0x58465342:
		return "xfs"
	case 0x9123683e:
		return "btrfs"
	case 0x794c7630:
		return "overlayfs"
	}
	return fmt.Sprintf("fs type %#x", st.Type)
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
