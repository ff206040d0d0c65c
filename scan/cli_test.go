package scan_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wso2img/wso2img/internal/trivydb"
	"github.com/wso2img/wso2img/scan"
)

// fakeTrivy is a stand-in for the trivy binary that records how it was run (arguments,
// working directory, TRIVY_* environment) and writes testdata/FAKE_REPORT with the
// scanned reference put in, then exits with FAKE_EXIT. It checks the Scanner's side of
// the command-line contract; the end-to-end tests run the real Trivy.
const fakeTrivy = `#!/bin/sh
set -e
n=$(ls "$FAKE_DIR" | grep -c '^args' || true)
printf '%s\n' "$@" > "$FAKE_DIR/args.$n"
pwd > "$FAKE_DIR/cwd.$n"
env | grep '^TRIVY_' | sort > "$FAKE_DIR/env.$n" || true
out=""; prev=""; ref=""
for a in "$@"; do
	if [ "$prev" = "--output" ]; then out="$a"; fi
	prev="$a"; ref="$a"
done
echo "2026-12-01T00:00:00Z	INFO	[vuln] fake trivy scanning $ref" >&2
if [ -n "$FAKE_STDERR" ]; then printf '%s\n' "$FAKE_STDERR" >&2; fi
report="$FAKE_REPORT"
case "$ref" in *base*) report="$FAKE_BASE_REPORT";; esac
if [ -n "$report" ]; then sed "s|@REF@|$ref|g" "$FAKE_TESTDATA/$report" > "$out"; fi
exit "${FAKE_EXIT:-0}"
`

type fake struct {
	dir     string // where the fake records its runs
	trivy   string
	testdat string
}

func newFake(t *testing.T) *fake {
	t.Helper()
	dir := t.TempDir()
	trivy := filepath.Join(t.TempDir(), "trivy")
	if err := os.WriteFile(trivy, []byte(fakeTrivy), 0o755); err != nil {
		t.Fatal(err)
	}
	td, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	return &fake{dir: dir, trivy: trivy, testdat: td}
}

func (f *fake) env(kv ...string) []string {
	return append([]string{"FAKE_DIR=" + f.dir, "FAKE_TESTDATA=" + f.testdat, "FAKE_BASE_REPORT=fake-base.json"}, kv...)
}

func (f *fake) read(t *testing.T, what string, run int) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(f.dir, what+"."+string(rune('0'+run))))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(data), "\n"), "\n")
}

func isGate(err error) bool {
	var gate *scan.GateError
	return errors.As(err, &gate)
}

// cacheDir is a Trivy cache directory with a DB (whose metadata the Scanner reads).
func cacheDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := trivydb.Write(dir, nil, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

const (
	fakeImage = "registry.acme.com/acme/wso2is@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	fakeBase  = "docker.wso2.com/wso2base@sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

func TestCommandLine(t *testing.T) {
	tests := []struct {
		name string
		opts scan.Options
		req  scan.Request
		want []string // flags (with values) expected among the image scan's arguments
		not  []string
	}{
		{
			name: "offline",
			opts: scan.Options{Offline: true},
			want: []string{"image", "--format json", "--scanners vuln", "--skip-version-check", "--disable-telemetry", "--quiet", "--image-src remote", "--skip-db-update", "--skip-java-db-update", "--offline-scan", "--timeout 16m0s"},
			not:  []string{"--server", "--db-repository", "--insecure", "--ignorefile", "--platform"},
		},
		{
			name: "server, mirrors, insecure, platform",
			opts: scan.Options{Server: "http://trivy.internal:4954", DBRepository: "mirror.acme.com/trivy-db:2", JavaDBRepository: "mirror.acme.com/trivy-java-db:1", Insecure: true, Timeout: time.Minute},
			req:  scan.Request{Platform: "linux/arm64"},
			want: []string{"--server http://trivy.internal:4954", "--db-repository mirror.acme.com/trivy-db:2", "--java-db-repository mirror.acme.com/trivy-java-db:1", "--insecure", "--platform linux/arm64", "--timeout 2m0s"},
			not:  []string{"--skip-db-update", "--offline-scan"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			tt.opts.Trivy = f.trivy
			tt.opts.CacheDir = cacheDir(t)
			tt.opts.Env = f.env("FAKE_REPORT=fake-image.json")
			s, err := scan.New(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			tt.req.Image, tt.req.Base = fakeImage, fakeBase
			tt.req.Policy.Threshold = scan.Critical
			if _, err := s.Scan(context.Background(), tt.req); !isGate(err) {
				t.Fatalf("Scan = %v, want the GateError of the fake report", err)
			}
			base, image := f.read(t, "args", 0), f.read(t, "args", 1)
			if base[len(base)-1] != fakeBase || image[len(image)-1] != fakeImage {
				t.Fatalf("runs scanned %q then %q, want the base then the image", base[len(base)-1], image[len(image)-1])
			}
			joined := " " + strings.Join(image, " ") + " "
			for _, w := range append(tt.want, "--cache-dir "+tt.opts.CacheDir) {
				if !strings.Contains(joined, " "+w+" ") {
					t.Errorf("arguments %q lack %q", image, w)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(joined, " "+n+" ") {
					t.Errorf("arguments %q have %q", image, n)
				}
			}
		})
	}
}

// TestEnvironmentAndWorkingDirectory: Trivy runs in an empty directory of its own, with
// the caller's TRIVY_* variables removed and only the Scanner's own passed.
func TestEnvironmentAndWorkingDirectory(t *testing.T) {
	f := newFake(t)
	t.Setenv("TRIVY_SEVERITY", "LOW")
	t.Setenv("TRIVY_SKIP_FILES", "**/*.jar")
	wd := t.TempDir()
	t.Chdir(wd)
	s, err := scan.New(scan.Options{Trivy: f.trivy, CacheDir: cacheDir(t), ServerToken: "t0ken", Server: "https://trivy.internal", Env: f.env("FAKE_REPORT=fake-image.json", "TRIVY_DEBUG=true")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Scan(context.Background(), scan.Request{Image: fakeImage, Base: fakeBase, Policy: scan.Policy{Threshold: scan.Critical}}); !isGate(err) {
		t.Fatalf("Scan = %v, want the GateError of the fake report", err)
	}
	if got, want := f.read(t, "env", 1), []string{"TRIVY_DEBUG=true", "TRIVY_TOKEN=t0ken"}; !slices.Equal(got, want) {
		t.Errorf("Trivy's TRIVY_* environment = %q, want %q", got, want)
	}
	if args := f.read(t, "args", 1); slices.Contains(args, "t0ken") {
		t.Errorf("the server token is among Trivy's arguments: %q", args)
	}
	cwd := f.read(t, "cwd", 1)[0]
	if cwd == wd {
		t.Errorf("Trivy ran in the caller's working directory %s", wd)
	}
	if _, err := os.Stat(cwd); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Trivy's working directory %s was not removed: %v", cwd, err)
	}
}

// TestDecisionIgnoresExitCode: the gate reads the report, not Trivy's exit code; a
// non-zero exit is a failure to scan, never a verdict.
func TestDecisionIgnoresExitCode(t *testing.T) {
	ctx := context.Background()
	run := func(t *testing.T, threshold scan.Severity, env ...string) (*scan.Report, error) {
		f := newFake(t)
		s, err := scan.New(scan.Options{Trivy: f.trivy, CacheDir: cacheDir(t), Env: f.env(env...)})
		if err != nil {
			t.Fatal(err)
		}
		return s.Scan(ctx, scan.Request{Image: fakeImage, Base: fakeBase, Policy: scan.Policy{Threshold: threshold}})
	}
	t.Run("exit 0 with findings fails the gate", func(t *testing.T) {
		_, err := run(t, scan.High, "FAKE_REPORT=fake-image.json")
		var gate *scan.GateError
		if !errors.As(err, &gate) || len(gate.Failed) != 1 || gate.Failed[0].ID != "CVE-2021-44228" {
			t.Fatalf("Scan = %v, want a GateError on CVE-2021-44228", err)
		}
	})
	t.Run("exit 1 with a report is an error", func(t *testing.T) {
		rep, err := run(t, scan.Critical, "FAKE_REPORT=fake-image.json", "FAKE_EXIT=1", "FAKE_STDERR=FATAL	Fatal error	run error: image scan error: unable to find the specified image")
		var gate *scan.GateError
		if rep != nil || err == nil || errors.As(err, &gate) || !strings.Contains(err.Error(), "unable to find the specified image") || errors.Is(err, scan.ErrNoDB) {
			t.Fatalf("Scan = %v, %v; want an error quoting Trivy's output", rep, err)
		}
	})
	t.Run("DB failure", func(t *testing.T) {
		_, err := run(t, scan.Critical, "FAKE_EXIT=1", "FAKE_STDERR=FATAL	Fatal error	init error: DB error: failed to download vulnerability DB: OCI artifact error: failed to download vulnerability DB: failed to download artifact from any source")
		if !errors.Is(err, scan.ErrNoDB) || !strings.Contains(err.Error(), "failed to download artifact from any source") || !strings.Contains(err.Error(), "ghcr.io/aquasecurity/trivy-db") {
			t.Fatalf("Scan = %v, want ErrNoDB quoting Trivy with the hint", err)
		}
	})
	t.Run("no report", func(t *testing.T) {
		_, err := run(t, scan.Critical)
		if err == nil || !strings.Contains(err.Error(), "wrote no report") {
			t.Fatalf("Scan = %v, want an error", err)
		}
	})
	t.Run("report of another image", func(t *testing.T) {
		_, err := run(t, scan.Critical, "FAKE_REPORT=fake-other.json")
		if err == nil || !strings.Contains(err.Error(), "not ") || !strings.Contains(err.Error(), "registry.acme.com/other") {
			t.Fatalf("Scan = %v, want an error about the wrong artifact", err)
		}
	})
	t.Run("unknown schema", func(t *testing.T) {
		_, err := run(t, scan.Critical, "FAKE_REPORT=fake-schema3.json")
		if err == nil || !strings.Contains(err.Error(), "SchemaVersion 3") {
			t.Fatalf("Scan = %v, want an error about the schema", err)
		}
	})
}

func TestNewRejects(t *testing.T) {
	f := newFake(t)
	tests := []struct {
		name string
		opts scan.Options
		want string
	}{
		{"negative timeout", scan.Options{Timeout: -time.Second}, "negative timeout"},
		{"bad DB repository", scan.Options{DBRepository: "Not A Ref"}, `DB repository "Not A Ref"`},
		{"bad Java DB repository", scan.Options{JavaDBRepository: "x@sha256:zz"}, "Java DB repository"},
		{"server without scheme", scan.Options{Server: "trivy.internal:4954"}, "http:// or https://"},
		{"bad env", scan.Options{Env: []string{"DOCKER_CONFIG"}}, "NAME=VALUE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Trivy = f.trivy
			if _, err := scan.New(tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestDefaultCacheDir: the cache directory defaults to the user's, under wso2img/trivy.
func TestDefaultCacheDir(t *testing.T) {
	f := newFake(t)
	xdg := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", xdg)
	want := filepath.Join(xdg, "wso2img", "trivy")
	if err := trivydb.Write(want, nil, nil); err != nil {
		t.Fatal(err)
	}
	s, err := scan.New(scan.Options{Trivy: f.trivy, Env: f.env("FAKE_REPORT=fake-base.json")})
	if err != nil || s.Trivy() != f.trivy {
		t.Fatalf("New = %v, %v; want a Scanner running %s", s, err, f.trivy)
	}
	if _, err := s.Scan(context.Background(), scan.Request{Image: fakeImage, Base: fakeBase}); err != nil {
		t.Fatal(err)
	}
	if args := strings.Join(f.read(t, "args", 1), " "); !strings.Contains(args, "--cache-dir "+want+" ") {
		t.Errorf("arguments %q lack --cache-dir %s", args, want)
	}
}
