package watch_test

import (
	"strings"
	"testing"

	"github.com/wso2img/wso2img/build"
	"github.com/wso2img/wso2img/profiles"
	"github.com/wso2img/wso2img/tags"
	"github.com/wso2img/wso2img/watch"
)

// FuzzTagHandling feeds watch's tag handling — what the registry lists, parsed, the
// upstream updates picked for "latest", and the target's tags classified — with
// arbitrary tag lists, and checks what it decides, not just that it does not panic.
func FuzzTagHandling(f *testing.F) {
	f.Add("5.8.0.1565855673150-alpine3.10\n5.8.0.1567933846116-alpine3.10\n5.8.0-alpine3.10\nlatest\nsha256-abc.sig", int64(1565855673150), 0, 0)
	f.Add("4.2.0.15\n4.2.0.9\n4.2.0.15.2\n4.2.0.0\n4.2.0.15-alpine", int64(0), 15, 1)
	f.Add("5.8.0.1565855673150.3-alpine3.10\n5.8.0.1565855673150-alpine3.10\n5.8.0.1565855673150.1-alpine3.10", int64(1565855673150), 0, 2)
	f.Fuzz(func(t *testing.T, list string, wum int64, level, release int) {
		if wum < 0 || level < 0 || release < 0 || release > 1000 {
			return
		}
		prof := &profiles.Profile{Name: "p", Product: "wso2is", Version: "5.8.0", OS: "alpine", OSVersion: "3.10", Release: release,
			Update: profiles.Update{WUM: wum, Level: level}}
		if strings.HasPrefix(list, "4.") {
			prof.Version, prof.OS, prof.OSVersion = "4.2.0", "", ""
		}
		all := build.ParseTags(strings.Split(list, "\n"))
		for _, tg := range all {
			if back, err := tags.Parse(tg.String()); err != nil || back != tg {
				t.Fatalf("tag %q does not round-trip: %v, %+v", tg.String(), err, back)
			}
		}
		for _, kind := range []string{"wum", "level"} {
			ups := build.Updates(all, prof, kind)
			for i, u := range ups {
				if u.Version != prof.Version || !build.SameOS(u, prof) || !u.Unique() || u.Kind.String() != kind {
					t.Fatalf("%s update %s does not belong to version %s, OS %s", kind, u, prof.Version, prof.OS)
				}
				if i > 0 && tags.Compare(ups[i-1], u) < 0 {
					t.Fatalf("updates not newest first: %s before %s", ups[i-1], u)
				}
			}
		}
		same, newest := watch.Classify(all, prof)
		want := prof.Tag()
		for i, s := range same {
			if s.WUM != want.WUM || s.Level != want.Level || s.Kind != want.Kind || s.Version != prof.Version || !build.SameOS(s, prof) {
				t.Fatalf("%s classified as the profile's own update %s", s, want)
			}
			if i > 0 && same[i-1].Release < s.Release {
				t.Fatalf("releases not highest first: %v", same)
			}
		}
		for _, tg := range all {
			eligible := tg.Version == prof.Version && build.SameOS(tg, prof) && tg.Unique()
			if eligible && (newest == nil || tags.Compare(tg, *newest) > 0) {
				t.Fatalf("%s is newer than the newest found, %v", tg, newest)
			}
		}
	})
}
