package compute

import (
	"errors"
	"strings"
	"testing"
)

func TestParseDeviceName(t *testing.T) {
	for _, tc := range []struct {
		in       string
		kind     string
		ordinal  int
		wantFail bool
	}{
		{"cpu", "cpu", 0, false}, {"CUDA:3", "cuda", 3, false}, {" cuda ", "cuda", 0, false},
		{"", "", 0, true}, {":1", "", 0, true}, {"cuda:x", "", 0, true}, {"cuda:-1", "", 0, true},
	} {
		kind, ord, err := ParseDeviceName(tc.in)
		if (err != nil) != tc.wantFail || kind != tc.kind || ord != tc.ordinal {
			t.Errorf("ParseDeviceName(%q) = %q, %d, %v", tc.in, kind, ord, err)
		}
	}
}

func TestOpen(t *testing.T) {
	Register("test-kind", func(ordinal int) (Device, error) {
		if ordinal > 0 {
			return nil, errors.New("only one")
		}
		return nil, nil
	})
	Unavailable("test-missing", "not built in here")
	if _, err := Open("test-kind:0"); err != nil {
		t.Errorf("Open(test-kind:0): %v", err)
	}
	for name, want := range map[string]string{
		"test-kind:2":  "only one",
		"test-missing": "not built in here",
		"nope":         `unknown kind "nope"`,
		"test-kind:?":  "ordinal",
	} {
		if _, err := Open(name); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), strings.Split(name, ":")[0]) {
			t.Errorf("Open(%q) = %v, want an error naming %q", name, err, want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("registering a kind twice did not panic")
		}
	}()
	Register("test-kind", nil)
}
