// Package tags formats and parses image tags of the WSO2 scheme and decides which
// tags an image publishes. It is pure: no I/O, no registry access.
//
// The scheme, with ubuntu images carrying no OS suffix:
//
//	WUM era:  {version}[.{wum-timestamp}[.{release}]][-{os}{osVersion}]
//	U2:       {version}.{level}[.{release}][-{os}{osVersion}]
//
// A WUM timestamp is a 13-digit millisecond epoch; a U2 level is a small number, and
// level 0 ("{version}.0") is WSO2's floating "latest level" tag.
package tags

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Kind says which kind of update a tag names.
type Kind int

const (
	// None: the tag names a version only ("5.8.0", "5.8.0-alpine3.10"); it floats.
	None Kind = iota
	// WUM: a WUM-era update, named by its 13-digit millisecond timestamp.
	WUM
	// Level: a U2 update level; level 0 is the floating "latest level".
	Level
)

func (k Kind) String() string {
	switch k {
	case WUM:
		return "wum"
	case Level:
		return "level"
	default:
		return "none"
	}
}

// wumDigits is the length of a WUM timestamp: milliseconds since the epoch, which has
// 13 digits from 2001 to 2286.
const wumDigits = 13

// maxLevelDigits bounds a U2 level so that a truncated WUM timestamp is not taken for one.
const maxLevelDigits = 4

// Tag is one tag of the WSO2 scheme.
type Tag struct {
	// Version is the product version, three dotted numbers ("5.8.0").
	Version string
	// Kind says which of WUM and Level is set.
	Kind Kind
	// WUM is the WUM timestamp (milliseconds since the epoch) when Kind is WUM.
	WUM int64
	// Level is the U2 update level when Kind is Level; 0 means "the latest level".
	Level int
	// Release is the docker release number; 0 means none.
	Release int
	// OS is the base OS ("alpine", "centos", …); "" means ubuntu, which has no suffix.
	OS string
	// OSVersion follows the OS name in the suffix ("3.10" in "-alpine3.10"); may be "".
	OSVersion string
}

// ParseError says why a string is not a tag of the WSO2 scheme.
type ParseError struct {
	Tag    string
	Reason string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("tag %q is not a WSO2 tag: %s", e.Tag, e.Reason)
}

// Unique reports whether the tag names exactly one build: a WUM timestamp or an update
// level of at least 1. Unique tags are never moved to another digest.
func (t Tag) Unique() bool {
	return (t.Kind == WUM && t.WUM > 0) || (t.Kind == Level && t.Level > 0)
}

// Time is the moment a WUM update was released, or the zero time for other tags.
func (t Tag) Time() time.Time {
	if t.Kind != WUM {
		return time.Time{}
	}
	return time.UnixMilli(t.WUM).UTC()
}

// Suffix is the OS part of the tag including its dash, or "" for ubuntu.
func (t Tag) Suffix() string {
	if t.OS == "" || t.OS == "ubuntu" {
		return ""
	}
	return "-" + t.OS + t.OSVersion
}

// String formats the tag. Parse(t.String()) gives t back for every valid tag.
func (t Tag) String() string {
	var b strings.Builder
	b.WriteString(t.Version)
	switch t.Kind {
	case WUM:
		b.WriteString("." + strconv.FormatInt(t.WUM, 10))
	case Level:
		b.WriteString("." + strconv.Itoa(t.Level))
	}
	if t.Release > 0 && t.Unique() {
		b.WriteString("." + strconv.Itoa(t.Release))
	}
	b.WriteString(t.Suffix())
	return b.String()
}

// Validate checks the fields of a tag built by hand (from a profile, say) the way Parse
// checks a string, so that a formatted tag always parses back to itself.
func (t Tag) Validate() error {
	fail := func(format string, args ...any) error {
		return &ParseError{Tag: t.String(), Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case t.Release < 0:
		return fail("release %d is negative", t.Release)
	case t.Release > 0 && !t.Unique():
		return fail("a release needs a WUM timestamp or an update level of at least 1")
	case t.Kind == WUM && len(strconv.FormatInt(t.WUM, 10)) != wumDigits:
		return fail("a WUM timestamp has %d digits, found %d", wumDigits, len(strconv.FormatInt(t.WUM, 10)))
	case t.OS == "ubuntu" && t.OSVersion != "":
		return fail("ubuntu images carry no OS suffix, so an OS version cannot be shown")
	}
	back, err := Parse(t.String())
	if err != nil {
		return err
	}
	norm := t
	if norm.OS == "ubuntu" {
		norm.OS = ""
	}
	if back != norm {
		// The fields run into each other when formatted: version "4.7" with level 3.
		return fail("it reads back as version %q, not %q", back.Version, t.Version)
	}
	return nil
}

// Parse reads a tag of the WSO2 scheme, rejecting anything else with a reason.
func Parse(s string) (Tag, error) {
	fail := func(format string, args ...any) (Tag, error) {
		return Tag{}, &ParseError{Tag: s, Reason: fmt.Sprintf(format, args...)}
	}
	if s == "" {
		return fail("empty")
	}
	if len(s) > 128 {
		return fail("longer than the 128 characters a registry tag may have")
	}
	var t Tag
	head, suffix, hasSuffix := strings.Cut(s, "-")

	parts := strings.Split(head, ".")
	if len(parts) < 3 {
		return fail("the version needs three dotted numbers (major.minor.patch), found %d part(s)", len(parts))
	}
	if len(parts) > 5 {
		return fail("too many dotted parts (%d): at most version (3), update and release", len(parts))
	}
	for i, p := range parts {
		if err := checkNumber(p); err != "" {
			return fail("part %d %q %s", i+1, p, err)
		}
	}
	t.Version = strings.Join(parts[:3], ".")

	if len(parts) >= 4 {
		u := parts[3]
		switch {
		case len(u) == wumDigits:
			t.Kind = WUM
			t.WUM, _ = strconv.ParseInt(u, 10, 64)
		case len(u) <= maxLevelDigits:
			t.Kind = Level
			t.Level, _ = strconv.Atoi(u)
		default:
			return fail("update part %q: a WUM timestamp has %d digits and a U2 level at most %d, found %d", u, wumDigits, maxLevelDigits, len(u))
		}
	}
	if hasSuffix {
		os, osVersion, err := parseSuffix(suffix)
		if err != "" {
			return fail("%s", err)
		}
		t.OS, t.OSVersion = os, osVersion
	}
	if len(parts) == 5 {
		r, err := strconv.Atoi(parts[4])
		if err != nil {
			return fail("release %q is out of range", parts[4])
		}
		if r == 0 {
			return fail("release 0 is written by leaving the release out")
		}
		if !t.Unique() {
			return fail("a release needs a WUM timestamp or an update level of at least 1, found level 0")
		}
		t.Release = r
	}
	return t, nil
}

// checkNumber returns why p is not a canonical decimal number, or "".
func checkNumber(p string) string {
	if p == "" {
		return "is empty"
	}
	for _, c := range p {
		if c < '0' || c > '9' {
			return "is not a number"
		}
	}
	if len(p) > 1 && p[0] == '0' {
		return "has a leading zero"
	}
	return ""
}

// parseSuffix splits "alpine3.10" into ("alpine", "3.10"), or returns why it cannot.
func parseSuffix(s string) (os, version, reason string) {
	if s == "" {
		return "", "", "the OS suffix after '-' is empty"
	}
	i := 0
	for i < len(s) && s[i] >= 'a' && s[i] <= 'z' {
		i++
	}
	os, version = s[:i], s[i:]
	if os == "" {
		return "", "", fmt.Sprintf("the OS suffix %q does not start with an OS name", s)
	}
	if os == "ubuntu" {
		return "", "", "ubuntu images carry no OS suffix"
	}
	if version != "" {
		for _, p := range strings.Split(version, ".") {
			if err := checkNumber(p); err != "" {
				return "", "", fmt.Sprintf("the OS version %q in suffix %q: part %q %s", version, s, p, err)
			}
		}
	}
	return os, version, ""
}

// Published is one tag an image is pushed under.
type Published struct {
	Tag string `json:"tag"`
	// Unique tags name one build and never move; floating ones follow the newest build.
	Unique bool `json:"unique"`
}

// Publish lists the tags an image built for update u is published under: first the
// unique tag, then the floating ones. u must be unique (see Tag.Unique).
//
//	WUM:  5.8.0.1565855673150[.3][-alpine3.10] (unique), 5.8.0[-alpine3.10]
//	U2:   4.2.0.15[.2][-alpine] (unique), 4.2.0.0[-alpine] ("latest level")
//
// A tag without a release and one with a release are both unique, so one never floats
// over the other.
func Publish(u Tag) ([]Published, error) {
	if err := u.Validate(); err != nil {
		return nil, err
	}
	if !u.Unique() {
		return nil, &ParseError{Tag: u.String(), Reason: "an image is published under a unique update (a WUM timestamp or a level of at least 1)"}
	}
	floating := Tag{Version: u.Version, OS: u.OS, OSVersion: u.OSVersion}
	if u.Kind == Level {
		floating.Kind = Level // {version}.0
	}
	return []Published{
		{Tag: u.String(), Unique: true},
		{Tag: floating.String(), Unique: false},
	}, nil
}

// Compare orders tags of one version and OS by what they name: the newer update first
// decides (a WUM timestamp or a U2 level), then the higher release. It returns -1 when a
// is older than b, 0 when they name the same update and release, +1 when a is newer.
// Tags of different kinds compare by their numbers, which never happens within one
// repository's version and OS.
func Compare(a, b Tag) int {
	switch {
	case a.WUM != b.WUM:
		return cmp(a.WUM, b.WUM)
	case a.Level != b.Level:
		return cmp(int64(a.Level), int64(b.Level))
	default:
		return cmp(int64(a.Release), int64(b.Release))
	}
}

func cmp(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// SortNewest sorts tags newest first (see Compare).
func SortNewest(ts []Tag) {
	sort.SliceStable(ts, func(i, j int) bool { return Compare(ts[i], ts[j]) > 0 })
}
