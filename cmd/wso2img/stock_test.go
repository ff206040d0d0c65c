package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/wso2img/wso2img/profiles"

	"github.com/wso2img/wso2img/internal/standin"
)

// stockImage is what WSO2's image of a stock profile is, as researched (the sources are
// in each stock profile's comment): the stand-in of its base is built from these facts,
// not from the profile, so a profile that disagrees with them fails plan or the checks.
type stockImage struct {
	stock, repo, product, version string // repo: below registry.wso2.com
	uid                           int
	ports                         []int
}

func (s stockImage) home() string { return "/home/wso2carbon/" + s.product + "-" + s.version }

var (
	amAllInOnePorts = []int{9763, 9443, 9999, 11111, 8280, 8243, 5672, 9711, 9611, 9099}
	amControlPorts  = []int{9763, 9443, 9711, 9611, 5672}
	amGatewayPorts  = []int{8280, 8243, 9763, 9443, 9099, 8099, 9021, 8021}
)

// newStockImages are the stock profiles of the images WSO2 ships now that the older
// end-to-end tests do not cover.
var newStockImages = []stockImage{
	{"wso2am-acp-4.5.0", "wso2-apim/am-acp", "wso2am-acp", "4.5.0", 10001, amControlPorts},
	{"wso2am-tm-4.5.0", "wso2-apim/am-tm", "wso2am-tm", "4.5.0", 10001, amControlPorts},
	{"wso2am-universal-gw-4.5.0", "wso2-apim/am-universal-gw", "wso2am-universal-gw", "4.5.0", 10001, amGatewayPorts},
	{"wso2am-4.6.0", "wso2-apim/am", "wso2am", "4.6.0", 10001, amAllInOnePorts},
	{"wso2am-acp-4.6.0", "wso2-apim/am-acp", "wso2am-acp", "4.6.0", 10001, amControlPorts},
	{"wso2am-tm-4.6.0", "wso2-apim/am-tm", "wso2am-tm", "4.6.0", 10001, amControlPorts},
	{"wso2am-universal-gw-4.6.0", "wso2-apim/am-universal-gw", "wso2am-universal-gw", "4.6.0", 10001, amGatewayPorts},
	{"wso2am-4.7.0", "wso2-apim/am", "wso2am", "4.7.0", 10001, amAllInOnePorts},
	{"wso2am-acp-4.7.0", "wso2-apim/am-acp", "wso2am-acp", "4.7.0", 10001, amControlPorts},
	{"wso2am-tm-4.7.0", "wso2-apim/am-tm", "wso2am-tm", "4.7.0", 10001, amControlPorts},
	{"wso2am-universal-gw-4.7.0", "wso2-apim/am-universal-gw", "wso2am-universal-gw", "4.7.0", 10001, amGatewayPorts},
	{"wso2is-7.0.0", "wso2-is/is", "wso2is", "7.0.0", 802, []int{4000, 9763, 9443}},
	{"wso2is-7.2.0", "wso2-is/is", "wso2is", "7.2.0", 802, []int{4000, 9763, 9443}},
	{"wso2mi-4.4.0", "wso2-integrator/mi", "wso2mi", "4.4.0", 10802, []int{8290, 8253}},
	{"wso2mi-4.6.0", "wso2-integrator/mi", "wso2mi", "4.6.0", 10802, []int{8290, 8253}},
}

// pushStock pushes a stand-in of s's official image under its official name, at each
// of the given update levels, and returns the digest (the same for every level).
func (w *world) pushStock(s stockImage, levels ...int) string {
	w.t.Helper()
	o := standin.Options{Product: s.product, Version: s.version, UID: s.uid, GID: s.uid, Home: s.home(), Ports: s.ports}
	var refs []string
	for _, l := range levels {
		refs = append(refs, fmt.Sprintf("%s:%s.%d", s.repo, s.version, l))
	}
	return w.pushBase(o, refs)
}

// planJSON is the part of `plan --json` these tests read.
type planJSON struct {
	Profile string `json:"profile"`
	Image   string `json:"image"`
	Tags    []struct {
		Tag    string `json:"tag"`
		Unique bool   `json:"unique"`
	} `json:"tags"`
	Base struct {
		Ref    string `json:"ref"`
		Digest string `json:"digest"`
	} `json:"base"`
	Home  string `json:"home"`
	UID   int    `json:"uid"`
	GID   int    `json:"gid"`
	Ports []int  `json:"ports"`
}

// checkPlan asserts that plan planned s's image at update level, pushed to image.
func checkPlan(t *testing.T, p planJSON, s stockImage, level int, digest, image string) {
	t.Helper()
	unique, floating := fmt.Sprintf("%s.%d", s.version, level), s.version+".0"
	if len(p.Tags) != 2 || p.Tags[0].Tag != unique || !p.Tags[0].Unique || p.Tags[1].Tag != floating || p.Tags[1].Unique {
		t.Errorf("tags = %+v, want %s (unique) and %s (floating)", p.Tags, unique, floating)
	}
	if want := "registry.wso2.com/" + s.repo + ":" + unique; p.Base.Ref != want || p.Base.Digest != digest {
		t.Errorf("base = %+v, want %s at %s", p.Base, want, digest)
	}
	if p.UID != s.uid || p.GID != s.uid {
		t.Errorf("user = %d:%d, want %d:%d", p.UID, p.GID, s.uid, s.uid)
	}
	if p.Home != s.home() {
		t.Errorf("home = %s, want %s", p.Home, s.home())
	}
	if want := slices.Sorted(slices.Values(s.ports)); !slices.Equal(p.Ports, want) {
		t.Errorf("ports = %v, want %v", p.Ports, want)
	}
	if p.Image != image {
		t.Errorf("image = %s, want %s", p.Image, image)
	}
}

// TestStockPlans plans a profile that extends each new stock profile against a
// stand-in of WSO2's image pushed under its official name.
func TestStockPlans(t *testing.T) {
	w := newWorld(t, needRegistry(t))
	for _, s := range newStockImages {
		t.Run(s.stock, func(t *testing.T) {
			digest := w.pushStock(s, 3)
			file := w.profile(s.stock+"-acme.yaml", "extends: "+s.stock+"\nupdate: {level: 3}\n"+unsignedStandin)
			r := runCLI(t, append([]string{"plan", "--json", "--registry", "registry.acme.test/apim"}, append(w.flags(), file)...)...)
			if r.code != 0 {
				t.Fatalf("plan exit %d: %s", r.code, r.stderr)
			}
			var plans []planJSON
			if err := json.Unmarshal([]byte(r.stdout), &plans); err != nil || len(plans) != 1 {
				t.Fatalf("plan --json = %v: %s", err, r.stdout)
			}
			if plans[0].Profile != s.stock+"-acme" {
				t.Errorf("profile = %s", plans[0].Profile)
			}
			checkPlan(t, plans[0], s, 3, digest, "registry.acme.test/apim/"+s.product)

			// The text plan says the same.
			r = runCLI(t, append([]string{"plan"}, append(w.flags(), file)...)...)
			for _, want := range []string{fmt.Sprintf("%d:%d", s.uid, s.uid), s.home(), s.version + ".3  (unique)"} {
				if r.code != 0 || !strings.Contains(r.stdout, want) {
					t.Errorf("plan (exit %d) lacks %q:\n%s%s", r.code, want, r.stdout, r.stderr)
				}
			}
		})
	}
}

// TestStockBaseVerified: the stock profiles of registry.wso2.com check the base's cosign
// signature with WSO2's key, embedded in wso2img: a base it did not sign is refused (exit
// 3, naming the key) before anything is fetched or built; `verify: false` lets the profile
// through, and every run says so.
func TestStockBaseVerified(t *testing.T) {
	w := newWorld(t, needRegistry(t))
	s := newStockImages[0]
	w.pushStock(s, 3)
	// Offline here: the transparency log's check is left out to reach the signature.
	checked := w.profile("checked.yaml", "extends: "+s.stock+"\nupdate: {level: 3}\nbase:\n  verify: {key: \"stock:wso2-registry\", insecureIgnoreTlog: true}\n")
	r := runCLI(t, append([]string{"plan"}, append(w.flags(), checked)...)...)
	if r.code != exitVerification || !strings.Contains(r.stderr, "stock:wso2-registry") || !strings.Contains(r.stderr, "signature verification failed") {
		t.Errorf("a base WSO2 did not sign: exit %d, want %d\n%s", r.code, exitVerification, r.stderr)
	}
	if yaml, _ := profiles.StockYAML(s.stock); !strings.Contains(string(yaml), `verify: {key: "stock:wso2-registry"}`) {
		t.Errorf("stock profile %s does not check the base with WSO2's key", s.stock)
	}
	off := w.profile("off.yaml", "extends: "+s.stock+"\nupdate: {level: 3}\n"+unsignedStandin)
	r = runCLI(t, append([]string{"plan"}, append(w.flags(), off)...)...)
	if r.code != 0 || !strings.Contains(r.stderr, "WARNING") || !strings.Contains(r.stderr, "NOT checked") {
		t.Errorf("verify: false: exit %d, and it must say loudly that the base is not checked\n%s", r.code, r.stderr)
	}
}
