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
