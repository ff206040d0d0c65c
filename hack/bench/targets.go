//go:build linux

package main

import (
	"fmt"
	"sort"
	"strings"
)

// Issue targets.
const (
	maxLimitRatio    = 1.5
	minSpeedup       = 10.0
	maxBasePulled    = 0.01
	maxRebuildSecs   = 2.0
	maxProfilesRatio = 3.0
	maxBaseGrowth    = 1.2
	maxStreamRSS     = 100e6
	// The topology scenario's: a second profile on a base from another registry.
	maxTopoLimitRatio = 1.5
	minTopoSpeedup    = 50.0
)

// headline picks the scenario the targets name: the first extension (5 MB) on the middle
// base (500 MB); the growth target compares the smallest base with the largest.
func (res *Result) headline() (*Base, *Ext) {
	if len(res.Bases) == 0 || len(res.Exts) == 0 {
		return nil, nil
	}
	return res.Bases[len(res.Bases)/2], res.Exts[0]
}

// evaluate fills res.Targets from the rows.
func (res *Result) evaluate() {
	res.Targets = nil
	add := func(name, measured string, met *bool, why string) {
		res.Targets = append(res.Targets, Target{Name: name, Measured: measured, Met: met, Why: why})
	}
	ok := func(b bool) *bool { return &b }
	missing := func(r *Row) string {
		if r == nil {
			return "not run"
		}
		if r.Error != "" {
			return "not measured: " + firstLines(r.Error, 1)
		}
		return "not measured: no run succeeded"
	}
	usable := func(r *Row) bool { return r != nil && len(r.Samples) > 0 }

	b, x := res.headline()
	if b != nil {
		at := fmt.Sprintf("cold build + push of %s on a %s base", x.Label, b.Label)
		w := res.find("cold", "wso2img", b.Label, x.ID, 0)
		l := res.find("cold", "limit", b.Label, x.ID, 0)
		if usable(w) && usable(l) {
			r := w.walls().median / l.walls().median
			add(fmt.Sprintf("%s: ≤ %.1f× the physical limit", at, maxLimitRatio),
				fmt.Sprintf("wso2img %s, limit %s: %.2f×", secs(w.walls().median), secs(l.walls().median), r),
				ok(r <= maxLimitRatio), res.whyLimit(w, l))
		} else {
			add(fmt.Sprintf("%s: ≤ %.1f× the physical limit", at, maxLimitRatio), missing(w)+"; "+missing(l), nil, "")
		}
		for _, other := range []struct{ tool, name string }{{"dockerfile", "the Dockerfile path (buildctl)"}, {"buildah", "buildah"}} {
			o := res.find("cold", other.tool, b.Label, x.ID, 0)
			name := fmt.Sprintf("%s: ≥ %.0f× faster than %s", at, minSpeedup, other.name)
			if !usable(w) || !usable(o) {
				add(name, missing(o), nil, "")
				continue
			}
			r := o.walls().median / w.walls().median
			add(name, fmt.Sprintf("%s %s, wso2img %s: %.1f×", other.tool, secs(o.walls().median), secs(w.walls().median), r),
				ok(r >= minSpeedup), res.whySpeedup(w, o))
		}
		if usable(w) {
			pulled := w.max(func(s Sample) float64 { return float64(s.BasePulled) })
			frac := pulled / float64(b.Compressed)
			add(fmt.Sprintf("%s: base bytes pulled ≤ %.0f %% of the base", at, maxBasePulled*100),
				fmt.Sprintf("at most %s of %s (%.2f %%) over %d runs", humanBytes(int64(pulled)), humanBytes(b.Compressed), frac*100, len(w.Samples)),
				ok(frac <= maxBasePulled), "")
		}
	}

	// No-change rebuilds: every base and extension.
	var again []*Row
	for _, r := range res.Rows {
		if r.Scenario == "nochange" && r.Tool == "wso2img" && usable(r) {
			again = append(again, r)
		}
	}
	if len(again) > 0 {
		n, same, maxPushed, maxWall, maxMed := 0, 0, 0.0, 0.0, 0.0
		for _, r := range again {
			for _, s := range r.Samples {
				n++
				if s.SameDigest != nil && *s.SameDigest {
					same++
				}
			}
			maxPushed = max(maxPushed, r.max(func(s Sample) float64 { return float64(s.Pushed) }))
			maxWall = max(maxWall, r.walls().max)
			maxMed = max(maxMed, r.walls().median)
		}
		scope := fmt.Sprintf("%d rebuilds (%d base × extension rows)", n, len(again))
		add("no-change rebuild: the same digest", fmt.Sprintf("%d of %s", same, scope), ok(same == n), "")
		add("no-change rebuild: 0 layer bytes pushed", fmt.Sprintf("at most %s over %s", humanBytes(int64(maxPushed)), scope), ok(maxPushed == 0), "")
		add(fmt.Sprintf("no-change rebuild: ≤ %.0f s", maxRebuildSecs), fmt.Sprintf("slowest %s (highest median %s) over %s", secs(maxWall), secs(maxMed), scope), ok(maxWall <= maxRebuildSecs), "")
	}

	// N profiles.
	var ns []int
	for _, r := range res.Rows {
		if r.Scenario == "profiles" {
			ns = append(ns, r.Profiles)
		}
	}
	sort.Ints(ns)
	if len(ns) >= 2 {
		pb := res.profilesBase()
		one := res.find("profiles", "wso2img", pb, 0, ns[0])
		many := res.find("profiles", "wso2img", pb, 0, ns[len(ns)-1])
		name := fmt.Sprintf("%d profiles ≤ %.0f× the time of %d", ns[len(ns)-1], maxProfilesRatio, ns[0])
		if usable(one) && usable(many) {
			r := many.walls().median / one.walls().median
			add(name, fmt.Sprintf("%s vs %s: %.2f×", secs(many.walls().median), secs(one.walls().median), r), ok(r <= maxProfilesRatio), res.whyProfiles(one, many))
		} else {
			add(name, missing(one)+"; "+missing(many), nil, "")
		}
	}

	// Growth with the base.
	if len(res.Bases) >= 2 {
		small, large := res.Bases[0], res.Bases[len(res.Bases)-1]
		for _, x := range res.Exts {
			a := res.find("cold", "wso2img", small.Label, x.ID, 0)
			z := res.find("cold", "wso2img", large.Label, x.ID, 0)
			name := fmt.Sprintf("build time (%s added) from a %s to a %s base grows ≤ %.1f×", x.Label, small.Label, large.Label, maxBaseGrowth)
			if usable(a) && usable(z) {
				r := z.walls().median / a.walls().median
				add(name, fmt.Sprintf("%s → %s: %.2f×", secs(a.walls().median), secs(z.walls().median), r), ok(r <= maxBaseGrowth), whyGrowth(a, z))
			} else {
				add(name, missing(a)+"; "+missing(z), nil, "")
			}
		}
	}

	// Streaming.
	if res.Stream != nil {
		name := fmt.Sprintf("peak RSS of wso2img ≤ %s while it streams %s of inputs", humanBytes(maxStreamRSS), sizeLabel(res.Stream.Bytes))
		var parts []string
		worst := 0.0
		measured := false
		for _, tool := range []string{"wso2img build", "wso2img plan"} {
			r := res.findStream(tool)
			if !usable(r) {
				parts = append(parts, tool+": "+missing(r))
				continue
			}
			measured = true
			m := r.max(func(s Sample) float64 { return float64(s.RSS) })
			worst = max(worst, m)
			parts = append(parts, fmt.Sprintf("%s: at most %s over %d runs", tool, humanBytes(int64(m)), len(r.Samples)))
		}
		why := ""
		if r := res.findStream("wso2img build --sign=false"); usable(r) {
			m := r.max(func(s Sample) float64 { return float64(s.RSS) })
			why = fmt.Sprintf("the same build with --sign=false peaks at %s: the excess is signing's, not streaming's (see the analysis)", humanBytes(int64(m)))
		}
		var met *bool
		if measured {
			met = ok(worst <= maxStreamRSS)
		}
		add(name, strings.Join(parts, "; "), met, why)
	}

	if t := res.Topology; t != nil {
		res.evaluateTopology(t, add, missing, usable)
	}
}

// evaluateTopology adds the targets of the scenario with two registries.
func (res *Result) evaluateTopology(t *Topology, add func(string, string, *bool, string), missing func(*Row) string, usable func(*Row) bool) {
	ok := func(b bool) *bool { return &b }
	at := fmt.Sprintf("vendor registry ≠ target (%s), %s base, %s added", shapeText(netShape(t)), t.Base.Label, sizeLabel(t.Profiles[0].Bytes))
	maxOf := func(r *Row, f func(Sample) int64) int64 {
		return int64(r.max(func(s Sample) float64 { return float64(f(s)) }))
	}

	first := res.findStep("first", "wso2img")
	name := at + ", first build: the base crosses the link once and BuildKit pulls none of it"
	if usable(first) {
		allOnce := true
		for _, s := range first.Samples {
			if s.VendorPulled > t.Base.Compressed || s.ReportedPulled != 0 || s.BasePulled != 0 {
				allOnce = false
			}
		}
		add(name, fmt.Sprintf("base layers over the link: at most %s of %s; copied at most %s (every blob: %s); BuildKit pulled at most %s (wso2img's baseBytesPulled) and read %s of base layers from the target registry, over %d runs",
			humanBytes(maxOf(first, func(s Sample) int64 { return s.VendorPulled })), humanBytes(t.Base.Compressed),
			humanBytes(maxOf(first, func(s Sample) int64 { return s.BaseCopied })), humanBytes(t.BaseBlobBytes),
			humanBytes(maxOf(first, func(s Sample) int64 { return s.ReportedPulled })), humanBytes(maxOf(first, func(s Sample) int64 { return s.BasePulled })), len(first.Samples)),
			ok(allOnce), "")
	} else {
		add(name, missing(first), nil, "")
	}

	w, l := res.findStep("second", "wso2img"), res.findStep("second", "limit")
	name = fmt.Sprintf("%s, second profile on the same base: ≤ %.1f× the physical limit", at, maxTopoLimitRatio)
	if usable(w) && usable(l) {
		r := w.walls().median / l.walls().median
		add(name, fmt.Sprintf("wso2img %s, limit %s: %.2f×", secs(w.walls().median), secs(l.walls().median), r),
			ok(r <= maxTopoLimitRatio), res.whyTopoLimit(t, w, l))
	} else {
		add(name, missing(w)+"; "+missing(l), nil, "")
	}

	d := res.findStep("second", "dockerfile")
	name = fmt.Sprintf("%s, second profile on the same base: ≥ %.0f× faster than the Dockerfile path (buildctl) over the link", at, minTopoSpeedup)
	if usable(w) && usable(d) {
		r := d.walls().median / w.walls().median
		measured := fmt.Sprintf("dockerfile %s, wso2img %s: %.1f×", secs(d.walls().median), secs(w.walls().median), r)
		if warm := res.findStep("second", warmDockerfile); usable(warm) {
			measured += fmt.Sprintf("; on a builder that kept the base's layers from step 1: %s, %.1f×", secs(warm.walls().median), warm.walls().median/w.walls().median)
		}
		add(name, measured, ok(r >= minTopoSpeedup), res.whyTopoDockerfile(t, d))
	} else {
		add(name, missing(d), nil, "")
	}

	if usable(w) {
		again := res.findStep("nochange", "wso2img")
		var rows []*Row
		for _, r := range []*Row{w, again} {
			if usable(r) {
				rows = append(rows, r)
			}
		}
		var pulled, copied, down int64
		n := 0
		for _, r := range rows {
			n += len(r.Samples)
			pulled = max(pulled, maxOf(r, func(s Sample) int64 { return s.VendorPulled }))
			copied = max(copied, maxOf(r, func(s Sample) int64 { return s.BaseCopied + s.ReportedPulled + s.BasePulled }))
			down = max(down, maxOf(r, func(s Sample) int64 { return s.LinkDown }))
		}
		add(at+", second profile and its no-change rebuild: no base layer crosses the link, none is copied or pulled",
			fmt.Sprintf("base layers over the link: at most %s; copied or pulled: at most %s, over %d builds (the link carried at most %s in all: manifests, configs, HTTP)", humanBytes(pulled), humanBytes(copied), n, humanBytes(down)),
			ok(pulled == 0 && copied == 0), "")
	}

	u := res.findStep("update", "wso2img")
	name = fmt.Sprintf("%s, WSO2 update (one new layer of %s): copies only the changed layer", at, humanBytes(t.ChangedLayerBytes))
	if usable(u) {
		exact := 0
		for _, s := range u.Samples {
			if s.BaseCopied == t.ChangedBytes && s.VendorPulled == t.ChangedLayerBytes {
				exact++
			}
		}
		why := ""
		if exact != len(u.Samples) {
			why = fmt.Sprintf("copied %s to %s, base layers over the link %s to %s: more than the update's new blobs",
				humanBytes(minOf(u, func(s Sample) int64 { return s.BaseCopied })), humanBytes(maxOf(u, func(s Sample) int64 { return s.BaseCopied })),
				humanBytes(minOf(u, func(s Sample) int64 { return s.VendorPulled })), humanBytes(maxOf(u, func(s Sample) int64 { return s.VendorPulled })))
		}
		add(name, fmt.Sprintf("%d of %d runs copied exactly the new layer and config (%s) and read only the new layer over the link (%s)", exact, len(u.Samples), humanBytes(t.ChangedBytes), humanBytes(t.ChangedLayerBytes)),
			ok(exact == len(u.Samples)), why)
	} else {
		add(name, missing(u), nil, "")
	}
}

// minOf is the least of a per-sample figure.
func minOf(r *Row, f func(Sample) int64) int64 {
	var xs []float64
	for _, s := range r.Samples {
		xs = append(xs, float64(f(s)))
	}
	return int64(summarise(xs).min)
}

// whyTopoLimit explains wso2img's distance to the limit on step 2: its fixed cost (as in
// the single-registry scenario) and what it asks the vendor over the link.
func (res *Result) whyTopoLimit(t *Topology, w, l *Row) string {
	wp, lp := medianPhases(w), medianPhases(l)
	s := ""
	if u := res.findStep("second", unsignedTool); u != nil && len(u.Samples) > 0 {
		s = fmt.Sprintf("unsigned (--sign=false) it takes %s, %.2f× the limit; ", secs(u.walls().median), u.walls().median/l.walls().median)
	}
	s += fmt.Sprintf("wso2img made %.0f requests to the vendor registry over %.0f new connections (the link adds %.0f ms a round trip and one more for each connection's handshake) to resolve the base's tag and read its manifest and config, which the limit, given the digest, does not",
		w.median(func(s Sample) float64 { return float64(s.VendorRequests) }), w.median(func(s Sample) float64 { return float64(s.LinkConns) }), t.RTTms)
	if wp != nil {
		s += fmt.Sprintf("; it spends %s before BuildKit's first step, %s in BuildKit and %s after its last step; the limit %s on tar + gzip and %s pushing",
			secs(wp["before the first BuildKit step"]), secs(wp["BuildKit steps"]), secs(wp["after the last BuildKit step"]), secs(lp["tar + gzip"]), secs(lp["push"]))
	}
	return s
}

// whyTopoDockerfile says what the Dockerfile path moves on step 2.
func (res *Result) whyTopoDockerfile(t *Topology, d *Row) string {
	pulled := int64(d.median(func(s Sample) float64 { return float64(s.VendorPulled) }))
	s := fmt.Sprintf("the Dockerfile path pulls the base over the link again (%s of base layers", humanBytes(pulled))
	if sec := t.linkSeconds(pulled); sec > 0 {
		s += fmt.Sprintf(", %s at the link's bandwidth alone", secs(sec))
	}
	s += fmt.Sprintf(") and pushes it into the new repository (%s pushed)", humanBytes(int64(d.median(func(s Sample) float64 { return float64(s.Pushed) }))))
	if warm := res.findStep("second", warmDockerfile); warm != nil && len(warm.Samples) > 0 {
		s += fmt.Sprintf("; a warm builder pulls %s and pushes %s", humanBytes(int64(warm.median(func(s Sample) float64 { return float64(s.VendorPulled) }))),
			humanBytes(int64(warm.median(func(s Sample) float64 { return float64(s.Pushed) }))))
	}
	return s
}

func (res *Result) findStream(tool string) *Row {
	for _, r := range res.Rows {
		if r.Scenario == "stream" && r.Tool == tool {
			return r
		}
	}
	return nil
}

func (res *Result) profilesBase() string {
	for _, r := range res.Rows {
		if r.Scenario == "profiles" {
			return r.Base
		}
	}
	return ""
}

// medianPhases is the median of each phase over a row's runs.
func medianPhases(r *Row) map[string]float64 {
	if r == nil {
		return nil
	}
	keys := map[string]bool{}
	for _, s := range r.Samples {
		for k := range s.Phases {
			keys[k] = true
		}
	}
	out := map[string]float64{}
	for k := range keys {
		var xs []float64
		for _, s := range r.Samples {
			if v, ok := s.Phases[k]; ok {
				xs = append(xs, v)
			}
		}
		out[k] = summarise(xs).median
	}
	return out
}

// whyLimit explains wso2img's distance to the physical limit from where its time went.
func (res *Result) whyLimit(w, l *Row) string {
	wp, lp := medianPhases(w), medianPhases(l)
	if wp == nil {
		return ""
	}
	unsigned := ""
	if u := res.find("cold", unsignedTool, w.Base, w.Ext, 0); u != nil && len(u.Samples) > 0 {
		unsigned = fmt.Sprintf("unsigned (--sign=false) it takes %s, %.2f× the limit; ", secs(u.walls().median), u.walls().median/l.walls().median)
	}
	return unsigned + fmt.Sprintf("wso2img spends %s before BuildKit's first step (process start, loading the signing key, profile, base manifest and config, hashing the inputs, session), %s in BuildKit (of which export: diff + gzip %s, rewriting the timestamps %s, push %s) and %s after its last step (reading the image back, signing, attestations, tags); the limit spends %s on tar + gzip and %s pushing",
		secs(wp["before the first BuildKit step"]), secs(wp["BuildKit steps"]), secs(wp["export layers (diff + gzip)"]),
		secs(wp["rewrite timestamps"]), secs(wp["push layers"]+wp["push manifest"]), secs(wp["after the last BuildKit step"]), secs(lp["tar + gzip"]), secs(lp["push"]))
}

// whyGrowth says what grew between the smallest and the largest base: the base bytes
// pulled, and the phase whose median grew most.
func whyGrowth(a, z *Row) string {
	pulled := func(r *Row) string {
		return humanBytes(int64(r.max(func(s Sample) float64 { return float64(s.BasePulled) })))
	}
	pa, pz := medianPhases(a), medianPhases(z)
	worst, by := "", 0.0
	for k, v := range pz {
		if strings.Contains(k, "BuildKit step") {
			continue
		}
		if d := v - pa[k]; d > by {
			worst, by = k, d
		}
	}
	s := fmt.Sprintf("base bytes pulled: at most %s and %s", pulled(a), pulled(z))
	if worst != "" {
		s += fmt.Sprintf("; the phase that grew most: %s, %s → %s (wall time, min–max: %s–%s and %s–%s)",
			worst, secs(pa[worst]), secs(pz[worst]), secs(a.walls().min), secs(a.walls().max), secs(z.walls().min), secs(z.walls().max))
	}
	return s
}

func (res *Result) whySpeedup(w, o *Row) string {
	op := medianPhases(o)
	if o.Tool == "dockerfile" && op != nil {
		return fmt.Sprintf("the Dockerfile path pulls and unpacks the base (%s of base blobs, pull %s, unpack %s) and pushes it again to the new repository (%s pushed; push %s)",
			humanBytes(int64(o.median(func(s Sample) float64 { return float64(s.BasePulled) }))), secs(op["pull base layers"]), secs(op["unpack base layers"]),
			humanBytes(int64(o.median(func(s Sample) float64 { return float64(s.Pushed) }))), secs(op["push layers"]))
	}
	if op != nil {
		return fmt.Sprintf("buildah pulls the whole base (%s) into its storage before the COPY; bud %s, push %s",
			humanBytes(int64(o.median(func(s Sample) float64 { return float64(s.BasePulled) }))), secs(op["bud (pull, copy, commit)"]), secs(op["push"]))
	}
	return ""
}

func (res *Result) whyProfiles(one, many *Row) string {
	cpu := many.median(func(s Sample) float64 { return s.CPU })
	daemon := many.median(func(s Sample) float64 { return s.DaemonCPU })
	wall := many.walls().median
	return fmt.Sprintf("%s a profile for %d profiles against %s for one; wso2img used %.2f s and buildkitd %.2f s of CPU (%d ms a profile) in %s on %d cores (%.0f %% of the machine): every profile is its own solve, export, push and signature (see the analysis, point 3)",
		secs(wall/float64(many.Profiles)), many.Profiles, secs(one.walls().median), cpu, daemon,
		int(daemon/float64(many.Profiles)*1000), secs(wall), res.Machine.Cores, (cpu+daemon)/(wall*float64(res.Machine.Cores))*100)
}

func secs(s float64) string {
	switch {
	case s < 0.1:
		return fmt.Sprintf("%.0f ms", s*1000)
	case s < 10:
		return fmt.Sprintf("%.2f s", s)
	}
	return fmt.Sprintf("%.1f s", s)
}
