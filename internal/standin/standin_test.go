package standin_test

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"

	"github.com/wso2img/wso2img/internal/standin"
	"github.com/wso2img/wso2img/internal/testenv"
)

var (
	host  = v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	arm64 = v1.Platform{OS: "linux", Architecture: "arm64"}
	amd64 = v1.Platform{OS: "linux", Architecture: "amd64"}
)

// isOptions are those of the Identity Server 5.8.0 image.
func isOptions(t *testing.T) standin.Options {
	t.Helper()
	return standin.Options{
		Product: "wso2is",
		Version: "5.8.0",
		Ports:   []int{4000, 9763, 9443},
		Busybox: needBusybox(t),
		Created: time.Date(2019, 8, 15, 7, 54, 33, 0, time.UTC),
	}
}

// needBusybox returns the static busybox that the stand-in puts in the image.
func needBusybox(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(standin.DefaultBusybox); err != nil {
		if os.Getenv(testenv.E2EVar) == "1" {
			t.Fatalf("%s missing: run make tools (installs busybox-static)", standin.DefaultBusybox)
		}
		t.Skipf("%s missing: run make tools (installs busybox-static)", standin.DefaultBusybox)
	}
	return standin.DefaultBusybox
}

func digest(t *testing.T, d interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestImageIsDeterministic(t *testing.T) {
	base := isOptions(t)
	mustImage := func(o standin.Options) v1.Hash {
		img, err := standin.Image(o, host)
		if err != nil {
			t.Fatal(err)
		}
		checkImage(t, img)
		return digest(t, img)
	}
	first := mustImage(base)
	if again := mustImage(base); again != first {
		t.Fatalf("same options, different digests: %s, %s", first, again)
	}
	for _, tc := range []struct {
		name   string
		change func(*standin.Options)
	}{
		{"uid", func(o *standin.Options) { o.UID = 10001 }},
		{"version", func(o *standin.Options) { o.Version = "5.9.0" }},
		{"created", func(o *standin.Options) { o.Created = o.Created.Add(time.Second) }},
		{"label", func(o *standin.Options) { o.Labels = map[string]string{"update_level": "15"} }},
		{"filler", func(o *standin.Options) { o.FillerBytes = 1024 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.change(&o)
			if d := mustImage(o); d == first {
				t.Errorf("changing %s kept the digest %s", tc.name, d)
			}
		})
	}

	idx1, err := standin.Index(base, amd64, arm64)
	if err != nil {
		t.Fatal(err)
	}
	idx2, err := standin.Index(base, amd64, arm64)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := digest(t, idx1), digest(t, idx2); a != b {
		t.Errorf("same options, different index digests: %s, %s", a, b)
	}
}

// checkImage checks what a registry and a runtime check: the config blob and every
// layer hash to what the manifest says, and every layer's tar to its diff ID.
func checkImage(t *testing.T, img v1.Image) {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if h, n, _ := v1.SHA256(bytes.NewReader(raw)); h != m.Config.Digest || n != m.Config.Size {
		t.Errorf("config is %s (%d bytes), manifest says %s (%d)", h, n, m.Config.Digest, m.Config.Size)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != len(m.Layers) || len(layers) != len(cf.RootFS.DiffIDs) {
		t.Fatalf("%d layers, %d in the manifest, %d diff ids", len(layers), len(m.Layers), len(cf.RootFS.DiffIDs))
	}
	for i, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		h, n, err := v1.SHA256(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if h != m.Layers[i].Digest || n != m.Layers[i].Size || m.Layers[i].MediaType != types.OCILayer {
			t.Errorf("layer %d is %s (%d bytes), manifest says %s (%d bytes, %s)", i, h, n, m.Layers[i].Digest, m.Layers[i].Size, m.Layers[i].MediaType)
		}
		rc, err = l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		h, _, err = v1.SHA256(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if h != cf.RootFS.DiffIDs[i] {
			t.Errorf("layer %d tar is %s, config says %s", i, h, cf.RootFS.DiffIDs[i])
		}
	}
}

// entry is one file of a layer, as read back from its tar.
type entry struct {
	hdr  *tar.Header
	data []byte
}

func readLayer(t *testing.T, l v1.Layer) map[string]entry {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]entry{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files["/"+strings.TrimSuffix(h.Name, "/")] = entry{h, data}
	}
	return files
}

func TestImageFiles(t *testing.T) {
	o := isOptions(t)
	img, err := standin.Image(o, host)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 2 {
		t.Fatalf("%d layers, want 2 (rootfs, product)", len(layers))
	}
	rootfs, product := readLayer(t, layers[0]), readLayer(t, layers[1])
	const (
		home     = "/home/wso2carbon"
		prodHome = home + "/wso2is-5.8.0"
	)
	for _, tc := range []struct {
		layer    map[string]entry
		path     string
		typ      byte
		mode     int64
		uid, gid int
		contains string // in the content (or link target)
	}{
		{rootfs, "/bin/busybox", tar.TypeReg, 0o755, 0, 0, "\x7fELF"},
		{rootfs, "/bin/sh", tar.TypeSymlink, 0o777, 0, 0, "busybox"},
		{rootfs, "/bin/id", tar.TypeSymlink, 0o777, 0, 0, "busybox"},
		{rootfs, "/etc/passwd", tar.TypeReg, 0o644, 0, 0, "\nwso2carbon:x:802:802::/home/wso2carbon:/bin/sh\n"},
		{rootfs, "/etc/group", tar.TypeReg, 0o644, 0, 0, "\nwso2:x:802:wso2carbon\n"},
		{rootfs, "/tmp", tar.TypeDir, 0o1777, 0, 0, ""},
		{rootfs, "/root", tar.TypeDir, 0o700, 0, 0, ""},
		{product, "/home", tar.TypeDir, 0o755, 0, 0, ""},
		{product, home, tar.TypeDir, 0o755, 802, 802, ""},
		{product, home + "/docker-entrypoint.sh", tar.TypeReg, 0o755, 802, 802, "wso2server.sh"},
		{product, prodHome, tar.TypeDir, 0o755, 802, 802, ""},
		{product, prodHome + "/bin/wso2server.sh", tar.TypeReg, 0o755, 802, 802, "wso2is 5.8.0"},
		{product, prodHome + "/repository/components/lib", tar.TypeDir, 0o755, 802, 802, ""},
		{product, prodHome + "/repository/components/dropins", tar.TypeDir, 0o755, 802, 802, ""},
		{product, prodHome + "/repository/conf/deployment.toml", tar.TypeReg, 0o644, 802, 802, "[server]"},
		{product, prodHome + "/repository/resources/security", tar.TypeDir, 0o755, 802, 802, ""},
	} {
		t.Run(strings.TrimPrefix(tc.path, "/"), func(t *testing.T) {
			e, ok := tc.layer[tc.path]
			if !ok {
				t.Fatalf("%s missing", tc.path)
			}
			h := e.hdr
			if h.Typeflag != tc.typ || h.Mode != tc.mode || h.Uid != tc.uid || h.Gid != tc.gid {
				t.Errorf("%s: type %c mode %o uid:gid %d:%d; want type %c mode %o uid:gid %d:%d",
					tc.path, h.Typeflag, h.Mode, h.Uid, h.Gid, tc.typ, tc.mode, tc.uid, tc.gid)
			}
			content := string(e.data)
			if tc.typ == tar.TypeSymlink {
				content = h.Linkname
			}
			if !strings.Contains(content, tc.contains) {
				t.Errorf("%s: content %.80q lacks %q", tc.path, content, tc.contains)
			}
		})
	}
	busybox, err := os.ReadFile(o.Busybox)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rootfs["/bin/busybox"].data, busybox) {
		t.Error("/bin/busybox differs from the host's static busybox")
	}
	var prev string
	for _, l := range layers {
		rc, _ := l.Uncompressed()
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			if !h.ModTime.Equal(o.Created) {
				t.Errorf("%s: mtime %v, want %v", h.Name, h.ModTime, o.Created)
			}
			if h.Mode&0o6000 != 0 {
				t.Errorf("%s: setuid/setgid mode %o", h.Name, h.Mode)
			}
			if h.Name < prev && !strings.HasPrefix(prev, h.Name) {
				t.Errorf("entries not sorted: %s after %s", h.Name, prev)
			}
			prev = h.Name
		}
		rc.Close()
		prev = ""
	}
}

func TestImageConfig(t *testing.T) {
	o := isOptions(t)
	o.Labels = map[string]string{"update_level": "15", "org.opencontainers.image.title": "WSO2 Identity Server"}
	img, err := standin.Image(o, host)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != "wso2carbon" || c.WorkingDir != "/home/wso2carbon" {
		t.Errorf("user %q workdir %q, want wso2carbon /home/wso2carbon", c.User, c.WorkingDir)
	}
	if !slices.Equal(c.Entrypoint, []string{"/home/wso2carbon/docker-entrypoint.sh"}) {
		t.Errorf("entrypoint = %q", c.Entrypoint)
	}
	for _, want := range []string{"WSO2_SERVER_HOME=/home/wso2carbon/wso2is-5.8.0", "JAVA_HOME=/opt/java/openjdk"} {
		if !slices.Contains(c.Env, want) {
			t.Errorf("env %q lacks %q", c.Env, want)
		}
	}
	if !slices.ContainsFunc(c.Env, func(e string) bool { return strings.HasPrefix(e, "PATH=") }) {
		t.Errorf("env %q lacks PATH", c.Env)
	}
	var ports []string
	for p := range c.ExposedPorts {
		ports = append(ports, p)
	}
	slices.Sort(ports)
	if want := []string{"4000/tcp", "9443/tcp", "9763/tcp"}; !slices.Equal(ports, want) {
		t.Errorf("ports = %q, want %q", ports, want)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.vendor":  "WSO2",
		"org.opencontainers.image.title":   "WSO2 Identity Server",
		"org.opencontainers.image.version": "5.8.0",
		"org.opencontainers.image.created": "2019-08-15T07:54:33Z",
		"update_level":                     "15",
	} {
		if got := c.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}
	if !cf.Created.Time.Equal(o.Created) || cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("created %v os %s arch %s", cf.Created, cf.OS, cf.Architecture)
	}
	layers, _ := img.Layers()
	if len(cf.History) != len(layers) || len(cf.RootFS.DiffIDs) != len(layers) {
		t.Errorf("%d history entries, %d diff ids for %d layers", len(cf.History), len(cf.RootFS.DiffIDs), len(layers))
	}
	mt, _ := img.MediaType()
	if mt != types.OCIManifestSchema1 {
		t.Errorf("media type %s, want OCI", mt)
	}
}

func TestIndexPlatforms(t *testing.T) {
	o := isOptions(t)
	idx, err := standin.Index(o, amd64, arm64)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range m.Manifests {
		got = append(got, d.Platform.String())
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		checkImage(t, img)
		cf, _ := img.ConfigFile()
		if cf.Architecture != d.Platform.Architecture {
			t.Errorf("%s: config architecture %s", d.Platform, cf.Architecture)
		}
		layers, _ := img.Layers()
		bb := readLayer(t, layers[0])["/bin/busybox"].data
		native := d.Platform.Architecture == runtime.GOARCH
		if isELF := bytes.HasPrefix(bb, []byte("\x7fELF")); isELF != native {
			t.Errorf("%s: /bin/busybox is ELF: %v, want %v (placeholder off the host's platform)", d.Platform, isELF, native)
		}
	}
	if want := []string{"linux/amd64", "linux/arm64"}; !slices.Equal(got, want) {
		t.Errorf("platforms = %q, want %q", got, want)
	}
	if _, err := standin.Index(o); err == nil {
		t.Error("Index with no platform succeeded")
	}
}

func TestFillerLayer(t *testing.T) {
	o := isOptions(t)
	const size = 3<<20 + 17
	o.FillerBytes = size
	img, err := standin.Image(o, host)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 3 {
		t.Fatalf("%d layers, want 3", len(layers))
	}
	compressed, err := layers[2].Size()
	if err != nil {
		t.Fatal(err)
	}
	// Incompressible: the blob is the data plus tar and gzip framing (well under 1%).
	if compressed < size || compressed > size+size/100 {
		t.Errorf("filler blob is %d bytes for %d bytes of data", compressed, size)
	}
	files := readLayer(t, layers[2])
	f, ok := files[standin.FillerPath]
	if !ok || int64(len(f.data)) != size {
		t.Fatalf("%s: %d bytes (present %v), want %d", standin.FillerPath, len(f.data), ok, size)
	}
	// The digest the manifest records is that of the bytes served.
	rc, err := layers[2].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	h, n, err := v1.SHA256(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if d := digest(t, layers[2]); h != d || n != compressed {
		t.Errorf("served %s (%d bytes), manifest says %s (%d bytes)", h, n, d, compressed)
	}
}

func TestOptionsRejected(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    standin.Options
	}{
		{"no product", standin.Options{Version: "5.8.0"}},
		{"relative home", standin.Options{Product: "wso2is", Version: "5.8.0", Home: "wso2is-5.8.0"}},
		{"home at the root", standin.Options{Product: "wso2is", Version: "5.8.0", Home: "/wso2is"}},
		{"bad port", standin.Options{Product: "wso2is", Version: "5.8.0", Ports: []int{70000}}},
		{"bad user", standin.Options{Product: "wso2is", Version: "5.8.0", User: "a:b"}},
		{"dynamic busybox", standin.Options{Product: "wso2is", Version: "5.8.0", Busybox: "/bin/ls"}},
		{"missing busybox", standin.Options{Product: "wso2is", Version: "5.8.0", Busybox: "/nonexistent"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := standin.Image(tc.o, host); err == nil {
				t.Error("no error")
			}
		})
	}
}

func TestPush(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	reg := strings.TrimPrefix(srv.URL, "http://")
	o := isOptions(t)
	ctx := t.Context()

	img, err := standin.Image(o, host)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := standin.Index(o, amd64, arm64)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ref  string
		push func(string) (string, error)
		want v1.Hash
	}{
		{reg + "/wso2is:5.8.0.1565855673150-alpine3.10", func(r string) (string, error) { return standin.Push(ctx, r, img, true) }, digest(t, img)},
		{reg + "/wso2is:5.8.0-alpine3.10", func(r string) (string, error) { return standin.Push(ctx, r, img, true) }, digest(t, img)},
		{reg + "/wso2/wso2is:5.8.0", func(r string) (string, error) { return standin.PushIndex(ctx, r, idx, true) }, digest(t, idx)},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			got, err := tc.push(tc.ref)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want.String() {
				t.Errorf("Push = %s, want %s", got, tc.want)
			}
			ref, _ := name.ParseReference(tc.ref, name.Insecure)
			desc, err := remote.Head(ref, remote.WithContext(ctx))
			if err != nil {
				t.Fatal(err)
			}
			if desc.Digest != tc.want {
				t.Errorf("registry has %s, want %s", desc.Digest, tc.want)
			}
		})
	}
}

// TestRunsUnderBuildkit proves the stand-in is a working base: pushed to a real registry,
// pulled by buildkitd, a command runs in it as the product user, who owns the product home.
func TestRunsUnderBuildkit(t *testing.T) {
	testenv.Need(t, "registry", "buildkitd")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	reg, err := testenv.StartRegistry(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	bk, err := testenv.StartBuildkitd(ctx, t.TempDir(), []string{reg.Host})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("buildkitd log:\n%s", bk.LogTail(40))
		}
		bk.Close()
	}()

	o := isOptions(t)
	img, err := standin.Image(o, host)
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Host + "/wso2is:5.8.0-alpine3.10"
	if _, err := standin.Push(ctx, ref, img, true); err != nil {
		t.Fatal(err)
	}

	home := "/home/wso2carbon/wso2is-5.8.0"
	script := `id -u > /tmp/out; id -g >> /tmp/out; whoami >> /tmp/out; ` +
		`touch ` + home + `/repository/components/lib/x.jar && echo writable >> /tmp/out; ` +
		`stat -c %u:%g ` + home + ` >> /tmp/out`
	run := llb.Image(ref).Run(llb.Args([]string{"/bin/sh", "-c", script}), llb.User("wso2carbon"), llb.Dir("/home/wso2carbon"))
	out := llb.Scratch().File(llb.Copy(run.Root(), "/tmp/out", "/out"))
	def, err := out.Marshal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := bk.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dir := t.TempDir()
	if _, err := c.Solve(ctx, def, client.SolveOpt{Exports: []client.ExportEntry{{Type: client.ExporterLocal, OutputDir: dir}}}, nil); err != nil {
		t.Fatalf("solve: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "802\n802\nwso2carbon\nwritable\n802:802\n"; string(got) != want {
		t.Errorf("in the image:\n%s\nwant:\n%s", got, want)
	}
}
