package build

import (
	"crypto/sha256"
	"encoding/hex"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client/llb"
)

// clearSpecialBits is the symbolic mode applied to every file of a directory input:
// wso2img never adds setuid, setgid or sticky bits.
const clearSpecialBits = "ug-s,-t"

// dirMode is the mode of every directory the layer creates.
const dirMode = 0o755

// Layer is the LLB of the one added layer and the host folders it reads. It is built on
// scratch, so that merging it onto the base (MergeOp) adds exactly one layer and never
// needs the base's layers.
type Layer struct {
	State llb.State
	// Locals maps each local source name in State to the host folder it reads: the
	// folders of the plan's verified copies (its stage), handed to the daemon through
	// the session. Nothing else on the host is read: not the profile's folder, not the
	// download cache.
	Locals map[string]string
}

// NewLayer generates the layer for a plan: every directory the inputs need (parents
// first), then every input, owned by the product user with the modes asked for, every
// timestamp at the update's time. It reads the inputs' verified copies (Input.Local).
func NewLayer(plan *Plan) Layer {
	epoch := plan.Created
	l := Layer{Locals: map[string]string{}}
	owner := &llb.ChownOpt{User: &llb.UserOpt{UID: plan.UID}, Group: &llb.UserOpt{UID: plan.GID}}
	var a actions

	for _, dir := range layerDirs(plan) {
		uid, gid := 0, 0
		if ownedByUser(dir, plan.Home) {
			uid, gid = plan.UID, plan.GID
		}
		a.mkdir(dir, llb.WithParents(false), llb.WithUIDGID(uid, gid), llb.WithCreatedTime(epoch))
	}

	// Files are read from their folders (a plan has one: its stage's files/): one local
	// source per folder, limited to the files this build needs.
	sources := map[string]llb.State{}
	var folders []string
	includes := map[string][]string{}
	named := map[string]bool{} // whether every file of the folder is named by its content
	for _, in := range plan.Inputs {
		if in.Dir {
			continue
		}
		folder := filepath.Dir(in.Local)
		if _, ok := includes[folder]; !ok {
			folders = append(folders, folder)
			named[folder] = true
		}
		includes[folder] = append(includes[folder], filepath.Base(in.Local))
		named[folder] = named[folder] && in.Digest != "" && filepath.Base(in.Local) == strings.TrimPrefix(in.Digest, "sha256:")
	}
	for _, folder := range folders {
		key := folderKey(folder)
		// The local name is what a run's shared session serves the folder under: derived
		// from what it holds, so that two plans' folders never take each other's name
		// unless they hold the same files.
		name := "files-" + key
		if named[folder] {
			key = "wso2img-files"
			name = "files-" + contentName(dedupe(includes[folder]))
		}
		sources[folder] = llb.Local(name, llb.IncludePatterns(dedupe(includes[folder])), llb.SharedKeyHint(key),
			llb.LocalUniqueID(key), llb.WithCustomName("verified input files"))
		l.Locals[name] = folder
	}

	for i, in := range plan.Inputs {
		if in.Dir {
			key := folderKey(in.Local)
			if in.Digest != "" {
				key = "wso2img-tree-" + strings.TrimPrefix(in.Digest, "sha256:")
			}
			name := "dir-" + key
			l.Locals[name] = in.Local
			src := llb.Local(name, llb.SharedKeyHint(key), llb.LocalUniqueID(key), llb.WithCustomNamef("inputs[%d] %s", i, in.Source))
			a.copy(src, "/", in.Dest, &llb.CopyInfo{
				CopyDirContentsOnly: true,
				Mode:                &llb.ChmodOpt{ModeStr: clearSpecialBits},
				ChownOpt:            owner,
				CreatedTime:         &epoch,
			})
			continue
		}
		a.copy(sources[filepath.Dir(in.Local)], "/"+filepath.Base(in.Local), in.Dest, &llb.CopyInfo{
			Mode:        &llb.ChmodOpt{Mode: in.Mode.Perm()},
			ChownOpt:    owner,
			CreatedTime: &epoch,
		})
	}

	staged := llb.Scratch().File(a.fa, llb.WithCustomNamef("add %d input(s) as %d:%d under %s", len(plan.Inputs), plan.UID, plan.GID, plan.Home))
	// Adding entries to a directory sets its mtime to now. Copying the staged tree once
	// more stamps every file and directory with the update's time, so the layer is
	// reproducible as BuildKit writes it: no exporter pass that decompresses and
	// recompresses it (rewrite-timestamp) is needed.
	l.State = llb.Scratch().File(llb.Copy(staged, "/", "/", &llb.CopyInfo{CopyDirContentsOnly: true, CreatedTime: &epoch}),
		llb.WithCustomName("set every timestamp to the update's time"))
	return l
}

// actions chains file actions into one FileOp: one vertex in the graph however many
// inputs a profile has.
type actions struct{ fa *llb.FileAction }

func (a *actions) mkdir(p string, opts ...llb.MkdirOption) {
	if a.fa == nil {
		a.fa = llb.Mkdir(p, dirMode, opts...)
	} else {
		a.fa = a.fa.Mkdir(p, dirMode, opts...)
	}
}

func (a *actions) copy(src llb.State, from, to string, info *llb.CopyInfo) {
	if a.fa == nil {
		a.fa = llb.Copy(src, from, to, info)
	} else {
		a.fa = a.fa.Copy(src, from, to, info)
	}
}

// Image is the image for one platform: the base, untouched and lazy, with the layer
// merged on top.
func (l Layer) Image(plan *Plan, platform string) llb.State {
	p := platforms.MustParse(platform)
	base := llb.Image(plan.Base.Pull, llb.Platform(p), llb.WithCustomNamef("base %s (%s)", plan.Base.Ref, platform))
	return llb.Merge([]llb.State{base, l.State}, llb.WithCustomName("merge the added layer onto the base"))
}

// layerDirs lists every directory the layer must hold, parents first: the product home
// (so that a profile without inputs still adds its one layer, and every image has the
// same shape), each input's destination folder, and all of their ancestors.
func layerDirs(plan *Plan) []string {
	set := map[string]bool{}
	addWithParents := func(d string) {
		for d != "/" && d != "." && !set[d] {
			set[d] = true
			d = path.Dir(d)
		}
	}
	addWithParents(plan.Home)
	for _, in := range plan.Inputs {
		if in.Dir {
			addWithParents(in.Dest)
		} else {
			addWithParents(path.Dir(in.Dest))
		}
	}
	dirs := make([]string, 0, len(set))
	for d := range set {
		dirs = append(dirs, d)
	}
	sort.Slice(dirs, func(i, j int) bool {
		// Parents before children: fewer slashes first, then by name.
		ci, cj := strings.Count(dirs[i], "/"), strings.Count(dirs[j], "/")
		if ci != cj {
			return ci < cj
		}
		return dirs[i] < dirs[j]
	})
	return dirs
}

// ownedByUser says whether a directory of the layer belongs to the product user: the
// product home and everything under it, and its ancestors below the top level (the
// user's own home, /home/wso2carbon). Top-level folders (/home, /opt) stay root's.
//
// A layer built on scratch carries its parent directories too, and a directory entry in
// an upper layer replaces the base's ownership of it, so this has to match the base: it
// does for every WSO2 image, whose product home lives in the product user's home.
func ownedByUser(dir, home string) bool {
	if dir == home || strings.HasPrefix(dir, home+"/") {
		return true
	}
	return strings.HasPrefix(home, dir+"/") && strings.Count(dir, "/") >= 2
}

// folderKey names a host folder for BuildKit's file-transfer cache (the local source's
// unique ID and shared-key hint), when its content has no name of its own. A plan's
// folders do: its files are named by their sha256 (one key for the folder), its
// directories by their tree digest (a key each). So the same plan marshals to the same
// graph, and since a key always names the same bytes, and the stage pins every file's
// time, a rebuild sends only what the daemon does not hold yet (BuildKit compares
// names, sizes and times, not content).
func folderKey(folder string) string {
	sum := sha256.Sum256([]byte(folder))
	return "wso2img-" + hex.EncodeToString(sum[:12])
}

// contentName names a folder by the content-addressed files taken from it.
func contentName(files []string) string {
	sum := sha256.Sum256([]byte(strings.Join(files, "\n")))
	return hex.EncodeToString(sum[:12])
}

func dedupe(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}
