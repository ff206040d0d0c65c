package build

import (
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/wso2img/wso2img/profiles"
)

// ociPrefix marks the labels a vendor's base sets about its own image; inherited, they
// would describe ours wrongly, so they are dropped.
const ociPrefix = "org.opencontainers.image."

// ImageConfig is the config of the built image for one platform: the base's config
// (entrypoint, command, working dir, environment with WSO2_SERVER_HOME) with the
// profile's user, ports, environment and labels, and one history entry for the layer.
func ImageConfig(plan *Plan, platform string) (*v1.ConfigFile, error) {
	base, ok := plan.Configs[platform]
	if !ok {
		return nil, fmt.Errorf("profile %q: no base config for %s", plan.Profile.Name, platform)
	}
	cf := base.DeepCopy()
	created := v1.Time{Time: plan.Created}
	cf.Created = created
	cf.Config.User = fmt.Sprintf("%d:%d", plan.UID, plan.GID)

	cf.Config.ExposedPorts = map[string]struct{}{}
	for _, p := range plan.Ports {
		cf.Config.ExposedPorts[strconv.Itoa(p)+"/tcp"] = struct{}{}
	}
	cf.Config.Env = mergeEnv(cf.Config.Env, plan.Env)

	labels := map[string]string{}
	for k, v := range cf.Config.Labels {
		if !strings.HasPrefix(k, ociPrefix) {
			labels[k] = v
		}
	}
	for k, v := range plan.Labels {
		labels[k] = v
	}
	for k, v := range plan.ImageLabels() {
		labels[k] = v
	}
	cf.Config.Labels = labels

	cf.History = append(cf.History, v1.History{
		Created:   created,
		CreatedBy: fmt.Sprintf("wso2img: add %d input(s) of profile %s as %d:%d under %s", len(plan.Inputs), plan.Profile.Name, plan.UID, plan.GID, plan.Home),
		Comment:   "wso2img",
	})
	// The exporter computes the layers; a stale list would only confuse it.
	cf.RootFS = v1.RootFS{Type: "layers", DiffIDs: base.RootFS.DiffIDs}
	return cf, nil
}

// ImageLabels are the labels wso2img computes for the plan's image. The rebuild ID
// excludes the release, so that an image republished under a new release still says
// what it is made of.
func (plan *Plan) ImageLabels() map[string]string {
	prof := plan.Profile
	l := map[string]string{
		profiles.LabelBaseName:      plan.Base.Ref,
		profiles.LabelBaseDigest:    plan.Base.Digest,
		profiles.LabelCreated:       plan.Created.UTC().Format(time.RFC3339),
		profiles.LabelVersion:       plan.Tags[0].Tag,
		profiles.LabelProduct:       prof.Product,
		profiles.LabelProductVer:    prof.Version,
		profiles.LabelProfile:       prof.Name,
		profiles.LabelProfileDigest: prof.Digest(),
		profiles.LabelRebuildID:     plan.RebuildID,
	}
	if prof.Update.WUM != 0 {
		l[profiles.LabelWUM] = strconv.FormatInt(prof.Update.WUM, 10)
	} else {
		l[profiles.LabelLevel] = strconv.Itoa(prof.Update.Level)
	}
	if plan.Source != "" {
		l[profiles.LabelSource] = plan.Source
	}
	if plan.Revision != "" {
		l[profiles.LabelRevision] = plan.Revision
	}
	return l
}

// mergeEnv sets the profile's variables over the base's, keeping the base's order and
// appending new ones sorted, so the result is the same on every run.
func mergeEnv(base []string, set map[string]string) []string {
	out := make([]string, 0, len(base)+len(set))
	done := map[string]bool{}
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if v, ok := set[k]; ok {
			kv = k + "=" + v
			done[k] = true
		}
		out = append(out, kv)
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		if !done[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, k+"="+set[k])
	}
	return out
}

// gitSource finds where a profile lives in git: its origin (without credentials) and
// the commit checked out. Both are "" outside git or without the git command.
func gitSource(ctx context.Context, dir string) (source, revision string) {
	if dir == "" {
		return "", ""
	}
	run := func(args ...string) string {
		out, err := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...).Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	revision = run("rev-parse", "HEAD")
	if revision == "" {
		return "", ""
	}
	source = run("config", "--get", "remote.origin.url")
	if u, err := url.Parse(source); err == nil && u.User != nil {
		u.User = nil
		source = u.String()
	}
	return source, revision
}
