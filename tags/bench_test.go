package tags_test

import (
	"testing"

	"github.com/wso2img/wso2img/tags"
)

// benchTags are tags of every shape the scheme has, as `watch` meets them when it reads
// a base repository's tag list (which also holds tags outside the scheme).
var benchTags = []string{
	"5.8.0",
	"5.8.0-alpine3.10",
	"5.8.0.1565855673150",
	"5.8.0.1565855673150.3-alpine3.10",
	"4.2.0.0",
	"4.2.0.15",
	"4.2.0.15.2-alpine",
	"7.1.0.3-ubuntu",
	"latest",
	"sha256-2bbcc5338a29f68eae11b8251ac3c4c06a211e7fc9a747a73175db498445e5b3.sig",
}

// BenchmarkParse parses one tag of benchTags per iteration, valid or not: the cost of
// reading a repository's tag list is this times the number of tags.
func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_, _ = tags.Parse(benchTags[i%len(benchTags)])
		i++
	}
}

// BenchmarkPublish turns a unique update into the tags an image is published under.
func BenchmarkPublish(b *testing.B) {
	u := tags.Tag{Version: "5.8.0", Kind: tags.WUM, WUM: 1565855673150, Release: 3, OS: "alpine", OSVersion: "3.10"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tags.Publish(u); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRoundTrip formats a tag and parses it back, as the fuzz test checks.
func BenchmarkRoundTrip(b *testing.B) {
	u := tags.Tag{Version: "4.2.0", Kind: tags.Level, Level: 15, Release: 2, OS: "alpine"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tags.Parse(u.String()); err != nil {
			b.Fatal(err)
		}
	}
}
