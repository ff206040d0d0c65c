// Package signtest helps the tests of sign, verify and the CLI: cosign key pairs made
// with cosign's library in a test's temporary folder (keys are never committed), small
// WSO2-shaped images whose config and files a test chooses, and pushing them.
//
// Nothing here is part of the product: only tests import it.
package signtest

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/sigstore/cosign/v2/pkg/cosign"

	"github.com/wso2img/wso2img/internal/testenv"
)

// Password encrypts the private keys Keys writes.
const Password = "wso2img-test-password"

// Keys writes a new cosign key pair, cosign.key (encrypted with Password) and
// cosign.pub, into a temporary folder of t and returns their paths.
func Keys(t testing.TB) (key, pub string) {
	t.Helper()
	kb, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return []byte(Password), nil })
	if err != nil {
		t.Fatalf("generating a key pair: %v", err)
	}
	dir := t.TempDir()
	key, pub = filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")
	if err := os.WriteFile(key, kb.PrivateBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, kb.PublicBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	return key, pub
}

// PasswordFunc returns Password, for sign.Options.Password.
func PasswordFunc() ([]byte, error) { return []byte(Password), nil }

// File is one entry of a test image's layer.
type File struct {
	Path string
	// Mode holds the permission bits, and setuid/setgid (0o4000, 0o2000).
	Mode int64
	// Dir makes a directory; else a regular file holding Data.
	Dir  bool
	Data string
	// UID and GID own the entry.
	UID, GID int
	// Symlink makes a symbolic link to this target; HardLink a hard link to this
	// earlier path of the same layer.
	Symlink, HardLink string
	// Whiteout deletes Path from the layers below (an OCI whiteout entry).
	Whiteout bool
}

// BaseDigest is the base digest the labels of Config name.
const BaseDigest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

// Config is the config of a well-behaved wso2img image of WSO2 Identity Server: the
// wso2carbon user (802:802), its ports, the labels wso2img writes.
func Config() v1.Config {
	return v1.Config{
		User:         "802:802",
		ExposedPorts: map[string]struct{}{"9443/tcp": {}, "9763/tcp": {}, "4000/tcp": {}},
		Env: []string{
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"WSO2_SERVER_HOME=/home/wso2carbon/wso2is-5.8.0",
		},
		Entrypoint: []string{"/home/wso2carbon/docker-entrypoint.sh"},
		Labels: map[string]string{
			"org.opencontainers.image.base.name":   "docker.wso2.com/wso2is:5.8.0",
			"org.opencontainers.image.base.digest": BaseDigest,
			"io.wso2img.product":                   "wso2is",
		},
	}
}

// Files are the layers' entries of a well-behaved image: /etc/passwd naming
// wso2carbon, and a product file owned by it.
func Files() []File {
	return []File{
		{Path: "etc", Dir: true, Mode: 0o755},
		{Path: "etc/passwd", Mode: 0o644, Data: "root:x:0:0:root:/root:/bin/sh\nwso2carbon:x:802:802::/home/wso2carbon:/bin/sh\n"},
		{Path: "home/wso2carbon/wso2is-5.8.0/repository/components/lib", Dir: true, Mode: 0o755, UID: 802, GID: 802},
		{Path: "home/wso2carbon/wso2is-5.8.0/repository/components/lib/mysql.jar", Mode: 0o644, Data: "jar", UID: 802, GID: 802},
	}
}

// Image is a linux/amd64 image of one layer per files argument, with config cfg and
// one history entry per layer (createdBy, when given, names what made each layer).
func Image(t testing.TB, cfg v1.Config, layers ...[]File) v1.Image {
	t.Helper()
	img := empty.Image
	var history []v1.History
	for _, files := range layers {
		l, err := Layer(files)
		if err != nil {
			t.Fatal(err)
		}
		img, err = mutate.AppendLayers(img, l)
		if err != nil {
			t.Fatal(err)
		}
		history = append(history, v1.History{Created: v1.Time{Time: time.Unix(0, 0)}, CreatedBy: "test layer"})
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config = cfg
	cf.History = history
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// WithHistory replaces the created_by of the image's history entries.
func WithHistory(t testing.TB, img v1.Image, createdBy ...string) v1.Image {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	for i, c := range createdBy {
		if i < len(cf.History) {
			cf.History[i].CreatedBy = c
		}
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// Layer is an uncompressed-tar layer holding files.
func Layer(files []File) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.Path, Mode: f.Mode, Uid: f.UID, Gid: f.GID, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		switch {
		case f.Whiteout:
			h.Typeflag, h.Name = tar.TypeReg, path.Join(path.Dir(f.Path), ".wh."+path.Base(f.Path))
		case f.Symlink != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.Symlink
		case f.HardLink != "":
			h.Typeflag, h.Linkname = tar.TypeLink, f.HardLink
		case f.Dir:
			h.Typeflag = tar.TypeDir
			h.Name += "/"
		default:
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(f.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := io.WriteString(tw, f.Data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
}

// Push pushes img (a v1.Image or v1.ImageIndex) to ref over plain HTTP and returns it
// by digest.
func Push(t testing.TB, ref string, img remote.Taggable) name.Digest {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	switch x := img.(type) {
	case v1.ImageIndex:
		err = remote.WriteIndex(r, x, remote.WithContext(ctx))
	case v1.Image:
		err = remote.Write(r, x, remote.WithContext(ctx))
	default:
		t.Fatalf("cannot push a %T", img)
	}
	if err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	d, err := img.(interface{ Digest() (v1.Hash, error) }).Digest()
	if err != nil {
		t.Fatal(err)
	}
	return r.Context().Digest(d.String())
}

// Offline are the flags every stock cosign run against the loopback registry needs:
// no transparency log, plain HTTP.
var Offline = []string{"--insecure-ignore-tlog=true", "--allow-insecure-registry=true", "--allow-http-registry=true"}

// Cosign runs a stock cosign binary built by `make tools` (bin, e.g. "cosign-v2") with a
// private HOME (cosign caches TUF metadata there) and returns its output.
func Cosign(t testing.TB, bin string, args ...string) (string, error) {
	t.Helper()
	path, err := testenv.Bin(bin)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "TUF_ROOT="+filepath.Join(home, "tuf"), "COSIGN_YES=true")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	return out.String(), err
}
