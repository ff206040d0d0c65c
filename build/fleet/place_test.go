package fleet_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/wso2img/wso2img/build"
	"github.com/wso2img/wso2img/build/fleet"
	"github.com/wso2img/wso2img/profiles"
)

func builders(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("tcp://buildkitd-%d.buildkitd:1234", i))
	}
	return out
}

func keys(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("sha256:%064x linux/amd64", i))
	}
	return out
}

func TestFleetRankStable(t *testing.T) {
	bs := builders(5)
	for _, k := range keys(50) {
		want := fleet.Rank(k, bs)
		if !slices.Equal(fleet.Rank(k, bs), want) {
			t.Fatalf("%s: two rankings differ", k)
		}
		// The builders' order does not matter.
		rev := slices.Clone(bs)
		slices.Reverse(rev)
		if got := fleet.Rank(k, rev); !slices.Equal(got, want) {
			t.Fatalf("%s: ranking depends on the list's order: %v vs %v", k, got, want)
		}
		if got := slices.Sorted(slices.Values(want)); !slices.Equal(got, slices.Sorted(slices.Values(bs))) {
			t.Fatalf("%s: ranking %v is not a permutation of %v", k, want, bs)
		}
	}
	// A pinned value: the hash is part of the contract (every run, every machine places
	// a base alike).
	if got := fleet.Rank("sha256:abc linux/amd64", []string{"a", "b", "c"}); !slices.Equal(got, []string{"b", "c", "a"}) {
		t.Errorf("Rank changed: %v", got)
	}
}

// TestFleetRankSpreads: keys spread over the builders roughly evenly.
func TestFleetRankSpreads(t *testing.T) {
	bs := builders(4)
	count := map[string]int{}
	for _, k := range keys(4000) {
		count[fleet.Rank(k, bs)[0]]++
	}
	for _, b := range bs {
		if count[b] < 800 || count[b] > 1200 {
			t.Errorf("%s is first for %d of 4000 keys, want about 1000: %v", b, count[b], count)
		}
	}
}

// TestFleetRankMinimalChange: adding a builder moves only the keys that rank it first,
// removing one only the keys that ranked it first, and the rest keep their order.
func TestFleetRankMinimalChange(t *testing.T) {
	bs := builders(4)
	added := append(slices.Clone(bs), "tcp://buildkitd-new:1234")
	moved := 0
	for _, k := range keys(2000) {
		before, after := fleet.Rank(k, bs), fleet.Rank(k, added)
		if after[0] != before[0] {
			moved++
			if after[0] != "tcp://buildkitd-new:1234" {
				t.Fatalf("%s moved from %s to %s, not to the new builder", k, before[0], after[0])
			}
		}
		without := slices.DeleteFunc(slices.Clone(after), func(b string) bool { return b == "tcp://buildkitd-new:1234" })
		if !slices.Equal(without, before) {
			t.Fatalf("%s: adding a builder reordered the others: %v → %v", k, before, after)
		}
	}
	if moved < 300 || moved > 500 {
		t.Errorf("adding a fifth builder moved %d of 2000 keys, want about 400", moved)
	}

	removed := bs[:3]
	for _, k := range keys(2000) {
		before, after := fleet.Rank(k, bs), fleet.Rank(k, removed)
		if before[0] != bs[3] && after[0] != before[0] {
			t.Fatalf("%s moved from %s to %s although %s was removed", k, before[0], after[0], bs[3])
		}
		if before[0] == bs[3] && after[0] != before[1] {
			t.Fatalf("%s: its builder was removed; it went to %s, want its second choice %s", k, after[0], before[1])
		}
	}
}

func TestFleetKey(t *testing.T) {
	p := func(base string, platforms ...string) *build.Plan {
		return &build.Plan{Profile: &profiles.Profile{Name: "x"}, Base: build.Base{Digest: base}, Platforms: platforms}
	}
	if a, b := fleet.Key(p("sha256:1", "linux/arm64", "linux/amd64")), fleet.Key(p("sha256:1", "linux/amd64", "linux/arm64")); a != b {
		t.Errorf("platform order changes the key: %q vs %q", a, b)
	}
	for _, pair := range [][2]*build.Plan{
		{p("sha256:1", "linux/amd64"), p("sha256:2", "linux/amd64")},
		{p("sha256:1", "linux/amd64"), p("sha256:1", "linux/amd64", "linux/arm64")},
	} {
		if fleet.Key(pair[0]) == fleet.Key(pair[1]) {
			t.Errorf("%+v and %+v share key %q", pair[0].Base, pair[1].Platforms, fleet.Key(pair[0]))
		}
	}
}

func TestFleetBuilderValidate(t *testing.T) {
	for _, tc := range []struct {
		b    fleet.Builder
		want string // "" when valid
	}{
		{fleet.Builder{Addr: "unix:///run/buildkit/buildkitd.sock"}, ""},
		{fleet.Builder{Addr: "tcp://10.0.0.1:1234", CA: "ca.pem", Cert: "c.pem", Key: "k.pem", Parallel: 4}, ""},
		{fleet.Builder{Addr: "kube-pod://buildkitd-0?namespace=ci"}, ""},
		{fleet.Builder{Addr: "docker-container://buildkitd"}, ""},
		{fleet.Builder{Addr: "ssh://host"}, "expected an address unix:///PATH, tcp://HOST:PORT"},
		{fleet.Builder{Addr: "/run/buildkit/buildkitd.sock"}, "expected an address"},
		{fleet.Builder{Addr: "tcp://10.0.0.1"}, "expected tcp://HOST:PORT"},
		{fleet.Builder{Addr: "unix://"}, "no socket path"},
		{fleet.Builder{Addr: "kube-pod://"}, "no kube-pod name"},
		{fleet.Builder{Addr: "unix:///x.sock", CA: "ca.pem"}, "apply to tcp:// builders only"},
		{fleet.Builder{Addr: "tcp://h:1", Cert: "c.pem"}, "cert and key go together"},
		{fleet.Builder{Addr: "tcp://h:1", Parallel: -1}, "parallel -1"},
	} {
		err := tc.b.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.b, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: error %v, want one saying %q", tc.b, err, tc.want)
		}
	}
}
