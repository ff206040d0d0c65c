//go:build linux

package main

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// goBenchArgs are the Go benchmarks `make bench` runs: tag parsing, LLB generation for
// large profiles, and fetch + hash throughput next to sha256sum's.
var goBenchArgs = []string{"test", "-run", "XXX", "-bench", ".", "-benchmem", "./tags", "./build", "./build/inputs"}

// GoBench is the output of the Go benchmarks, raw and parsed.
type GoBench struct {
	Command string          `json:"command"`
	Results []GoBenchResult `json:"results"`
	// Output is shown in the page as it is, not repeated in the raw figures.
	Output string `json:"-"`
	Error  string `json:"error,omitempty"`
}

// GoBenchResult is one benchmark line: its metrics by unit (ns/op, MB/s, B/op, …).
type GoBenchResult struct {
	Package string             `json:"package"`
	Name    string             `json:"name"`
	N       int64              `json:"n"`
	Metrics map[string]float64 `json:"metrics"`
}

// runGoBench runs the Go benchmarks in the repository at root, before any daemon starts,
// so that they have the machine to themselves.
func runGoBench(ctx context.Context, root string, extra []string) *GoBench {
	args := append(append([]string{}, goBenchArgs...), extra...)
	g := &GoBench{Command: "go " + strings.Join(args, " ")}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = childEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	g.Output = string(out)
	if err != nil {
		g.Error = err.Error()
	}
	g.Results = parseGoBench(g.Output)
	return g
}

// parseGoBench reads `go test -bench` output: "pkg:" lines name the package of the
// benchmark lines that follow, each "BenchmarkName-P N value unit value unit …".
func parseGoBench(out string) []GoBenchResult {
	var (
		res []GoBenchResult
		pkg string
	)
	for _, line := range strings.Split(out, "\n") {
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		r := GoBenchResult{Package: pkg, Name: f[0], N: n, Metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				r.Metrics[f[i+1]] = v
			}
		}
		res = append(res, r)
	}
	return res
}
