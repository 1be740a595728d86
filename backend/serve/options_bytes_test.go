package serve

import (
	"strings"
	"testing"
)

func TestParseBytes(t *testing.T) {
	ram, err := physicalRAM()
	if err != nil {
		t.Skip(err)
	}
	for _, tc := range []struct {
		in   string
		want int64
		err  string
	}{
		{"0", 0, ""},
		{"1073741824", 1 << 30, ""},
		{"512MiB", 512 << 20, ""},
		{"1.5 GiB", 3 << 29, ""},
		{"2GB", 2e9, ""},
		{"64KiB", 64 << 10, ""},
		{"0.25", ram / 4, ""},
		{"25%", ram / 4, ""},
		{"1", 1, ""}, // one byte, not the whole RAM
		{"-5", 0, "is not a size"},
		{"lots", 0, "is not a size"},
		{"150%", 0, "not a percentage"},
		{"12XB", 0, "is not a size"},
	} {
		got, err := ParseBytes(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %v, want an error containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want && !(strings.Contains(tc.in, ".") || strings.Contains(tc.in, "%")) || abs(got-tc.want) > 1024 {
			t.Errorf("%q: %d %v, want %d", tc.in, got, err, tc.want)
		}
	}
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
