// Package scan is the vulnerability gate of the publish pipeline: it runs the pinned Trivy
// CLI on a pushed image, by digest, parses Trivy's JSON report into findings, tells each
// finding's origin (the base image, or what the build added) and judges them by a policy
// (severity threshold, Trivy ignore file, scope), returning a Report and, when the image
// is refused, a *GateError. Report.Predicate is the signed vulnerability attestation's
// predicate (cosign's vuln/v1).
//
// It owns driving Trivy the way Harbor's Trivy adapter does (`trivy image --format json
// --scanners vuln --skip-version-check --disable-telemetry --quiet`), against Trivy's
// online DB, a DB mirror, a `trivy server`, or an offline cache directory; it decides from
// the parsed report only, never from Trivy's exit code, and fails closed when Trivy does
// not run or has no usable DB.
//
// It must not import Trivy (a CLI, not a library), sign or push anything, nor print:
// Trivy's log lines go to Options.Log.
package scan

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

// DefaultDBRepository and DefaultJavaDBRepository are Trivy's own DB repositories, named
// in reports when no mirror was configured.
const (
	DefaultDBRepository     = "ghcr.io/aquasecurity/trivy-db:2"
	DefaultJavaDBRepository = "ghcr.io/aquasecurity/trivy-java-db:1"
)

// DefaultTimeout bounds one Trivy run when Options.Timeout is zero.
const DefaultTimeout = 15 * time.Minute

// Options configure a Scanner. The zero value scans with the trivy found next to the
// running executable or on $PATH, downloading Trivy's DBs into the user cache directory.
type Options struct {
	// Trivy is the trivy binary. Default: "trivy" next to the running executable, else
	// on $PATH.
	Trivy string
	// CacheDir is Trivy's --cache-dir: its DBs (db/, java-db/) and its layer cache.
	// Default: os.UserCacheDir()/wso2img/trivy.
	CacheDir string
	// Offline scans with the DBs already in CacheDir and makes no request but to the
	// image's registry (--skip-db-update --skip-java-db-update --offline-scan).
	Offline bool
	// DBRepository and JavaDBRepository are OCI references of mirrors of Trivy's DBs
	// (--db-repository, --java-db-repository), e.g. "registry.local/trivy-db:2".
	// DBRepository is also the DB URI the attestation names (DefaultDBRepository when
	// empty).
	DBRepository     string
	JavaDBRepository string
	// Server is the URL of a `trivy server` to scan against (client mode, --server): the
	// server holds the vulnerability DB; the client still needs the Java DB in CacheDir.
	Server string
	// ServerToken authenticates to Server; it reaches Trivy through its environment
	// (TRIVY_TOKEN), never its arguments.
	ServerToken string
	// Insecure lets Trivy reach registries over plain HTTP or with unverified TLS
	// (--insecure). Loopback registries (127.0.0.1, localhost, [::1]) are reached over
	// plain HTTP without it.
	Insecure bool
	// Env is added to Trivy's environment, e.g. "DOCKER_CONFIG=/path" for registry
	// credentials, which Trivy reads from the docker config itself. Trivy's own TRIVY_*
	// variables are removed from the inherited environment, so that a setting meant for
	// another use of Trivy (TRIVY_SEVERITY, TRIVY_SKIP_FILES, …) cannot change the gate;
	// they are taken from Env only.
	Env []string
	// Timeout bounds each Trivy run; default DefaultTimeout.
	Timeout time.Duration
	// Log receives Trivy's log lines and one line a scan; nil discards them.
	Log io.Writer
}

// Request is one image to scan and the policy to judge it by.
type Request struct {
	// Profile names the profile, for messages.
	Profile string
	// Image is the pushed image by digest: "registry/repo@sha256:…" (a tag before the
	// digest is dropped). A reference without a digest is refused.
	Image string
	// Base is the base image by digest. Findings it has too are of origin "base"; in
	// ScopeAdded they do not fail the gate. Its scan is cached by the Scanner.
	Base string
	// Platform picks one platform of a multi-platform image ("linux/arm64", --platform);
	// empty: Trivy's default, the host's.
	Platform string
	Policy   Policy
}

// Scanner runs Trivy. It is safe for concurrent use; scans run one at a time, since
// Trivy locks its cache directory.
type Scanner struct {
	opts  Options
	trivy string

	runMu sync.Mutex // serialises Trivy runs

	mu   sync.Mutex                     // guards base
	base map[string]map[findingKey]bool // findings of base images, by digest reference and platform
}

// New checks opts, finds the trivy binary and returns a Scanner.
func New(opts Options) (*Scanner, error) {
	if opts.Timeout < 0 {
		return nil, fmt.Errorf("scan: negative timeout %s", opts.Timeout)
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.CacheDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("scan: no cache directory for Trivy (set one explicitly): %w", err)
		}
		opts.CacheDir = filepath.Join(dir, "wso2img", "trivy")
	}
	cache, err := filepath.Abs(opts.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("scan: cache directory %s: %w", opts.CacheDir, err)
	}
	opts.CacheDir = cache
	for _, ref := range []struct{ what, ref string }{{"DB repository", opts.DBRepository}, {"Java DB repository", opts.JavaDBRepository}} {
		if ref.ref == "" {
			continue
		}
		if _, err := name.ParseReference(ref.ref); err != nil {
			return nil, fmt.Errorf("scan: %s %q is not an OCI reference: %w", ref.what, ref.ref, err)
		}
	}
	if opts.Server != "" && !strings.HasPrefix(opts.Server, "http://") && !strings.HasPrefix(opts.Server, "https://") {
		return nil, fmt.Errorf("scan: Trivy server %q: want an http:// or https:// URL", opts.Server)
	}
	for _, kv := range opts.Env {
		if !strings.Contains(kv, "=") {
			return nil, fmt.Errorf("scan: environment entry %q is not NAME=VALUE", kv)
		}
	}
	trivy, err := findTrivy(opts.Trivy)
	if err != nil {
		return nil, err
	}
	return &Scanner{opts: opts, trivy: trivy, base: map[string]map[findingKey]bool{}}, nil
}

// Trivy returns the path of the trivy binary the Scanner runs.
func (s *Scanner) Trivy() string { return s.trivy }

// findTrivy returns the trivy binary: the explicit path, else trivy next to the running
// executable, else on $PATH.
func findTrivy(explicit string) (string, error) {
	if explicit != "" {
		p, err := exec.LookPath(explicit)
		if err != nil {
			return "", fmt.Errorf("scan: Trivy binary %s: %w (%w)", explicit, ErrTrivyNotFound, err)
		}
		return filepath.Abs(p)
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "trivy")
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	if p, err := exec.LookPath("trivy"); err == nil {
		return filepath.Abs(p)
	}
	return "", fmt.Errorf("scan: %w next to this executable nor on $PATH: install Trivy v0.74 (make tools builds bin/trivy) or name the binary explicitly", ErrTrivyNotFound)
}

// digestRef parses ref and returns it as "repository@sha256:…", refusing a reference
// that does not pin a digest.
func digestRef(what, ref string) (name.Digest, error) {
	d, err := name.NewDigest(ref)
	if err != nil {
		if _, terr := name.NewTag(ref); terr == nil {
			return name.Digest{}, fmt.Errorf("%s %q is a tag, not a digest: the gate scans exactly what is published, so it takes only repository@sha256:… references", what, ref)
		}
		return name.Digest{}, fmt.Errorf("%s %q is not an image reference by digest: %w", what, ref, err)
	}
	// Drop a tag ("repo:tag@sha256:…"): the digest decides what is scanned.
	return d.Context().Digest(d.DigestStr()), nil
}

// Scan scans req.Image (and req.Base, once per Scanner) and judges the findings by
// req.Policy. It returns the Report whenever Trivy ran; the error is a *GateError when
// the image fails the policy, and any other error when it could not be judged (the gate
// then fails closed: treat it as refused).
func (s *Scanner) Scan(ctx context.Context, req Request) (*Report, error) {
	policy, err := req.Policy.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("scanning %s: policy: %w", req.Image, err)
	}
	img, err := digestRef("image", req.Image)
	if err != nil {
		return nil, fmt.Errorf("scanning: %w", err)
	}
	if req.Base == "" {
		return nil, fmt.Errorf("scanning %s: no base image given: findings are told apart by whether the base image has them, so the base is required (by digest)", img)
	}
	base, err := digestRef("base image", req.Base)
	if err != nil {
		return nil, fmt.Errorf("scanning %s: %w", img, err)
	}

	var active, expired []IgnoreRule
	if policy.IgnoreFile != "" {
		if active, expired, err = ReadIgnoreFile(policy.IgnoreFile, time.Now()); err != nil {
			return nil, fmt.Errorf("scanning %s: %w", img, err)
		}
		for _, r := range expired {
			fmt.Fprintf(s.opts.Log, "scan: ignore rule for %s expired on %s; it does not apply\n", r.ID, r.ExpiredAt.Format(time.DateOnly))
		}
	}

	baseKeys, err := s.baseFindings(ctx, base, req.Platform)
	if err != nil {
		return nil, fmt.Errorf("scanning %s: base image: %w", img, err)
	}

	rep := &Report{
		Profile:        req.Profile,
		Image:          img.String(),
		Digest:         img.DigestStr(),
		Base:           base.String(),
		Threshold:      policy.Threshold,
		Scope:          policy.Scope,
		ExpiredIgnores: expired,
		StartedAt:      time.Now().UTC(),
	}
	run, err := s.run(ctx, img, req.Platform, policy.IgnoreFile)
	rep.FinishedAt = time.Now().UTC()
	if err != nil {
		return nil, fmt.Errorf("scanning %s: %w", img, err)
	}
	rep.Result = run.raw
	rep.Invocation = Invocation{Parameters: recordedArgs(run.args)}
	rep.Scanner = ScannerInfo{
		Name:    "trivy",
		Version: run.report.Trivy.Version,
		URI:     "pkg:github/aquasecurity/trivy",
		Server:  s.opts.Server,
	}
	if v := run.report.Trivy.Version; v != "" {
		// As Trivy's own cosign-vuln output names itself.
		rep.Scanner.URI += "@" + v
	}
	rep.DB = DBInfo{URI: s.opts.DBRepository, UpdatedAt: run.dbUpdatedAt}
	if rep.DB.URI == "" {
		rep.DB.URI = DefaultDBRepository
	}

	if err := decide(rep, run.report, baseKeys, active); err != nil {
		return nil, fmt.Errorf("scanning %s: %w", img, err)
	}
	fmt.Fprintf(s.opts.Log, "scan: %s: %d finding(s) (%d from the base), %d ignored, %d at or above %s in scope %s\n",
		img, len(rep.Findings), countOrigin(rep.Findings, OriginBase), len(rep.Ignored), len(rep.Failed), policy.Threshold, policy.Scope)
	return rep, rep.gateError()
}

// Evaluate judges Trivy's JSON report of an image (image) by p, telling findings the
// base image's report (base) has too as of origin "base": the decision Scan makes
// after running Trivy, for reports that were made elsewhere. The returned Report holds
// the findings, Threshold, Scope, Image (Trivy's artifact name) and Result; the error
// is a *GateError when the image fails p.
//
// Ignore rules are applied by Trivy (--ignorefile with --show-suppressed), so Evaluate
// takes the suppressed findings from the report; when p.IgnoreFile is set it reads the
// file only to check that each suppressed finding is one of its (unexpired) rules.
func Evaluate(image, base []byte, p Policy) (*Report, error) {
	policy, err := p.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("evaluating a Trivy report: policy: %w", err)
	}
	img, err := parseTrivyReport(image)
	if err != nil {
		return nil, fmt.Errorf("evaluating the image's report: %w", err)
	}
	b, err := parseTrivyReport(base)
	if err != nil {
		return nil, fmt.Errorf("evaluating the base image's report: %w", err)
	}
	baseKeys, err := b.keys()
	if err != nil {
		return nil, fmt.Errorf("evaluating the base image's report: %w", err)
	}
	var active []IgnoreRule
	var expired []IgnoreRule
	if policy.IgnoreFile != "" {
		if active, expired, err = ReadIgnoreFile(policy.IgnoreFile, time.Now()); err != nil {
			return nil, fmt.Errorf("evaluating %s: %w", img.ArtifactName, err)
		}
	}
	rep := &Report{Image: img.ArtifactName, Threshold: policy.Threshold, Scope: policy.Scope, ExpiredIgnores: expired, Result: image}
	if err := decide(rep, img, baseKeys, active); err != nil {
		return nil, fmt.Errorf("evaluating %s: %w", img.ArtifactName, err)
	}
	return rep, rep.gateError()
}

// decide fills rep's findings from the image's Trivy report, with their origin, and
// the failed ones by rep.Threshold and rep.Scope.
func decide(rep *Report, img *trivyReport, baseKeys map[findingKey]bool, rules []IgnoreRule) error {
	findings, ignored, err := img.findings()
	if err != nil {
		return err
	}
	if err := checkIgnored(ignored, rules); err != nil {
		return err
	}
	for _, fs := range [][]Finding{findings, ignored} {
		for i := range fs {
			fs[i].Origin = OriginInputs
			if baseKeys[fs[i].key()] {
				fs[i].Origin = OriginBase
			}
		}
	}
	rep.Findings, rep.Ignored = findings, ignored
	rep.Failed = judge(findings, Policy{Threshold: rep.Threshold, Scope: rep.Scope})
	return nil
}

// gateError is the report's *GateError, or nil when it passed.
func (r *Report) gateError() error {
	if r.Passed() {
		return nil
	}
	return &GateError{Profile: r.Profile, Image: r.Image, Threshold: r.Threshold, Scope: r.Scope, Failed: r.Failed}
}

// checkIgnored makes sure that every finding Trivy suppressed was suppressed by a rule
// of the ignore file (and not, say, by a VEX document found somewhere): the gate's
// exceptions are the policy's and nobody else's.
func checkIgnored(ignored []Finding, rules []IgnoreRule) error {
	ids := map[string]bool{}
	for _, r := range rules {
		ids[r.ID] = true
	}
	for _, f := range ignored {
		if !ids[f.ID] {
			return fmt.Errorf("Trivy suppressed %s in %s, which no rule of the ignore file names", f.ID, f.Package)
		}
	}
	return nil
}

// judge returns the findings that fail the policy.
func judge(findings []Finding, p Policy) []Finding {
	var failed []Finding
	for _, f := range findings {
		if f.Severity < p.Threshold {
			continue
		}
		if p.Scope != ScopeAll && f.Origin == OriginBase {
			continue
		}
		failed = append(failed, f)
	}
	return failed
}

func countOrigin(fs []Finding, o Origin) int {
	n := 0
	for _, f := range fs {
		if f.Origin == o {
			n++
		}
	}
	return n
}

// baseFindings scans the base image once per Scanner (by digest and platform), without
// an ignore file, and returns the keys of all its findings.
func (s *Scanner) baseFindings(ctx context.Context, base name.Digest, platform string) (map[findingKey]bool, error) {
	cacheKey := base.String() + " " + platform
	s.mu.Lock()
	keys, ok := s.base[cacheKey]
	s.mu.Unlock()
	if ok {
		return keys, nil
	}
	run, err := s.run(ctx, base, platform, "")
	if err != nil {
		return nil, err
	}
	keys, err = run.report.keys()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(s.opts.Log, "scan: base %s: %d finding(s)\n", base, len(keys))
	s.mu.Lock()
	s.base[cacheKey] = keys
	s.mu.Unlock()
	return keys, nil
}

// runResult is one Trivy run.
type runResult struct {
	args        []string
	raw         json.RawMessage
	report      *trivyReport
	dbUpdatedAt time.Time
}

// run runs `trivy image` on ref and parses its report.
func (s *Scanner) run(ctx context.Context, ref name.Digest, platform, ignoreFile string) (*runResult, error) {
	s.runMu.Lock()
	defer s.runMu.Unlock()

	work, err := os.MkdirTemp("", "wso2img-trivy-")
	if err != nil {
		return nil, fmt.Errorf("creating a working directory for Trivy: %w", err)
	}
	defer os.RemoveAll(work)
	if ignoreFile != "" {
		if ignoreFile, err = filepath.Abs(ignoreFile); err != nil {
			return nil, err
		}
	}
	out := filepath.Join(work, "report.json")
	args := s.args(ref, platform, ignoreFile, out)

	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.trivy, args...)
	// An empty working directory: Trivy reads trivy.yaml and .trivyignore from its
	// working directory, and nothing there may change the gate.
	cmd.Dir = work
	cmd.Env = s.env()
	cmd.Stdout = s.opts.Log
	tail := &tailWriter{max: 8 << 10}
	cmd.Stderr = io.MultiWriter(s.opts.Log, tail)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	fmt.Fprintf(s.opts.Log, "scan: %s %s\n", s.trivy, strings.Join(args, " "))
	runErr := cmd.Run()
	if ctx.Err() != nil && runErr != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("Trivy did not finish within %s; last lines of its output:\n%s", s.opts.Timeout, tail.lines(15))
		}
		return nil, fmt.Errorf("Trivy stopped: %w", ctx.Err())
	}
	if runErr != nil {
		return nil, s.runError(runErr, tail)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("Trivy exited 0 but wrote no report (%w); last lines of its output:\n%s", err, tail.lines(15))
	}
	rep, err := parseTrivyReport(raw)
	if err != nil {
		return nil, err
	}
	if err := checkArtifact(rep, ref); err != nil {
		return nil, err
	}
	res := &runResult{args: args, raw: raw, report: rep}
	if db := rep.Trivy.Server.VulnerabilityDB; s.opts.Server != "" && db != nil {
		res.dbUpdatedAt = db.UpdatedAt
	} else if s.opts.Server == "" {
		if res.dbUpdatedAt, err = dbUpdatedAt(s.opts.CacheDir); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// args are Trivy's arguments for scanning ref into the file out.
func (s *Scanner) args(ref name.Digest, platform, ignoreFile, out string) []string {
	args := []string{
		"image",
		"--format", "json",
		"--output", out,
		"--scanners", "vuln",
		"--skip-version-check",
		"--disable-telemetry",
		"--quiet",
		// Only the registry: never an image of the same name in a local daemon.
		"--image-src", "remote",
		"--cache-dir", s.opts.CacheDir,
		// The gate's own timeout bounds the run; Trivy's default (5 min) must not cut it short.
		"--timeout", (s.opts.Timeout + time.Minute).String(),
	}
	if s.opts.Server != "" {
		args = append(args, "--server", s.opts.Server)
	}
	if s.opts.DBRepository != "" {
		args = append(args, "--db-repository", s.opts.DBRepository)
	}
	if s.opts.JavaDBRepository != "" {
		args = append(args, "--java-db-repository", s.opts.JavaDBRepository)
	}
	if s.opts.Offline {
		args = append(args, "--skip-db-update", "--skip-java-db-update", "--offline-scan")
	}
	if s.opts.Insecure {
		args = append(args, "--insecure")
	}
	if platform != "" {
		args = append(args, "--platform", platform)
	}
	if ignoreFile != "" {
		args = append(args, "--ignorefile", ignoreFile, "--show-suppressed")
	}
	return append(args, ref.String())
}

// recordedArgs are Trivy's arguments as the attestation records them: without this
// machine's temporary and cache paths, and with the ignore file's base name.
func recordedArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case (a == "--output" || a == "--cache-dir") && i+1 < len(args):
			i++
		case a == "--ignorefile" && i+1 < len(args):
			out = append(out, a, filepath.Base(args[i+1]))
			i++
		default:
			out = append(out, a)
		}
	}
	return out
}

// env is Trivy's environment: this process's, less TRIVY_* variables, plus Options.Env
// and the server token.
func (s *Scanner) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "TRIVY_") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, s.opts.Env...)
	if s.opts.ServerToken != "" {
		env = append(env, "TRIVY_TOKEN="+s.opts.ServerToken)
	}
	return env
}

// runError explains a failed Trivy run with the end of its output, and how to get a DB
// when the DB was the problem.
func (s *Scanner) runError(err error, tail *tailWriter) error {
	out := tail.lines(15)
	if looksLikeDBError(out) {
		where := "downloading them failed"
		if s.opts.Offline {
			where = "offline mode: none in the cache directory " + s.opts.CacheDir
		} else if s.opts.DBRepository != "" || s.opts.JavaDBRepository != "" {
			where = fmt.Sprintf("downloading them from %q and %q failed", cmp.Or(s.opts.DBRepository, DefaultDBRepository), cmp.Or(s.opts.JavaDBRepository, DefaultJavaDBRepository))
		}
		return fmt.Errorf("Trivy (%s) failed: %w: Trivy has no usable vulnerability DB or Java DB (%s); last lines of its output:\n%s\n%s", s.trivy, ErrNoDB, where, indent(out), dbHint)
	}
	return fmt.Errorf("Trivy (%s) failed: %w; last lines of its output:\n%s", s.trivy, err, indent(out))
}

// looksLikeDBError reports whether Trivy's output names a DB problem: what it prints when
// it cannot download or open the vulnerability DB or the Java DB.
func looksLikeDBError(out string) bool {
	for _, s := range []string{"DB error", "db error", "--skip-db-update", "--skip-java-db-update", "Java DB", "failed to download vulnerability DB", "vulnerability DB", "DB update"} {
		if strings.Contains(out, s) {
			return true
		}
	}
	return false
}

func indent(s string) string {
	if s == "" {
		return "  (no output)"
	}
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

// checkArtifact makes sure that Trivy scanned ref and nothing else.
func checkArtifact(rep *trivyReport, ref name.Digest) error {
	if rep.ArtifactName != ref.String() {
		return fmt.Errorf("Trivy's report is about %q, not %q", rep.ArtifactName, ref.String())
	}
	for _, d := range rep.Metadata.RepoDigests {
		if strings.HasSuffix(d, "@"+ref.DigestStr()) {
			return nil
		}
	}
	if len(rep.Metadata.RepoDigests) == 0 {
		return nil
	}
	return fmt.Errorf("Trivy's report of %s names the digests %v, not %s", ref, rep.Metadata.RepoDigests, ref.DigestStr())
}

// dbUpdatedAt reads the update time of the vulnerability DB in a Trivy cache directory.
func dbUpdatedAt(cacheDir string) (time.Time, error) {
	p := filepath.Join(cacheDir, "db", "metadata.json")
	data, err := os.ReadFile(p)
	if err != nil {
		return time.Time{}, fmt.Errorf("reading the vulnerability DB's metadata after the scan: %w", err)
	}
	var m trivyDBMetadata
	if err := json.Unmarshal(data, &m); err != nil {
		return time.Time{}, fmt.Errorf("parsing %s: %w", p, err)
	}
	return m.UpdatedAt, nil
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	max int
	mu  sync.Mutex
	buf []byte
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if len(w.buf) > w.max {
		w.buf = append([]byte(nil), w.buf[len(w.buf)-w.max:]...)
	}
	return len(p), nil
}

// lines returns the last n lines written.
func (w *tailWriter) lines(n int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	ls := strings.Split(strings.TrimRight(string(bytes.ToValidUTF8(w.buf, []byte("?"))), "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}
