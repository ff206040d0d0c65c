//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
)

// Result is everything one run of the harness measured: what docs/BENCHMARKS.md shows,
// and the raw figures it embeds as JSON.
type Result struct {
	Started  string            `json:"started"`
	Seconds  float64           `json:"durationSeconds"`
	Command  string            `json:"command"`
	Quick    bool              `json:"quick"`
	Runs     int               `json:"runs"`
	Machine  Machine           `json:"machine"`
	Versions map[string]string `json:"versions"`
	// Signing says whether wso2img rows sign (and how), or why they do not.
	Signing string `json:"signing"`
	// Buildah says which storage driver the buildah rows used, or why there are none.
	Buildah string  `json:"buildah"`
	Bases   []*Base `json:"bases"`
	Exts    []*Ext  `json:"extensions"`
	Rows    []*Row  `json:"rows"`
	Stream  *Stream `json:"stream,omitempty"`
	// Topology describes the vendor-registry scenario, when it ran.
	Topology *Topology `json:"topology,omitempty"`
	GoBench  *GoBench  `json:"goBench,omitempty"`
	Targets  []Target  `json:"targets"`
	Errors   []string  `json:"errors,omitempty"`
	Notes    []string  `json:"notes,omitempty"`
}

// Machine is what the figures were measured on, read from the machine itself.
type Machine struct {
	Cores     int    `json:"cores"`
	CPU       string `json:"cpu"`
	MemoryGiB string `json:"memory"`
	Kernel    string `json:"kernel"`
	OS        string `json:"os"`
	LoadStart string `json:"loadAverageAtStart"`
	LoadEnd   string `json:"loadAverageAtEnd"`
	WorkFS    string `json:"workFilesystem"`
}

// Base is a stand-in WSO2 base pushed for the run.
type Base struct {
	Label  string `json:"label"`
	Filler int64  `json:"fillerBytes"`
	// Mirror is what --mirror maps docker.wso2.com to; Repo is the base's repository.
	Mirror string   `json:"mirror"`
	Repo   string   `json:"repository"`
	Digest string   `json:"digest"`
	Layers []string `json:"layers"`
	// Compressed is the sum of the base's layer sizes, as stored in the registry.
	Compressed int64 `json:"compressedBytes"`
	// dockerfile is the folder of the Dockerfile that extends this base.
	dockerfile string
	// tag is the base's tag, where the harness needs it (the topology's bases).
	tag string
}

// Ref is the base by digest, as both wso2img and the Dockerfile pin it.
func (b *Base) Ref() string { return b.Repo + "@" + b.Digest }

// Ext is an extension: random local files in a profile folder, added under the product
// home's repository/components/lib/ by every tool.
type Ext struct {
	ID      int      `json:"id"`
	Label   string   `json:"label"`
	Bytes   int64    `json:"bytes"`
	Files   []string `json:"files"`
	Dir     string   `json:"-"` // the profile folder: files/ and bench.yaml
	Profile string   `json:"-"`
}

// Row is one tool in one scenario: several runs of the same thing.
type Row struct {
	Scenario string `json:"scenario"` // cold, nochange, profiles, stream, topology
	// Step is the topology scenario's step: first, second, update or nochange.
	Step     string `json:"step,omitempty"`
	Tool     string `json:"tool"` // wso2img, dockerfile, buildah, limit, sha256sum, wso2img plan
	Base     string `json:"base,omitempty"`
	BaseSize int64  `json:"baseFillerBytes,omitempty"`
	Ext      int    `json:"extension,omitempty"`
	Added    int64  `json:"addedBytes,omitempty"`
	Profiles int    `json:"profiles,omitempty"`
	// Samples are the runs, in the order they ran.
	Samples []Sample `json:"samples"`
	// Error says why the row has fewer runs than asked for (or none).
	Error string `json:"error,omitempty"`
	// runs is how many runs the row asks for, when not the harness's -runs.
	runs int
}

// Sample is one run.
type Sample struct {
	Wall float64 `json:"wallSeconds"`
	// BasePulled is the bytes of base layers the registry served during the run.
	BasePulled int64 `json:"basePulledBytes"`
	// VendorPulled is the bytes of base layers the vendor registry served during the
	// run (the topology scenario), from its log; LinkDown and LinkUp are every byte the
	// shaped link to it carried toward the clients and toward the vendor (HTTP headers,
	// manifests and configs included), LinkConns the connections opened over it.
	VendorPulled int64 `json:"vendorBasePulledBytes,omitempty"`
	LinkDown     int64 `json:"linkDownBytes,omitempty"`
	LinkUp       int64 `json:"linkUpBytes,omitempty"`
	LinkConns    int64 `json:"linkConnections,omitempty"`
	// VendorRequests counts the requests the vendor registry served during the run.
	VendorRequests int `json:"vendorRequests,omitempty"`
	// BaseCopied is what the tool copied of the base into the target registry:
	// wso2img's baseBytesCopied, or the blobs the limit uploaded into its copy.
	BaseCopied int64 `json:"baseCopiedBytes,omitempty"`
	// ReportedPulled is wso2img's own baseBytesPulled (what BuildKit had to pull of
	// the base to push the image), to check against the registries' logs.
	ReportedPulled int64 `json:"reportedBasePulledBytes,omitempty"`
	// Pushed is the bytes of blobs uploaded (layers and configs), Uploads their number,
	// Mounts the blobs mounted from another repository instead, Manifests the
	// manifests (and tags) written.
	Pushed    int64 `json:"pushedBytes"`
	Uploads   int   `json:"blobsUploaded"`
	Mounts    int   `json:"blobsMounted"`
	Manifests int   `json:"manifestsWritten"`
	// RSS is the peak RSS of the process the user runs (wso2img, buildctl, buildah);
	// DaemonRSS is buildkitd's peak during the run, for rows that build on it.
	RSS       int64 `json:"peakRSSBytes,omitempty"`
	DaemonRSS int64 `json:"buildkitdPeakRSSBytes,omitempty"`
	// CPU is the user + system seconds of the tool's process (and its children);
	// DaemonCPU buildkitd's during the run, for rows that build on it.
	CPU       float64 `json:"cpuSeconds,omitempty"`
	DaemonCPU float64 `json:"buildkitdCPUSeconds,omitempty"`
	// LayersAdded, SizeDelta and BaseKept compare the pushed manifest with the base's.
	LayersAdded int    `json:"layersAdded"`
	SizeDelta   int64  `json:"sizeDeltaBytes"`
	BaseKept    bool   `json:"baseLayersKept"`
	Digest      string `json:"digest,omitempty"`
	// SameDigest, for a rebuild, says whether it gave the cold build's digest.
	SameDigest *bool `json:"sameDigestAsCold,omitempty"`
	Signed     bool  `json:"signed,omitempty"`
	// Phases break the wall time down (seconds), where the tool's progress tells.
	Phases map[string]float64 `json:"phasesSeconds,omitempty"`
	// Rate is MB/s where the row measures a throughput.
	Rate float64 `json:"mbPerSecond,omitempty"`
}

// MarshalJSON writes a sample with its times to the microsecond and rates to a
// tenth: more digits are noise.
func (s Sample) MarshalJSON() ([]byte, error) {
	type plain Sample
	p := plain(s)
	p.Wall, p.CPU, p.DaemonCPU, p.Rate = round(p.Wall, 6), round(p.CPU, 3), round(p.DaemonCPU, 3), round(p.Rate, 1)
	if s.Phases != nil {
		p.Phases = map[string]float64{}
		for k, v := range s.Phases {
			p.Phases[k] = round(v, 6)
		}
	}
	return json.Marshal(p)
}

func round(x float64, digits int) float64 {
	f := math.Pow10(digits)
	return math.Round(x*f) / f
}

// Stream describes the 1 GB-of-inputs scenario.
type Stream struct {
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
	How    string `json:"how"`
}

// Topology is the set-up of the scenario with two registries: a vendor registry
// holding the base, reached only through a shaped link, and the user's target registry.
type Topology struct {
	// Vendor is the vendor registry's own address; Link is the shaper's, the only one
	// the tools are given.
	Vendor string `json:"vendor"`
	Link   string `json:"link"`
	// Down and Up are the link's bandwidth in bytes per second (0: unlimited), toward
	// the clients and toward the vendor; RTT the round-trip time it adds.
	Down  int64   `json:"downBytesPerSecond"`
	Up    int64   `json:"upBytesPerSecond"`
	RTTms float64 `json:"rttMilliseconds"`
	// Base is the stand-in base in the vendor registry; Update is WSO2's next update
	// of it: the same layers and one more.
	Base   *Base `json:"base"`
	Update *Base `json:"update"`
	// Changed are the blobs of Update that Base lacks (the new layer and the config),
	// ChangedBytes their size, ChangedLayerBytes that of the layers among them.
	Changed           []string `json:"changedBlobs"`
	ChangedBytes      int64    `json:"changedBytes"`
	ChangedLayerBytes int64    `json:"changedLayerBytes"`
	// BaseBlobBytes is every blob of Base (layers and config): what a first copy moves.
	BaseBlobBytes int64 `json:"baseBlobBytes"`
	// Profiles are the two extensions: the first profile (also rebuilt on the update)
	// and the second, on the same base.
	Profiles []*Ext `json:"profiles"`
	// SlowRuns is how many times the steps that move the base over the link run; the
	// second profile and its rebuild run Runs times.
	SlowRuns int `json:"slowRuns"`
}

// linkSeconds is how long n bytes take to cross the link toward the clients at its
// bandwidth alone, or 0 when it is unlimited.
func (t *Topology) linkSeconds(n int64) float64 {
	if t == nil || t.Down <= 0 {
		return 0
	}
	return float64(n) / float64(t.Down)
}

// Target is one of the targets, with what was measured.
type Target struct {
	Name     string `json:"target"`
	Measured string `json:"measured"`
	Met      *bool  `json:"met"` // nil: could not be measured
	Why      string `json:"why,omitempty"`
}

// unsignedTool names the rows of wso2img with --sign=false, next to signed ones.
const unsignedTool = "wso2img --sign=false"

// stats summarises a row's wall times.
type stats struct{ median, min, max float64 }

func summarise(xs []float64) stats {
	if len(xs) == 0 {
		return stats{}
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stats{median: m, min: s[0], max: s[len(s)-1]}
}

func (r *Row) walls() stats {
	var xs []float64
	for _, s := range r.Samples {
		xs = append(xs, s.Wall)
	}
	return summarise(xs)
}

// median of any per-sample figure.
func (r *Row) median(f func(Sample) float64) float64 {
	var xs []float64
	for _, s := range r.Samples {
		xs = append(xs, f(s))
	}
	return summarise(xs).median
}

// max of any per-sample figure.
func (r *Row) max(f func(Sample) float64) float64 {
	var xs []float64
	for _, s := range r.Samples {
		xs = append(xs, f(s))
	}
	return summarise(xs).max
}

// find returns the row of a scenario and tool for a base and extension (or number of
// profiles), or nil.
func (res *Result) find(scenario, tool, base string, ext, profiles int) *Row {
	for _, r := range res.Rows {
		if r.Scenario == scenario && r.Tool == tool && r.Base == base && r.Ext == ext && r.Profiles == profiles {
			return r
		}
	}
	return nil
}

func (res *Result) row(scenario, tool string, b *Base, x *Ext, profiles int) *Row {
	r := &Row{Scenario: scenario, Tool: tool, Profiles: profiles}
	if b != nil {
		r.Base, r.BaseSize = b.Label, b.Filler
	}
	if x != nil {
		r.Ext, r.Added = x.ID, x.Bytes
	}
	res.Rows = append(res.Rows, r)
	return r
}

// sizeLabel is a size in SI units, as the scenarios are named: "5 MB", "1 GB".
func sizeLabel(n int64) string {
	switch {
	case n >= 1e9 && n%1e9 == 0:
		return fmt.Sprintf("%d GB", n/1e9)
	case n >= 1e6 && n%1e6 == 0:
		return fmt.Sprintf("%d MB", n/1e6)
	case n >= 1e3 && n%1e3 == 0:
		return fmt.Sprintf("%d kB", n/1e3)
	}
	return fmt.Sprintf("%d B", n)
}

// humanBytes is a measured size, SI units with one decimal.
func humanBytes(n int64) string {
	switch {
	case n < 0:
		return "-" + humanBytes(-n)
	case n < 1e3:
		return fmt.Sprintf("%d B", n)
	case n < 1e6:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	case n < 1e9:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	}
	return fmt.Sprintf("%.2f GB", float64(n)/1e9)
}

func ptr[T any](v T) *T { return &v }

// findStep returns the topology scenario's row of a step and tool, or nil.
func (res *Result) findStep(step, tool string) *Row {
	for _, r := range res.Rows {
		if r.Scenario == "topology" && r.Step == step && r.Tool == tool {
			return r
		}
	}
	return nil
}
