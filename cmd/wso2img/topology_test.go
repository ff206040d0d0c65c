package main

import (
	"context"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/wso2img/wso2img/internal/standin"
)

// TestVendorRegistryIsNotTheTarget: the topology users have — the base in WSO2's
// registry, the image pushed to theirs. The first build copies the base into the target
// registry once; BuildKit never pulls a base layer, and the push mounts them (both
// registries' logs say so); a second profile on the same base copies nothing; a WSO2
// update copies only the blobs that changed; with --base-cache=false BuildKit pulls the
// base's layers from the vendor, and the result says how much.
func TestVendorRegistryIsNotTheTarget(t *testing.T) {
	reg, bk := needBuildkit(t)
	vendor := needVendor(t)
	w := newWorld(t, reg)
	ctx := context.Background()
	vprefix := vendor.Host + "/t-topology"

	o := standin.Options{Product: "wso2is", Version: "5.8.0", Ports: []int{4000, 9763, 9443},
		Created: time.UnixMilli(1565855673150), FillerBytes: 4 << 20}
	base, err := standin.Image(o, v1.Platform{OS: "linux", Architecture: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	baseDigest, err := standin.Push(ctx, vprefix+"/wso2is:5.8.0.1565855673150-alpine3.10", base, true)
	if err != nil {
		t.Fatal(err)
	}
	// WSO2's next update: the same image with one more layer (the new update's files).
	upd, err := mutate.AppendLayers(base, static.NewLayer(tarOf("home/wso2carbon/wso2is-5.8.0/updates/2", "update 2"), types.OCIUncompressedLayer))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := standin.Push(ctx, vprefix+"/wso2is:5.8.0.1567933846116-alpine3.10", upd, true); err != nil {
		t.Fatal(err)
	}
	bm, _ := base.Manifest()
	baseLayers := map[string]bool{}
	for _, l := range bm.Layers {
		baseLayers[l.Digest.String()] = true
	}

	w.file("conf/deployment.toml", "[server]\nhostname = \"is.acme.example\"\n", 0o644)
	profile := func(name, wum string) string {
		return w.profile(name+".yaml", `extends: wso2is-5.8.0-alpine
update: {wum: `+wum+`}
target: {repository: registry.example.com/acme/`+name+`}
inputs:
  - path: conf/deployment.toml
    dest: repository/conf/deployment.toml
`)
	}
	common := []string{"build", "--json", "--progress", "plain", "--buildkit-host", bk.Addr, "--registry", w.prefix,
		"--insecure-registry", reg.Host, "--insecure-registry", vendor.Host, "--cache-dir", w.cache}
	flags := append(common, "--mirror", "docker.wso2.com="+vprefix)
	type counts struct{ vendorBaseGets, buildkitVendorGets, targetBaseGets, mounts int }
	run := func(extra ...string) (buildResult, counts) {
		t.Helper()
		vBefore, _ := vendor.Requests()
		tBefore, _ := reg.Requests()
		r := runCLI(t, append(flags, extra...)...)
		if r.code != 0 {
			t.Fatalf("build %v: exit %d\n%s", extra, r.code, r.stderr)
		}
		out := decodeBuilds(t, r.stdout)
		vAfter, _ := vendor.Requests()
		tAfter, _ := reg.Requests()
		var c counts
		for _, rq := range vAfter[len(vBefore):] {
			if rq.Kind == "blob" && rq.Method == "GET" && baseLayers[rq.Reference] {
				c.vendorBaseGets++
				if !strings.Contains(rq.UserAgent, "wso2img") {
					c.buildkitVendorGets++
				}
			}
		}
		for _, rq := range tAfter[len(tBefore):] {
			if rq.Kind == "blob" && rq.Method == "GET" && baseLayers[rq.Reference] {
				c.targetBaseGets++
			}
			if rq.Kind == "upload" && strings.Contains(rq.Query, "mount=") {
				c.mounts++
			}
		}
		return out[0], c
	}

	// First build of a new target repository: the base is copied once, by wso2img.
	first, c := run(profile("one", "1565855673150"))
	if first.BaseBytesCopied < 4<<20 || first.BaseBytesPulled != 0 {
		t.Errorf("first build: copied %d, pulled %d", first.BaseBytesCopied, first.BaseBytesPulled)
	}
	if c.buildkitVendorGets != 0 || c.targetBaseGets != 0 || c.mounts == 0 {
		t.Errorf("first build: BuildKit read %d base layers from the vendor, %d from the target; %d mounts", c.buildkitVendorGets, c.targetBaseGets, c.mounts)
	}
	if first.Base.Ref != "docker.wso2.com/wso2is:5.8.0.1565855673150-alpine3.10" || first.Base.Digest != baseDigest {
		t.Errorf("the base is named %s@%s: labels must name the official image", first.Base.Ref, first.Base.Digest)
	}

	// A second profile on the same base: nothing crosses from the vendor.
	second, c := run(profile("two", "1565855673150"))
	if second.BaseBytesCopied != 0 || second.BaseBytesPulled != 0 || c.vendorBaseGets != 0 || c.targetBaseGets != 0 {
		t.Errorf("second profile: copied %d, pulled %d, vendor base GETs %d, target base GETs %d", second.BaseBytesCopied, second.BaseBytesPulled, c.vendorBaseGets, c.targetBaseGets)
	}

	// WSO2's update: only its new blobs (one layer and the config) are copied.
	third, c := run(profile("three", "1567933846116"))
	if third.BaseBytesCopied <= 0 || third.BaseBytesCopied >= 1<<20 || c.vendorBaseGets != 0 {
		t.Errorf("update: copied %d bytes (want only the changed layer), %d GETs of unchanged layers", third.BaseBytesCopied, c.vendorBaseGets)
	}

	// Without the cache BuildKit pulls the base's layers from the vendor to push them,
	// and the result says as much. (Another base: BuildKit would mount the layers it
	// knows from the cache above.)
	o.FillerBytes++
	other, err := standin.Image(o, v1.Platform{OS: "linux", Architecture: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := standin.Push(ctx, vendor.Host+"/t-topology-nocache/wso2is:5.8.0.1565855673150-alpine3.10", other, true); err != nil {
		t.Fatal(err)
	}
	om, _ := other.Manifest()
	for _, l := range om.Layers {
		baseLayers[l.Digest.String()] = true
	}
	flags = append(common, "--mirror", "docker.wso2.com="+vendor.Host+"/t-topology-nocache")
	fourth, c := run("--base-cache=false", profile("four", "1565855673150"))
	if fourth.BaseBytesCopied != 0 || fourth.BaseBytesPulled < 4<<20 || c.buildkitVendorGets == 0 {
		t.Errorf("--base-cache=false: copied %d, pulled %d, BuildKit base GETs from the vendor %d", fourth.BaseBytesCopied, fourth.BaseBytesPulled, c.buildkitVendorGets)
	}
}
