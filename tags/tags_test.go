package tags_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wso2img/wso2img/tags"
)

func TestParseValid(t *testing.T) {
	for _, tc := range []struct {
		in     string
		want   tags.Tag
		unique bool
	}{
		// WUM era, from WSO2.md.
		{"5.8.0", tags.Tag{Version: "5.8.0"}, false},
		{"5.8.0-alpine3.10", tags.Tag{Version: "5.8.0", OS: "alpine", OSVersion: "3.10"}, false},
		{"5.8.0.1567933846116", tags.Tag{Version: "5.8.0", Kind: tags.WUM, WUM: 1567933846116}, true},
		{"5.8.0.1565855673150.3-alpine3.10", tags.Tag{Version: "5.8.0", Kind: tags.WUM, WUM: 1565855673150, Release: 3, OS: "alpine", OSVersion: "3.10"}, true},
		{"5.11.0-centos", tags.Tag{Version: "5.11.0", OS: "centos"}, false},
		// U2.
		{"4.2.0.15", tags.Tag{Version: "4.2.0", Kind: tags.Level, Level: 15}, true},
		{"3.2.0.10-alpine", tags.Tag{Version: "3.2.0", Kind: tags.Level, Level: 10, OS: "alpine"}, true},
		{"4.7.0.0", tags.Tag{Version: "4.7.0", Kind: tags.Level}, false},
		{"7.3.0.0", tags.Tag{Version: "7.3.0", Kind: tags.Level}, false},
		{"4.2.0.15.2-alpine", tags.Tag{Version: "4.2.0", Kind: tags.Level, Level: 15, Release: 2, OS: "alpine"}, true},
		{"10.0.0.9999-rocky8", tags.Tag{Version: "10.0.0", Kind: tags.Level, Level: 9999, OS: "rocky", OSVersion: "8"}, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := tags.Parse(tc.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Errorf("Parse(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
			if got.Unique() != tc.unique {
				t.Errorf("Parse(%q).Unique() = %v, want %v", tc.in, got.Unique(), tc.unique)
			}
			if s := got.String(); s != tc.in {
				t.Errorf("round trip: %q formatted as %q", tc.in, s)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	for _, tc := range []struct {
		in, reason string
	}{
		{"", "empty"},
		{"latest", "three dotted numbers"},
		{"5.8", "three dotted numbers"},
		{"5..0", `part 2 "" is empty`},
		{"5.8.0.", `part 4 "" is empty`},
		{"5.8.x", "not a number"},
		{"05.8.0", "leading zero"},
		{"4.2.0.015", "leading zero"},
		{"5.8.0.156785567315", "13 digits"},   // 12 digits
		{"5.8.0.15678556731500", "13 digits"}, // 14 digits
		{"5.8.0.12345", "found 5"},
		{"5.8.0.1565855673150.0", "release 0"},
		{"4.7.0.0.2", "level 0"},
		{"5.8.0.1565855673150.3.1", "too many"},
		{"5.8.0-", "empty"},
		{"5.8.0-3.10", "does not start with an OS name"},
		{"5.8.0-ubuntu", "ubuntu images carry no OS suffix"},
		{"5.8.0-ubuntu18.04", "ubuntu"},
		{"5.8.0-alpine3..10", "is empty"},
		{"5.8.0-alpine3.10-rc1", "OS version"},
		{"5.8.0-Alpine", "does not start with an OS name"},
		{"sha256-0123456789abcdef.sig", "three dotted numbers"},
		{strings.Repeat("1", 129), "128"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			_, err := tags.Parse(tc.in)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded, want an error about %q", tc.in, tc.reason)
			}
			var pe *tags.ParseError
			if !errors.As(err, &pe) || pe.Tag != tc.in {
				t.Errorf("Parse(%q) error %v is not a *ParseError naming the tag", tc.in, err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("Parse(%q) = %q, want the reason to mention %q", tc.in, err, tc.reason)
			}
		})
	}
}

func TestTime(t *testing.T) {
	tag, err := tags.Parse("5.8.0.1565855673150")
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2019, 8, 15, 7, 54, 33, 150e6, time.UTC)
	if got := tag.Time(); !got.Equal(want) {
		t.Errorf("Time() = %v, want %v", got, want)
	}
	if lvl, _ := tags.Parse("4.2.0.15"); !lvl.Time().IsZero() {
		t.Errorf("a U2 tag has no time, got %v", lvl.Time())
	}
}

func TestPublish(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   tags.Tag
		want []tags.Published
	}{
		{
			name: "wum alpine with release",
			in:   tags.Tag{Version: "5.8.0", Kind: tags.WUM, WUM: 1565855673150, Release: 3, OS: "alpine", OSVersion: "3.10"},
			want: []tags.Published{{"5.8.0.1565855673150.3-alpine3.10", true}, {"5.8.0-alpine3.10", false}},
		},
		{
			name: "wum ubuntu",
			in:   tags.Tag{Version: "5.8.0", Kind: tags.WUM, WUM: 1567933846116, OS: "ubuntu"},
			want: []tags.Published{{"5.8.0.1567933846116", true}, {"5.8.0", false}},
		},
		{
			name: "u2",
			in:   tags.Tag{Version: "4.2.0", Kind: tags.Level, Level: 15},
			want: []tags.Published{{"4.2.0.15", true}, {"4.2.0.0", false}},
		},
		{
			name: "u2 alpine with release",
			in:   tags.Tag{Version: "3.2.0", Kind: tags.Level, Level: 10, Release: 2, OS: "alpine"},
			want: []tags.Published{{"3.2.0.10.2-alpine", true}, {"3.2.0.0-alpine", false}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tags.Publish(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("Publish = %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("Publish[%d] = %v, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestPublishRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   tags.Tag
		want string
	}{
		{"no update", tags.Tag{Version: "5.8.0"}, "unique update"},
		{"latest level", tags.Tag{Version: "4.7.0", Kind: tags.Level}, "unique update"},
		{"bad version", tags.Tag{Version: "4.7", Kind: tags.Level, Level: 3}, "reads back as version \"4.7.3\""},
		{"short version", tags.Tag{Version: "4", Kind: tags.Level, Level: 3}, "three dotted numbers"},
		{"bad os", tags.Tag{Version: "4.7.0", Kind: tags.Level, Level: 3, OS: "Alpine"}, "OS name"},
		{"short wum", tags.Tag{Version: "5.8.0", Kind: tags.WUM, WUM: 156585567315}, "13 digits"},
		{"ubuntu with version", tags.Tag{Version: "5.8.0", Kind: tags.WUM, WUM: 1565855673150, OS: "ubuntu", OSVersion: "18.04"}, "ubuntu"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tags.Publish(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Publish(%+v) = %v, want an error mentioning %q", tc.in, err, tc.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"5.8.0", "5.8.0-alpine3.10", "5.8.0.1565855673150.3-alpine3.10", "4.2.0.15", "4.7.0.0", "latest", "5.8.0-ubuntu", "1.2.3.4.5-a1.2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tag, err := tags.Parse(s)
		if err != nil {
			var pe *tags.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) returned %T, want *ParseError", s, err)
			}
			return
		}
		if got := tag.String(); got != s {
			t.Fatalf("Parse(%q) formats back as %q", s, got)
		}
		if err := tag.Validate(); err != nil {
			t.Fatalf("Parse(%q) = %+v, which does not validate: %v", s, tag, err)
		}
		if tag.Unique() {
			pub, err := tags.Publish(tag)
			if err != nil {
				t.Fatalf("Publish(%q): %v", s, err)
			}
			if pub[0].Tag != s || !pub[0].Unique {
				t.Fatalf("Publish(%q) first tag = %+v, want the unique tag itself", s, pub[0])
			}
			for _, p := range pub[1:] {
				ft, err := tags.Parse(p.Tag)
				if err != nil || ft.Unique() || p.Unique {
					t.Fatalf("Publish(%q) floating tag %+v does not parse as floating: %v", s, p, err)
				}
			}
		}
	})
}

func TestCompare(t *testing.T) {
	parse := func(s string) tags.Tag {
		tg, err := tags.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return tg
	}
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"5.8.0.1565855673150", "5.8.0.1567933846116", -1},
		{"5.8.0.1567933846116-alpine3.10", "5.8.0.1565855673150-alpine3.10", 1},
		{"5.8.0.1565855673150.2", "5.8.0.1565855673150.1", 1},
		{"5.8.0.1565855673150", "5.8.0.1565855673150", 0},
		{"4.2.0.15", "4.2.0.9", 1},
		{"4.2.0.9.3", "4.2.0.15", -1},
	} {
		if got := tags.Compare(parse(c.a), parse(c.b)); got != c.want {
			t.Errorf("Compare(%s, %s) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
	ts := []tags.Tag{parse("4.2.0.9"), parse("4.2.0.15.1"), parse("4.2.0.15")}
	tags.SortNewest(ts)
	if ts[0].String() != "4.2.0.15.1" || ts[2].String() != "4.2.0.9" {
		t.Errorf("SortNewest = %v", ts)
	}
}
