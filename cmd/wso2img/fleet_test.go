package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/viper"
	"golang.org/x/sync/errgroup"

	"github.com/wso2img/wso2img/build"
	"github.com/wso2img/wso2img/build/fleet"
	"github.com/wso2img/wso2img/internal/standin"
	"github.com/wso2img/wso2img/internal/testenv"
)

// startDaemons starts n buildkitds that reach the test's registry, at once.
func startDaemons(t *testing.T, reg *testenv.Registry, n int, opts ...testenv.BuildkitdOption) []*testenv.Buildkitd {
	t.Helper()
	testenv.Need(t, "buildkitd")
	bks := make([]*testenv.Buildkitd, n)
	var g errgroup.Group
	for i := range bks {
		g.Go(func() error {
			bk, err := testenv.StartBuildkitd(context.Background(), filepath.Join(t.TempDir(), fmt.Sprint("bk", i)), []string{reg.Host}, opts...)
			bks[i] = bk
			return err
		})
	}
	err := g.Wait()
	for _, bk := range bks {
		if bk != nil {
			t.Cleanup(func() { bk.Close() })
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return bks
}

func addrs(bks []*testenv.Buildkitd) []string {
	var out []string
	for _, bk := range bks {
		out = append(out, bk.Addr)
	}
	return out
}

// fleetBase is a stand-in IS 5.8.0 base of one WUM update, and the profiles built on it.
type fleetBase struct {
	wum      int64
	digest   string
	profiles []string // profile names
}

// pushUpdate pushes a stand-in IS 5.8.0 alpine base of WUM update wum (its own digest).
func (w *world) pushUpdate(wum int64) string {
	o := standin.Options{Product: "wso2is", Version: "5.8.0", Ports: []int{4000, 9763, 9443}, Created: time.UnixMilli(wum)}
	return w.pushBase(o, []string{fmt.Sprintf("wso2is:5.8.0.%d-alpine3.10", wum)})
}

// keyOf is the placement key of a base as a profile of the default platform gives it.
func keyOf(digest string) string {
	return fleet.Key(&build.Plan{Base: build.Base{Digest: digest}, Platforms: []string{"linux/amd64"}})
}

// spreadBases pushes bases until every builder is the first choice of one of them, and
// returns one base per builder (in the builders' order): the placement must then use
// every daemon, by its own rule.
func (w *world) spreadBases(t *testing.T, builders []string) []*fleetBase {
	t.Helper()
	chosen := make([]*fleetBase, len(builders))
	for i := int64(0); i < 40; i++ {
		wum := 1565855673150 + i*1000
		digest := w.pushUpdate(wum)
		first := fleet.Rank(keyOf(digest), builders)[0]
		j := slices.Index(builders, first)
		if chosen[j] == nil {
			chosen[j] = &fleetBase{wum: wum, digest: digest}
		}
		if !slices.Contains(chosen, nil) {
			return chosen
		}
	}
	t.Fatal("40 bases, and some builder is nobody's first choice")
	return nil
}

// fleetProfiles writes perBase profiles on each base, each adding its own file of size
// bytes (seeded, so two runs build the same images), and returns their files.
func (w *world) fleetProfiles(bases []*fleetBase, perBase, size int) []string {
	var files []string
	for i, b := range bases {
		for j := range perBase {
			name := fmt.Sprintf("is-%d-%d", i, j)
			data := make([]byte, size)
			rng := rand.NewChaCha8([32]byte{byte(i), byte(j)})
			_, _ = rng.Read(data)
			w.file("data/"+name+".bin", string(data), 0o644)
			files = append(files, w.profile(name+".yaml", fmt.Sprintf(`extends: wso2is-5.8.0-alpine
update: {wum: %d}
target: {repository: registry.example.com/acme/%s}
inputs:
  - {path: data/%s.bin, dest: repository/components/lib/%s.bin}
`, b.wum, name, name, name)))
			b.profiles = append(b.profiles, name)
		}
	}
	return files
}

// fleetResult is the part of `build --json` these tests read.
type fleetResult struct {
	Profile string   `json:"profile"`
	Image   string   `json:"image"`
	Digest  string   `json:"digest"`
	Tags    []string `json:"tags"`
	Builder string   `json:"builder"`
}

// lineWatcher keeps what is written to it and calls on with every complete line.
type lineWatcher struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	partial string
	on      func(line string)
}

func (l *lineWatcher) Write(b []byte) (int, error) {
	l.mu.Lock()
	l.buf.Write(b)
	text := l.partial + string(b)
	lines := strings.Split(text, "\n")
	l.partial = lines[len(lines)-1]
	l.mu.Unlock()
	if l.on != nil {
		for _, line := range lines[:len(lines)-1] {
			l.on(line)
		}
	}
	return len(b), nil
}

func (l *lineWatcher) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// runFleet runs `wso2img build --json` with stderr going to watch, and decodes stdout.
func runFleet(t *testing.T, watch *lineWatcher, args ...string) (result, []fleetResult) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(watch)
	root.SetArgs(append([]string{"build", "--json"}, args...))
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	err := root.ExecuteContext(ctx)
	if err != nil {
		fmt.Fprintln(watch, "wso2img:", err)
	}
	r := result{stdout: out.String(), stderr: watch.String(), code: exitCode(err), err: err}
	var res []fleetResult
	if r.stdout != "" {
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
			t.Fatalf("build --json is not one JSON document: %v\n%s", err, r.stdout)
		}
	}
	return r, res
}

// hostFlags are --buildkit-host for each daemon.
func hostFlags(hosts []string) []string {
	var out []string
	for _, h := range hosts {
		out = append(out, "--buildkit-host", h)
	}
	return out
}

var placedRE = regexp.MustCompile(`profile "([^"]+)": building on (\S+) \(`)

// placements reads the log's placement lines: for each profile, the builders it was
// placed on, in order.
func placements(stderr string) map[string][]string {
	out := map[string][]string{}
	for _, m := range placedRE.FindAllStringSubmatch(stderr, -1) {
		out[m[1]] = append(out[m[1]], m[2])
	}
	return out
}

// TestFleetSpread: twelve profiles on three bases over three daemons: each base's
// profiles go to the daemon that ranks first for it, so every daemon builds; with a
// limit of one build a daemon, builds spill to the next-ranked daemon.
func TestFleetSpread(t *testing.T) {
	reg := needRegistry(t)
	bks := startDaemons(t, reg, 3)
	hosts := addrs(bks)
	w := newWorld(t, reg)
	bases := w.spreadBases(t, hosts)
	files := w.fleetProfiles(bases, 4, 64<<10)

	args := append(append(hostFlags(hosts), "--progress", "plain", "--buildkit-parallel", "4", "--registry", w.prefix+"/spread"), w.flags()...)
	r, res := runFleet(t, &lineWatcher{}, append(args, files...)...)
	if r.code != 0 || len(res) != 12 {
		t.Fatalf("exit %d, %d results:\n%s", r.code, len(res), r.stderr)
	}
	used := map[string]int{}
	for i, b := range bases {
		for _, name := range b.profiles {
			got := res[slices.IndexFunc(res, func(x fleetResult) bool { return x.Profile == name })]
			if got.Builder != hosts[i] {
				t.Errorf("profile %s (base %s) built on %s, want %s, its base's first choice", name, b.digest[:19], got.Builder, hosts[i])
			}
			used[got.Builder]++
			if _, desc := remoteImage(t, got.Image+":"+got.Tags[0]); desc.Digest.String() != got.Digest {
				t.Errorf("%s:%s names %s, want %s", got.Image, got.Tags[0], desc.Digest, got.Digest)
			}
		}
	}
	for _, h := range hosts {
		if used[h] != 4 {
			t.Errorf("daemon %s built %d profiles, want 4: %v", h, used[h], used)
		}
		if !strings.Contains(r.stderr, "building on "+h+" (first choice for base sha256:") {
			t.Errorf("no placement on %s is logged", h)
		}
	}
	if !strings.Contains(r.stderr, "(built on "+hosts[0]+")") {
		t.Errorf("the push stage does not say where it was built:\n%s", r.stderr)
	}

	t.Run("spill", func(t *testing.T) {
		// Four builds at once (publish's bound) on one base, one slot a daemon: the
		// others spill down the base's ranking.
		args := append(append(hostFlags(hosts), "--progress", "quiet", "--buildkit-parallel", "1", "--registry", w.prefix+"/spill"), w.flags()...)
		r, res := runFleet(t, &lineWatcher{}, append(args, files[:4]...)...)
		if r.code != 0 || len(res) != 4 {
			t.Fatalf("exit %d:\n%s", r.code, r.stderr)
		}
		if !strings.Contains(r.stderr, "is busy with 1 of 1 builds)") {
			t.Errorf("no build spilled:\n%s", r.stderr)
		}
		on := map[string]bool{}
		for _, x := range res {
			on[x.Builder] = true
		}
		if len(on) < 2 {
			t.Errorf("four builds of one base at once, one slot a daemon, all built on %v", on)
		}
	})
}

// TestFleetFailover: a daemon killed while it builds loses nothing: every profile is
// built (on the next-ranked daemon), published once, with the digest one daemon alone
// gives; and when every daemon is gone, the error names each, and nothing is tagged.
func TestFleetFailover(t *testing.T) {
	reg, single := needBuildkit(t)
	bks := startDaemons(t, reg, 3)
	hosts := addrs(bks)
	w := newWorld(t, reg)
	bases := w.spreadBases(t, hosts)
	// Big enough inputs that a build is still running when its daemon is killed.
	files := w.fleetProfiles(bases, 4, 8<<20)

	// The reference: one daemon alone.
	args := append([]string{"--progress", "quiet", "--buildkit-host", single.Addr, "--registry", w.prefix + "/single"}, w.flags()...)
	r, ref := runFleet(t, &lineWatcher{}, append(args, files...)...)
	if r.code != 0 || len(ref) != 12 {
		t.Fatalf("one daemon: exit %d:\n%s", r.code, r.stderr)
	}
	want := map[string]string{}
	for _, x := range ref {
		want[x.Profile] = x.Digest
	}

	// The victim is the first choice of the first base, whose profiles come first: it
	// is killed a moment after its first build starts.
	victim := bks[0]
	var once sync.Once
	killed := make(chan time.Time, 1)
	watch := &lineWatcher{on: func(line string) {
		if strings.Contains(line, "building on "+victim.Addr+" (") {
			once.Do(func() {
				go func() {
					time.Sleep(300 * time.Millisecond)
					victim.Kill()
					killed <- time.Now()
				}()
			})
		}
	}}
	before, _ := reg.Requests()
	args = append(append(hostFlags(hosts), "--progress", "plain", "--registry", w.prefix+"/fleet"), w.flags()...)
	r, res := runFleet(t, watch, append(args, files...)...)
	select {
	case <-killed:
	default:
		t.Fatalf("the victim was never killed:\n%s", r.stderr)
	}
	if r.code != 0 || len(res) != 12 {
		t.Fatalf("with a daemon killed: exit %d, %d results:\n%s", r.code, len(res), r.stderr)
	}
	lostRE := regexp.MustCompile(`profile "([^"]+)": lost builder ` + regexp.QuoteMeta(victim.Addr) + ` while building \(([^\n]*)\); building it on the next builder`)
	lost := lostRE.FindAllStringSubmatch(r.stderr, -1)
	if len(lost) == 0 {
		t.Fatalf("no build was lost with the victim:\n%s", r.stderr)
	}
	midSolve := false
	for _, l := range lost {
		t.Logf("lost %s: %s", l[1], l[2])
		midSolve = midSolve || !strings.Contains(l[2], "connection refused") && !strings.Contains(l[2], "no such file")
	}
	if !midSolve {
		t.Errorf("every loss was a refused connection, none a build cut off mid-solve: %v", lost)
	}
	placed := placements(r.stderr)
	for _, x := range res {
		if x.Digest != want[x.Profile] {
			t.Errorf("%s: digest %s, one daemon alone gives %s", x.Profile, x.Digest, want[x.Profile])
		}
		p := placed[x.Profile]
		if len(p) == 0 || x.Builder != p[len(p)-1] {
			t.Errorf("%s: result names builder %q, its last placement was on %v", x.Profile, x.Builder, p)
		}
		for _, l := range lost {
			if l[1] == x.Profile && x.Builder == victim.Addr {
				t.Errorf("%s: lost with the victim, yet its result names the victim", x.Profile)
			}
		}
		if _, desc := remoteImage(t, x.Image+":"+x.Tags[0]); desc.Digest.String() != x.Digest {
			t.Errorf("%s:%s names %s, want %s", x.Image, x.Tags[0], desc.Digest, x.Digest)
		}
	}
	// Each tag written exactly once.
	after, _ := reg.Requests()
	puts := map[string]int{}
	for _, rq := range after[len(before):] {
		if rq.Method == "PUT" && rq.Kind == "manifest" && !strings.HasPrefix(rq.Reference, "sha256:") && strings.Contains(rq.Repository, "/fleet/") {
			puts[rq.Repository+":"+rq.Reference]++
		}
	}
	for _, x := range res {
		for _, tag := range x.Tags {
			repo := strings.TrimPrefix(x.Image, reg.Host+"/")
			if n := puts[repo+":"+tag]; n != 1 {
				t.Errorf("%s:%s written %d times, want once", repo, tag, n)
			}
		}
	}

	t.Run("every daemon killed", func(t *testing.T) {
		var once sync.Once
		watch := &lineWatcher{on: func(line string) {
			if strings.Contains(line, "building on ") {
				once.Do(func() {
					for _, bk := range bks {
						bk.Kill()
					}
				})
			}
		}}
		before, _ := reg.Requests()
		args := append(append(hostFlags(hosts), "--progress", "quiet", "--registry", w.prefix+"/dead"), w.flags()...)
		r, res := runFleet(t, watch, append(args, files[:4]...)...)
		if r.code != 1 {
			t.Fatalf("exit %d, want 1:\n%s", r.code, r.stderr)
		}
		for _, x := range res {
			if x.Digest != "" || len(x.Tags) != 0 {
				t.Errorf("%s: %+v, want neither digest nor tags", x.Profile, x)
			}
		}
		if !strings.Contains(r.stderr, "no BuildKit builder could build it (each was lost or is unhealthy; nothing was pushed):") {
			t.Errorf("the error does not say that every builder failed:\n%s", r.stderr)
		}
		for _, h := range hosts {
			if !strings.Contains(r.stderr, "\n    "+h+": ") {
				t.Errorf("the error does not name %s and why it failed:\n%s", h, r.stderr)
			}
		}
		after, _ := reg.Requests()
		for _, rq := range after[len(before):] {
			if rq.Method == "PUT" && rq.Kind == "manifest" && strings.Contains(rq.Repository, "/dead/") && !strings.HasPrefix(rq.Reference, "sha256:") {
				t.Errorf("a tag was written with every daemon gone: %s %s", rq.Method, rq.Path)
			}
		}
	})
}

// TestFleetTLS: a tcp:// builder with mutual TLS builds with the right client
// certificate; with one from another CA the error names the builder and says that the
// TLS handshake failed, and nothing is pushed.
func TestFleetTLS(t *testing.T) {
	reg := needRegistry(t)
	dir := t.TempDir()
	ca, err := testenv.NewCA(dir, "fleet")
	if err != nil {
		t.Fatal(err)
	}
	other, err := testenv.NewCA(dir, "other")
	if err != nil {
		t.Fatal(err)
	}
	srvCert, srvKey, err := ca.Issue("buildkitd", true)
	if err != nil {
		t.Fatal(err)
	}
	cliCert, cliKey, err := ca.Issue("wso2img", false)
	if err != nil {
		t.Fatal(err)
	}
	badCert, badKey, err := other.Issue("intruder", false)
	if err != nil {
		t.Fatal(err)
	}
	bk := startDaemons(t, reg, 1, testenv.WithTLS(testenv.TLSFiles{Cert: srvCert, Key: srvKey, ClientCA: ca.File}))[0]

	w := newWorld(t, reg)
	w.pushIS58()
	w.file("conf/deployment.toml", "x = 1\n", 0o644)
	file := w.profile("p.yaml", "extends: wso2is-5.8.0-alpine\nupdate: {wum: 1565855673150}\ninputs:\n  - {path: conf/deployment.toml, dest: repository/conf/deployment.toml}\n")

	args := append([]string{"--progress", "quiet", "--buildkit-host", bk.TCPAddr, "--buildkit-ca", ca.File, "--buildkit-cert", cliCert, "--buildkit-key", cliKey, "--registry", w.prefix + "/ok"}, w.flags()...)
	r, res := runFleet(t, &lineWatcher{}, append(args, file)...)
	if r.code != 0 || len(res) != 1 || res[0].Builder != bk.TCPAddr {
		t.Fatalf("with the right certificate: exit %d %+v:\n%s", r.code, res, r.stderr)
	}

	before, _ := reg.Requests()
	args = append([]string{"--progress", "quiet", "--buildkit-host", bk.TCPAddr, "--buildkit-ca", ca.File, "--buildkit-cert", badCert, "--buildkit-key", badKey, "--registry", w.prefix + "/bad"}, w.flags()...)
	r, _ = runFleet(t, &lineWatcher{}, append(args, file)...)
	if r.code != 1 {
		t.Errorf("with another CA's certificate: exit %d, want 1:\n%s", r.code, r.stderr)
	}
	t.Logf("with another CA's certificate:\n%s", r.stderr)
	if !strings.Contains(r.stderr, "no BuildKit builder answers:\n    "+bk.TCPAddr+": unhealthy: TLS handshake failed") {
		t.Errorf("the error does not name the builder and the failed TLS handshake:\n%s", r.stderr)
	}
	after, _ := reg.Requests()
	for _, rq := range after[len(before):] {
		if strings.Contains(rq.Repository, "/bad/") {
			t.Errorf("the refused builder's run touched the target: %s %s", rq.Method, rq.Path)
		}
	}
}

// rawVertex is the part of a `--progress rawjson` status line these tests read.
type rawVertex struct {
	Vertexes []struct {
		Name   string `json:"name"`
		Cached bool   `json:"cached"`
	} `json:"vertexes"`
}

// cachedVertices reads `--progress rawjson` output and returns the names of the vertices
// the daemon took from a cache.
func cachedVertices(t *testing.T, stderr string) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(stderr, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var st rawVertex
		if err := json.Unmarshal([]byte(line), &st); err != nil {
			continue
		}
		for _, v := range st.Vertexes {
			if v.Cached && !slices.Contains(out, v.Name) {
				out = append(out, v.Name)
			}
		}
	}
	return out
}

// TestFleetRegistryCache: a daemon with an empty cache imports what another exported
// (--cache-to, --cache-from), and builds the added layer from it.
func TestFleetRegistryCache(t *testing.T) {
	reg := needRegistry(t)
	bks := startDaemons(t, reg, 2)
	w := newWorld(t, reg)
	w.pushIS58()
	w.file("conf/deployment.toml", "x = 1\n", 0o644)
	w.file("lib/driver.jar", strings.Repeat("jar", 1<<16), 0o644)
	file := w.profile("cached.yaml", "extends: wso2is-5.8.0-alpine\nupdate: {wum: 1565855673150}\ninputs:\n  - {path: conf/deployment.toml, dest: repository/conf/deployment.toml}\n  - {path: lib/driver.jar, dest: repository/components/lib/driver.jar}\n")
	cache := w.prefix + "/cache"

	args := append([]string{"--progress", "rawjson", "--buildkit-host", bks[0].Addr, "--cache-to", cache, "--registry", w.prefix + "/a"}, w.flags()...)
	r, first := runFleet(t, &lineWatcher{}, append(args, file)...)
	if r.code != 0 {
		t.Fatalf("exporting the cache: exit %d:\n%s", r.code, r.stderr)
	}
	if c := cachedVertices(t, r.stderr); len(c) != 0 {
		t.Fatalf("a fresh daemon reports cached vertices %q: the control is void", c)
	}
	if _, desc := remoteImage(t, cache+":cached"); desc == nil {
		t.Fatalf("no cache at %s:cached", cache)
	}

	args = append([]string{"--progress", "rawjson", "--buildkit-host", bks[1].Addr, "--cache-from", cache, "--registry", w.prefix + "/b"}, w.flags()...)
	r, second := runFleet(t, &lineWatcher{}, append(args, file)...)
	if r.code != 0 {
		t.Fatalf("importing the cache: exit %d:\n%s", r.code, r.stderr)
	}
	cached := cachedVertices(t, r.stderr)
	t.Logf("cached on the second daemon: %q", cached)
	if !slices.ContainsFunc(cached, func(n string) bool { return strings.HasPrefix(n, "add 2 input(s) as 802:802") }) {
		t.Errorf("the second daemon (empty cache, --cache-from) built the input layer again; cached: %q", cached)
	}
	if second[0].Digest != first[0].Digest {
		t.Errorf("digest %s from the imported cache, %s without", second[0].Digest, first[0].Digest)
	}
}

// TestFleetBuildersSetting: builders come from --buildkit-host, WSO2IMG_BUILDERS (or
// --builders) and, structured, from the config file; mistakes are usage errors named
// before anything is built, and builders that do not answer are each named.
func TestFleetBuildersSetting(t *testing.T) {
	dir := t.TempDir()
	prof := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(prof, []byte("extends: wso2is-5.8.0-alpine\nupdate: {wum: 1565855673150}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, []byte("not used before the check\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  string
		args []string
		code int
		want []string
	}{
		{"unknown key", "[{host: unix:///x.sock, paralel: 2}]", nil, 2, []string{"builders: expected a list of {host, ca, cert, key, parallel}", "paralel"}},
		{"no host", "[{parallel: 2}]", nil, 2, []string{"builders[0]: no host"}},
		{"bad scheme", "[{host: ssh://builder}]", nil, 2, []string{`builder "ssh://builder": expected an address unix:///PATH`}},
		{"tls on unix", "", []string{"--buildkit-host", "unix:///x.sock", "--buildkit-ca", ca}, 2, []string{"--buildkit-ca, --buildkit-cert and --buildkit-key apply to the tcp:// builders"}},
		{"missing ca", fmt.Sprintf("[{host: 'tcp://127.0.0.1:1', ca: %s}]", filepath.Join(dir, "nope.pem")), nil, 2, []string{`builder "tcp://127.0.0.1:1"`, "nope.pem"}},
		{"twice", "[{host: 'unix:///x.sock'}]", []string{"--buildkit-host", "unix:///x.sock"}, 2, []string{`builder "unix:///x.sock" is named twice`}},
		{"cache ref with a tag", "", []string{"--buildkit-host", "unix:///x.sock", "--cache-to", "127.0.0.1:5000/cache:latest"}, 2, []string{"--cache-to: cache repository \"127.0.0.1:5000/cache:latest\""}},
		{"none answers", "[{host: 'tcp://127.0.0.1:1', parallel: 3}]", []string{"--buildkit-host", "unix://" + filepath.Join(dir, "gone.sock")}, 1, []string{
			"no BuildKit builder answers:",
			"\n    unix://" + filepath.Join(dir, "gone.sock") + ": unhealthy: health check: ",
			"\n    tcp://127.0.0.1:1: unhealthy: health check: ",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("WSO2IMG_BUILDERS", tc.env)
			args := append([]string{"build", "--progress", "quiet"}, tc.args...)
			r := runCLI(t, append(args, prof)...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d:\n%s", r.code, tc.code, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
		})
	}

	t.Run("config file", func(t *testing.T) {
		// What viper hands over for builders: in wso2img.yaml.
		v := viper.New()
		v.SetConfigType("yaml")
		if err := v.ReadConfig(strings.NewReader("builders:\n  - host: tcp://buildkitd-0.buildkitd:1234\n    ca: /etc/wso2img/ca.pem\n    cert: /etc/wso2img/cert.pem\n    key: /etc/wso2img/key.pem\n    parallel: 3\n  - {host: 'kube-pod://buildkitd-1?namespace=ci'}\n")); err != nil {
			t.Fatal(err)
		}
		var b buildersValue
		if err := b.SetConfigValue(v.Get("builders")); err != nil {
			t.Fatal(err)
		}
		want := []fleet.Builder{
			{Addr: "tcp://buildkitd-0.buildkitd:1234", CA: "/etc/wso2img/ca.pem", Cert: "/etc/wso2img/cert.pem", Key: "/etc/wso2img/key.pem", Parallel: 3},
			{Addr: "kube-pod://buildkitd-1?namespace=ci"},
		}
		if !slices.Equal(b.list, want) {
			t.Errorf("builders = %+v, want %+v", b.list, want)
		}
		// The environment hands over a string.
		if err := b.SetConfigValue("[{host: 'unix:///x.sock', parallel: 1}]"); err != nil || !slices.Equal(b.list, []fleet.Builder{{Addr: "unix:///x.sock", Parallel: 1}}) {
			t.Errorf("from a string: %+v, %v", b.list, err)
		}
	})
}

// TestFleetScale measures twelve profiles (three bases, four profiles each, 1 MiB added
// each) built by one daemon and by three, each on fresh daemons with empty caches, for
// the README. It is a measurement, not a check: it runs only with
// WSO2IMG_FLEET_SCALE=N (N rounds), and logs wall times.
//
//	WSO2IMG_FLEET_SCALE=2 go test -run TestFleetScale -v ./cmd/wso2img/
func TestFleetScale(t *testing.T) {
	rounds, _ := strconv.Atoi(os.Getenv("WSO2IMG_FLEET_SCALE"))
	if rounds <= 0 {
		t.Skip("a measurement: set WSO2IMG_FLEET_SCALE=N to run N rounds")
	}
	reg := needRegistry(t)
	w := newWorld(t, reg)
	var bases []*fleetBase
	for i := range 3 {
		wum := 1565855673150 + int64(i)*1000
		bases = append(bases, &fleetBase{wum: wum, digest: w.pushUpdate(wum)})
	}
	files := w.fleetProfiles(bases, 4, 1<<20)
	times := map[int][]time.Duration{}
	for round := range rounds {
		for _, n := range []int{1, 3} {
			bks := startDaemons(t, reg, n)
			args := append(append(hostFlags(addrs(bks)), "--progress", "quiet", "--registry", fmt.Sprintf("%s/scale-%d-%d", w.prefix, round, n)), w.flags()...)
			start := time.Now()
			r, res := runFleet(t, &lineWatcher{}, append(args, files...)...)
			took := time.Since(start)
			if r.code != 0 || len(res) != len(files) {
				t.Fatalf("%d daemon(s): exit %d:\n%s", n, r.code, r.stderr)
			}
			per := map[string]int{}
			for _, x := range res {
				per[x.Builder]++
			}
			var counts []int
			for _, c := range per {
				counts = append(counts, c)
			}
			slices.Sort(counts)
			t.Logf("round %d: %d profiles on %d daemon(s): %v (profiles per daemon: %v)", round+1, len(files), n, took.Round(10*time.Millisecond), counts)
			times[n] = append(times[n], took)
			for _, bk := range bks {
				bk.Close()
			}
		}
	}
	for _, n := range []int{1, 3} {
		t.Logf("%d daemon(s): %v", n, times[n])
	}
}
