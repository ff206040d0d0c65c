package profiles

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

//go:embed stock/*.yaml keys/*.pub
var stockFS embed.FS

// StockKeyPrefix marks a key embedded in wso2img: stock:wso2-registry.
const StockKeyPrefix = "stock:"

// StockKey returns an embedded public key by name ("wso2-registry": WSO2's registry
// image-signing key, see profiles/keys/README.md).
func StockKey(name string) ([]byte, bool) {
	b, err := stockFS.ReadFile("keys/" + name + ".pub")
	return b, err == nil
}

// stockFiles maps each stock profile's name to its YAML.
var stockFiles = func() map[string][]byte {
	m := map[string][]byte{}
	entries, err := fs.ReadDir(stockFS, "stock")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		data, err := stockFS.ReadFile("stock/" + e.Name())
		if err != nil {
			panic(err)
		}
		m[strings.TrimSuffix(e.Name(), ".yaml")] = data
	}
	return m
}()

// Stock is a stock profile: a starting point for one WSO2 product image, to be extended
// with an update and the files to add.
type Stock struct {
	Name string `json:"name"`
	// Profile holds the stock fields; it is not a complete profile (no update).
	Profile *Profile `json:"profile"`
}

// StockProfiles lists the stock profiles by name.
func StockProfiles() []Stock {
	names := make([]string, 0, len(stockFiles))
	for n := range stockFiles {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]Stock, len(names))
	for i, n := range names {
		p, err := decodeOne(&source{file: "stock:" + n, data: stockFiles[n]})
		if err != nil {
			panic(fmt.Sprintf("profiles: stock profile %s: %v", n, err))
		}
		p.Name = n
		out[i] = Stock{Name: n, Profile: p}
	}
	return out
}

// StockYAML returns a stock profile's YAML as shipped, comments included.
func StockYAML(name string) ([]byte, bool) {
	b, ok := stockFiles[name]
	return b, ok
}
