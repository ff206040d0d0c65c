package fleet

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"strings"

	"github.com/wso2img/wso2img/build"
)

// Key is what placement hashes for a plan: its base digest and its platforms. Profiles
// on one base (and platforms) share the key, so they rank the builders alike and land
// on the daemon whose cache already holds that base's metadata and their common layers.
func Key(plan *build.Plan) string {
	ps := slices.Clone(plan.Platforms)
	slices.Sort(ps)
	return plan.Base.Digest + " " + strings.Join(ps, ",")
}

// Rank orders builders for key by rendezvous (highest-random-weight) hashing: each
// builder's weight is a hash of the key and its name, highest first. The order depends
// only on the key and the names, never on the list's order, so every run places a key
// alike; adding a builder moves only the keys that rank it first, and removing one
// moves only the keys that ranked it first.
func Rank(key string, builders []string) []string {
	out := slices.Clone(builders)
	w := make(map[string]uint64, len(out))
	for _, b := range out {
		w[b] = weight(key, b)
	}
	slices.SortFunc(out, func(a, b string) int {
		switch {
		case w[a] > w[b]:
			return -1
		case w[a] < w[b]:
			return 1
		}
		return strings.Compare(a, b)
	})
	return out
}

// weight is a builder's rendezvous weight for key: the first 8 bytes of a SHA-256 of
// both (a NUL keeps "ab"+"c" apart from "a"+"bc").
func weight(key, builder string) uint64 {
	h := sha256.New()
	h.Write([]byte(key))
	h.Write([]byte{0})
	h.Write([]byte(builder))
	return binary.BigEndian.Uint64(h.Sum(nil))
}
