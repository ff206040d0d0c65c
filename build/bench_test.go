package build_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/moby/buildkit/client/llb"

	"github.com/wso2img/wso2img/build"
	"github.com/wso2img/wso2img/build/inputs"
)

// benchPlan is a plan with n inputs shaped like a large profile: two thirds downloads
// (one folder, the download cache), one third local files spread over ten folders of
// the profile, and one directory input in every hundred, landing in a few dozen
// destination folders. LLB generation reads no file, so none is created.
func benchPlan(n int) *build.Plan {
	const home = "/home/wso2carbon/wso2is-5.8.0"
	cache := "/var/cache/wso2img/blobs/sha256"
	profile := "/srv/profiles/wso2is-big"
	plan := &build.Plan{
		Base: build.Base{Ref: "docker.wso2.com/wso2is:5.8.0.1565855673150-alpine3.10", Digest: baseDigest,
			Pull: "127.0.0.1:5000/wso2is@" + baseDigest, Platforms: []string{"linux/amd64"}},
		Home: home, UID: 802, GID: 802, Platforms: []string{"linux/amd64"},
		Created: time.UnixMilli(1565855673150).UTC(),
	}
	for i := range n {
		var in build.Input
		switch {
		case i%100 == 99:
			dir := filepath.Join(profile, fmt.Sprintf("carbonapps-%d", i))
			in = build.Input{Verified: &inputs.Verified{Local: dir, Dir: true}, Dest: fmt.Sprintf("%s/repository/deployment/server/carbonapps/app-%d", home, i), Dir: true}
		case i%3 == 2:
			local := filepath.Join(profile, fmt.Sprintf("conf-%d", i%10), fmt.Sprintf("file-%d.xml", i))
			in = build.Input{Verified: &inputs.Verified{Local: local}, Dest: fmt.Sprintf("%s/repository/conf/part-%d/file-%d.xml", home, i%40, i), Mode: 0o640}
		default:
			local := filepath.Join(cache, fmt.Sprintf("%064x", i))
			in = build.Input{Verified: &inputs.Verified{Local: local}, Dest: fmt.Sprintf("%s/repository/components/lib/lib-%d.jar", home, i), Mode: 0o644}
		}
		plan.Inputs = append(plan.Inputs, in)
	}
	return plan
}

// BenchmarkLayer generates and marshals the LLB of the added layer merged onto the base
// (build.NewLayer, Layer.Image, Marshal) for profiles of 10, 100 and 1 000 inputs: what
// wso2img does before it hands a build to BuildKit. ops/def is the number of LLB ops: one
// per folder the files are read from, plus four, however many files there are.
func BenchmarkLayer(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("inputs=%d", n), func(b *testing.B) {
			plan := benchPlan(n)
			b.ReportAllocs()
			var (
				def *llb.Definition
				l   build.Layer
			)
			for b.Loop() {
				l = build.NewLayer(plan)
				var err error
				if def, err = l.Image(plan, "linux/amd64").Marshal(ctx, llb.LinuxAmd64); err != nil {
					b.Fatal(err)
				}
			}
			size := 0
			for _, dt := range def.Def {
				size += len(dt)
			}
			b.ReportMetric(float64(len(def.Def)), "ops/def")
			b.ReportMetric(float64(size), "bytes/def")
			// One op per local source, plus the base, the FileOp that stages the inputs,
			// the one that stamps the update's time, the merge and the definition's root:
			// more would mean the inputs are no longer staged in one FileOp.
			if want := len(l.Locals) + 5; len(def.Def) != want {
				b.Fatalf("%d ops for %d inputs, want %d: the inputs are no longer staged in one FileOp", len(def.Def), n, want)
			}
		})
	}
}
