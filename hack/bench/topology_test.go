//go:build linux

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/wso2img/wso2img/internal/netfault"
)

func TestParseBandwidth(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  string
	}{
		{in: "100Mbit", want: 12_500_000},
		{in: "100Mbit/s", want: 12_500_000},
		{in: "100mbps", want: 12_500_000},
		{in: " 1Gbit ", want: 125_000_000},
		{in: "512kbit", want: 64_000},
		{in: "12.5MB", want: 12_500_000},
		{in: "800bit", want: 100},
		{in: "0", want: 0},
		{in: "unlimited", want: 0},
		{in: "100", err: "want a number and a unit"},
		{in: "12.5MB/s", want: 12_500_000},
		{in: "Mbit", err: "want a number and a unit"},
		{in: "-5Mbit", err: "want a number and a unit"},
		{in: "1.2.3Mbit", err: "is not a positive number"},
		{in: "10furlongs", err: "unknown unit \"furlongs\""},
		{in: "4bit", err: "less than a byte a second"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseBandwidth(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("parseBandwidth(%q) = %d, %v; want an error containing %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("parseBandwidth(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestShapeText(t *testing.T) {
	for _, tc := range []struct {
		s    netfault.Shape
		want string
	}{
		{netfault.Shape{Up: 12_500_000, Down: 12_500_000, RTT: 20 * time.Millisecond}, "100 Mbit/s each way, 20ms round trip"},
		{netfault.Shape{Up: 1_250_000, Down: 12_500_000, RTT: time.Millisecond}, "100 Mbit/s down, 10 Mbit/s up, 1ms round trip"},
		{netfault.Shape{}, "unlimited each way, 0s round trip"},
	} {
		if got := shapeText(tc.s); got != tc.want {
			t.Errorf("shapeText(%+v) = %q, want %q", tc.s, got, tc.want)
		}
	}
}

// TestLinkSeconds: the link floor the report quotes is bytes over the bandwidth toward
// the clients, and none for an unlimited link.
func TestLinkSeconds(t *testing.T) {
	tp := &Topology{Down: 12_500_000}
	if got := tp.linkSeconds(501_000_000); got < 40.07 || got > 40.09 {
		t.Errorf("501 MB at 100 Mbit/s: %.3f s, want 40.08", got)
	}
	if got := (&Topology{}).linkSeconds(1e9); got != 0 {
		t.Errorf("unlimited link: %v s, want 0", got)
	}
}
