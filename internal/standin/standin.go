// Package standin builds stand-ins for the official WSO2 base images, which cannot be
// pulled from development and CI machines, so that tests, the demo and benchmarks run
// every code path against an image shaped like the real one: a busybox root file system,
// the wso2carbon user at its uid/gid, the product home with the directories extensions
// write to, the official env, ports, entrypoint and vendor labels.
//
// Images are deterministic: the same Options (and the same busybox binary) give the same
// digest, run after run. Nothing here is part of the product: only tests and hack/
// programs import it.
package standin

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Options describe a stand-in image. Product and Version are required; the rest have
// the defaults of the WSO2 Identity Server image.
type Options struct {
	// Product is the product's short name, as in its repository and pack name: "wso2is".
	Product string
	// Version is the product version: "5.8.0".
	Version string
	// User and Group own the user home and the product home; default "wso2carbon", "wso2".
	User, Group string
	// UID and GID of User and Group; 0 means the default, 802 (a stand-in is never root).
	UID, GID int
	// Home is the product home, WSO2_SERVER_HOME; the user home is its parent. Default
	// /home/<User>/<Product>-<Version>.
	Home string
	// Ports are the exposed TCP ports, e.g. 4000, 9763, 9443.
	Ports []int
	// Busybox is the static busybox binary put at /bin/busybox on the host's platform;
	// default /bin/busybox (Debian's busybox-static, installed by `make tools`).
	Busybox string
	// FillerBytes, when positive, adds a third layer holding this many bytes of
	// incompressible (seeded random) data, for benchmarks on large bases.
	FillerBytes int64
	// Labels are extra config labels; they override the vendor labels of the same name
	// (e.g. "update_level" for a U2 image).
	Labels map[string]string
	// Created is the image's creation time, also every file's mtime; default the Unix epoch.
	Created time.Time
	// Extra are more root-owned files (path relative to / → content), in a layer of their
	// own after the others: an OS package database with a known-vulnerable package, say,
	// for tests of the vulnerability gate.
	Extra map[string][]byte
}

// Defaults of Options.
const (
	DefaultUser    = "wso2carbon"
	DefaultGroup   = "wso2"
	DefaultID      = 802
	DefaultBusybox = "/bin/busybox"
	// JavaHome is JAVA_HOME in the official images (Eclipse Temurin bases).
	JavaHome = "/opt/java/openjdk"
	// FillerPath is where the filler layer puts its data.
	FillerPath = "/opt/wso2img-filler/filler.bin"
)

// withDefaults fills what o leaves empty and rejects what cannot make an image.
func (o Options) withDefaults() (Options, error) {
	if o.Product == "" || o.Version == "" {
		return o, errors.New("standin: Product and Version are required")
	}
	if o.User == "" {
		o.User = DefaultUser
	}
	if o.Group == "" {
		o.Group = DefaultGroup
	}
	if o.UID == 0 {
		o.UID = DefaultID
	}
	if o.GID == 0 {
		o.GID = DefaultID
	}
	if o.Home == "" {
		o.Home = path.Join("/home", o.User, o.Product+"-"+o.Version)
	}
	if o.Busybox == "" {
		o.Busybox = DefaultBusybox
	}
	if o.Created.IsZero() {
		o.Created = time.Unix(0, 0)
	}
	o.Created = o.Created.UTC().Truncate(time.Second)
	for _, s := range []string{o.User, o.Group} {
		if strings.ContainsAny(s, ":\n/ ") {
			return o, fmt.Errorf("standin: user or group %q is not a valid name", s)
		}
	}
	if o.UID < 0 || o.GID < 0 {
		return o, fmt.Errorf("standin: negative uid %d or gid %d", o.UID, o.GID)
	}
	if !path.IsAbs(o.Home) || path.Clean(o.Home) != o.Home || path.Dir(o.Home) == "/" {
		return o, fmt.Errorf("standin: Home %q must be a clean absolute path below a user home", o.Home)
	}
	for _, p := range o.Ports {
		if p < 1 || p > 65535 {
			return o, fmt.Errorf("standin: port %d out of range", p)
		}
	}
	if o.FillerBytes < 0 {
		return o, fmt.Errorf("standin: negative FillerBytes %d", o.FillerBytes)
	}
	return o, nil
}

// userHome is the product user's home: the parent of the product home.
func (o Options) userHome() string { return path.Dir(o.Home) }

// Image builds the stand-in for one platform: layer 1 a busybox root file system, layer 2
// the product home, layer 3 the filler when FillerBytes is set; one history entry a layer.
func Image(o Options, p v1.Platform) (v1.Image, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if p.OS == "" || p.Architecture == "" {
		return nil, fmt.Errorf("standin: platform %q needs an OS and an architecture", p.String())
	}
	rootfs, err := rootfsLayer(o, p)
	if err != nil {
		return nil, err
	}
	product, err := productLayer(o)
	if err != nil {
		return nil, err
	}
	created := v1.Time{Time: o.Created}
	adds := []mutate.Addendum{
		{Layer: rootfs, History: v1.History{Created: created, CreatedBy: "ADD busybox rootfs / # stand-in for the OS layers", Comment: "wso2img stand-in"}},
		{Layer: product, History: v1.History{Created: created, CreatedBy: fmt.Sprintf("ADD --chown=%d:%d %s-%s %s # stand-in for the product", o.UID, o.GID, o.Product, o.Version, o.Home), Comment: "wso2img stand-in"}},
	}
	if o.FillerBytes > 0 {
		filler, err := fillerLayer(o)
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.Addendum{Layer: filler, History: v1.History{Created: created, CreatedBy: fmt.Sprintf("ADD filler %s # %d bytes of incompressible data", FillerPath, o.FillerBytes), Comment: "wso2img stand-in"}})
	}
	if len(o.Extra) > 0 {
		t := newTree(o.Created)
		paths := make([]string, 0, len(o.Extra))
		for p := range o.Extra {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		for _, p := range paths {
			t.file(p, 0o644, 0, 0, o.Extra[p])
		}
		extra, err := t.layer()
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.Addendum{Layer: extra, History: v1.History{Created: created, CreatedBy: fmt.Sprintf("ADD %d extra file(s)", len(paths)), Comment: "wso2img stand-in"}})
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	if img, err = mutate.Append(img, adds...); err != nil {
		return nil, fmt.Errorf("standin: adding layers: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("standin: reading the config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Created = created
	cf.OS, cf.Architecture, cf.Variant, cf.OSVersion = p.OS, p.Architecture, p.Variant, p.OSVersion
	cf.Config = config(o)
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, fmt.Errorf("standin: setting the config: %w", err)
	}
	return img, nil
}

// config is the image config of the official images: the product user, the user home as
// working directory, the entrypoint script, the env, ports and vendor labels.
func config(o Options) v1.Config {
	c := v1.Config{
		User:       o.User,
		WorkingDir: o.userHome(),
		Entrypoint: []string{path.Join(o.userHome(), "docker-entrypoint.sh")},
		Env: []string{
			"PATH=" + JavaHome + "/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"JAVA_HOME=" + JavaHome,
			"WSO2_SERVER_HOME=" + o.Home,
		},
		Labels: map[string]string{
			"maintainer":                       "WSO2 Docker Maintainers <dev@wso2.org>",
			"org.opencontainers.image.vendor":  "WSO2",
			"org.opencontainers.image.title":   o.Product,
			"org.opencontainers.image.version": o.Version,
			"org.opencontainers.image.created": o.Created.Format(time.RFC3339),
		},
	}
	if len(o.Ports) > 0 {
		c.ExposedPorts = map[string]struct{}{}
		for _, p := range o.Ports {
			c.ExposedPorts[strconv.Itoa(p)+"/tcp"] = struct{}{}
		}
	}
	for k, v := range o.Labels {
		c.Labels[k] = v
	}
	return c
}

// Index builds a multi-platform index of stand-ins, one image a platform, in the order
// given.
func Index(o Options, platforms ...v1.Platform) (v1.ImageIndex, error) {
	if len(platforms) == 0 {
		return nil, errors.New("standin: an index needs at least one platform")
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var adds []mutate.IndexAddendum
	for _, p := range platforms {
		img, err := Image(o, p)
		if err != nil {
			return nil, fmt.Errorf("standin: %s: %w", p.String(), err)
		}
		p := p
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	return mutate.AppendManifests(idx, adds...), nil
}

// applets are the busybox applets linked in /bin: what an entrypoint script and a test
// that runs a command in the image use.
var applets = []string{
	"ash", "cat", "chmod", "chown", "cp", "echo", "env", "false", "find", "grep", "id",
	"ln", "ls", "mkdir", "mv", "ps", "rm", "sed", "sh", "sleep", "stat", "test", "true",
	"whoami",
}

// rootfsLayer is the OS layer: busybox and its applets, /etc/passwd and /etc/group with
// the product user and group, /tmp, and an empty JAVA_HOME.
func rootfsLayer(o Options, p v1.Platform) (v1.Layer, error) {
	bb, err := busybox(o.Busybox, p)
	if err != nil {
		return nil, err
	}
	t := newTree(o.Created)
	t.dir("/bin", 0o755, 0, 0)
	t.file("/bin/busybox", 0o755, 0, 0, bb)
	for _, a := range applets {
		t.symlink("/bin/"+a, "busybox")
	}
	t.symlink("/usr/bin/env", "/bin/busybox")
	t.dir("/usr/local/bin", 0o755, 0, 0)
	t.dir("/root", 0o700, 0, 0)
	t.dir("/tmp", 0o1777, 0, 0)
	t.file("/etc/passwd", 0o644, 0, 0, fmt.Appendf(nil,
		"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n%s:x:%d:%d::%s:/bin/sh\n",
		o.User, o.UID, o.GID, o.userHome()))
	t.file("/etc/group", 0o644, 0, 0, fmt.Appendf(nil,
		"root:x:0:\nnogroup:x:65534:\n%s:x:%d:%s\n", o.Group, o.GID, o.User))
	t.file(JavaHome+"/release", 0o644, 0, 0, []byte("# wso2img stand-in: there is no JDK in this image\nIMPLEMENTOR=\"wso2img stand-in\"\n"))
	return t.layer()
}

// busybox returns the busybox binary for platform p: the static binary at file when p
// is the host's platform; otherwise a text placeholder, since no busybox for another
// architecture is at hand (the content of a non-native layer is never executed here).
func busybox(file string, p v1.Platform) ([]byte, error) {
	if !native(p) {
		return fmt.Appendf(nil, "#!/bin/false\n# wso2img stand-in: no busybox for %s on the machine that built this image.\n", p.String()), nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("standin: reading busybox: %w (install Debian's busybox-static: make tools)", err)
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("standin: %s is not an ELF binary: %w", file, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return nil, fmt.Errorf("standin: %s is dynamically linked and cannot run in a busybox-only image; install Debian's busybox-static (make tools)", file)
		}
	}
	return data, nil
}

// native reports whether p is the platform this process runs on.
func native(p v1.Platform) bool {
	return runtime.GOOS == "linux" && p.OS == "linux" && p.Architecture == runtime.GOARCH
}

// productLayer is the product: the user home and the product home owned by the product
// user, with the directories that extensions add to and the scripts that start it.
func productLayer(o Options) (v1.Layer, error) {
	t := newTree(o.Created)
	uid, gid := o.UID, o.GID
	t.dir("/home", 0o755, 0, 0)
	t.dir(o.userHome(), 0o755, uid, gid)
	for _, d := range []string{
		"", "bin", "lib", "repository", "repository/components", "repository/components/lib",
		"repository/components/dropins", "repository/conf", "repository/deployment",
		"repository/deployment/server", "repository/deployment/server/carbonapps",
		"repository/deployment/server/webapps", "repository/logs", "repository/resources",
		"repository/resources/security",
	} {
		t.dir(path.Join(o.Home, d), 0o755, uid, gid)
	}
	t.file(path.Join(o.Home, "bin/wso2server.sh"), 0o755, uid, gid, fmt.Appendf(nil, serverScript, o.Product, o.Version))
	t.file(path.Join(o.Home, "repository/conf/deployment.toml"), 0o644, uid, gid, fmt.Appendf(nil, deploymentTOML, o.Product, o.Version))
	t.file(path.Join(o.userHome(), "docker-entrypoint.sh"), 0o755, uid, gid, fmt.Appendf(nil, entrypointScript, o.userHome()))
	return t.layer()
}

// serverScript stands in for bin/wso2server.sh: it prints a line and sleeps until stopped.
const serverScript = `#!/bin/sh
# wso2img stand-in for the WSO2 server script: there is no real product in this image.
echo "wso2img stand-in: %s %s started (not a real WSO2 server)"
trap 'echo "wso2img stand-in: stopping"; exit 0' TERM INT
while :; do sleep 1 & wait $!; done
`

// entrypointScript stands in for WSO2's docker-entrypoint.sh, which copies the config and
// artifact volumes over the product home at every start, then runs the server script.
const entrypointScript = `#!/bin/sh
# wso2img stand-in for WSO2's docker-entrypoint.sh.
set -e
user_home=%s
for volume in "${user_home}/wso2-config-volume" "${user_home}/wso2-artifact-volume"; do
	if [ -d "${volume}" ] && [ -n "$(ls -A "${volume}")" ]; then
		cp -RL "${volume}"/* "${WSO2_SERVER_HOME}/"
	fi
done
exec sh "${WSO2_SERVER_HOME}/bin/wso2server.sh" "$@"
`

// deploymentTOML stands in for repository/conf/deployment.toml.
const deploymentTOML = `# wso2img stand-in deployment.toml of %s %s.
[server]
hostname = "localhost"
node_ip = "127.0.0.1"
`

// tree is the content of one layer, written in path order with fixed mtimes so that
// the same content always gives the same bytes.
type tree struct {
	mtime   time.Time
	entries map[string]*tar.Header
	data    map[string][]byte
}

func newTree(mtime time.Time) *tree {
	return &tree{mtime: mtime, entries: map[string]*tar.Header{}, data: map[string][]byte{}}
}

// add records hdr at the absolute path p, creating missing parents as root-owned 0755
// directories; a later add of the same path replaces the earlier one.
func (t *tree) add(p string, hdr *tar.Header, data []byte) {
	p = strings.TrimPrefix(path.Clean(p), "/")
	for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
		if _, ok := t.entries[dir]; !ok {
			t.entries[dir] = t.header(tar.TypeDir, 0o755, 0, 0)
		}
	}
	t.entries[p] = hdr
	if data != nil {
		t.data[p] = data
	}
}

func (t *tree) header(typ byte, mode int64, uid, gid int) *tar.Header {
	return &tar.Header{Typeflag: typ, Mode: mode, Uid: uid, Gid: gid, ModTime: t.mtime, Format: tar.FormatPAX}
}

func (t *tree) dir(p string, mode int64, uid, gid int) {
	t.add(p, t.header(tar.TypeDir, mode, uid, gid), nil)
}

func (t *tree) file(p string, mode int64, uid, gid int, data []byte) {
	h := t.header(tar.TypeReg, mode, uid, gid)
	h.Size = int64(len(data))
	t.add(p, h, data)
}

func (t *tree) symlink(p, target string) {
	h := t.header(tar.TypeSymlink, 0o777, 0, 0)
	h.Linkname = target
	t.add(p, h, nil)
}

// tar writes the tree as a tar stream, sorted by path (so parents come first).
func (t *tree) tar() ([]byte, error) {
	names := make([]string, 0, len(t.entries))
	for n := range t.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		h := *t.entries[n]
		h.Name = n
		if h.Typeflag == tar.TypeDir {
			h.Name += "/"
		}
		if err := tw.WriteHeader(&h); err != nil {
			return nil, fmt.Errorf("standin: writing %s: %w", n, err)
		}
		if d := t.data[n]; len(d) > 0 {
			if _, err := tw.Write(d); err != nil {
				return nil, fmt.Errorf("standin: writing %s: %w", n, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// layer turns the tree into a gzip-compressed OCI layer.
func (t *tree) layer() (v1.Layer, error) {
	data, err := t.tar()
	if err != nil {
		return nil, err
	}
	return newLayer(func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}, defaultLevel, true)
}
