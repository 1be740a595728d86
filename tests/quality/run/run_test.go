package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/omnikv"
)

func TestParseMode(t *testing.T) {
	for _, tc := range []struct {
		in      string
		layers  []int
		sel     omnikv.Selector
		budget  int
		wait    int
		enabled bool
		err     string
	}{
		{in: "dense"},
		{in: "last/512/2-8-18/1", layers: []int{2, 8, 18}, sel: omnikv.Last, budget: 512, wait: 1, enabled: true},
		{in: "sink_recent/2048/4-12/0", layers: []int{4, 12}, sel: omnikv.SinkRecent, budget: 2048, enabled: true},
		{in: "last/512/2-8-18", err: "want dense or"},
		{in: "nope/512/2-8-18/1", err: "unknown selector"},
		{in: "last/0/2-8-18/1", err: "budget"},
		{in: "last/512/18-8/1", err: "ascending"},
		{in: "last/512/2-40/1", err: "outside"},
		{in: "last/512/2-8/x", err: "wait layers"},
	} {
		m, err := parseMode(tc.in, 30)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want one containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		c := m.Cfg
		if c.Enabled != tc.enabled || (tc.enabled && (c.Selector != tc.sel || c.Budget.Tokens != tc.budget ||
			c.WaitLayers != tc.wait || len(c.FilterLayers) != len(tc.layers))) {
			t.Errorf("%q: config %+v", tc.in, c)
		}
	}
	if _, err := parseModes("last/512/2-8-18/1,dense", 30); err == nil {
		t.Error("modes not starting with dense were accepted")
	}
	if _, err := parseModes(defaultModes, 30); err != nil {
		t.Errorf("default modes: %v", err)
	}
}

func TestCommonPrefix(t *testing.T) {
	for _, tc := range []struct {
		a, b []int32
		want int
	}{
		{[]int32{1, 2, 3}, []int32{1, 2, 3}, 3},
		{[]int32{1, 2, 3}, []int32{1, 5, 3}, 1},
		{[]int32{4}, []int32{1}, 0},
		{nil, []int32{1}, 0},
	} {
		if got := commonPrefix(tc.a, tc.b); got != tc.want {
			t.Errorf("commonPrefix(%v, %v) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestTable(t *testing.T) {
	rs := []result{
		{ID: "a", Length: 2048, Mode: "dense", Tokens: []int32{1, 2, 3, 4}, Agree: 4, Correct: true},
		{ID: "a", Length: 2048, Mode: "last/128/2-8-18/1", Tokens: []int32{1, 2, 9, 9}, Agree: 2},
		{ID: "b", Length: 4096, Mode: "dense", Tokens: []int32{1, 2, 3, 4}, Agree: 4, Correct: true},
		{ID: "b", Length: 4096, Mode: "last/128/2-8-18/1", Tokens: []int32{1, 2, 3, 4}, Agree: 4, Correct: true},
	}
	var sb strings.Builder
	if err := writeTable(&sb, rs); err != nil {
		t.Fatal(err)
	}
	want := "| last/128/2-8-18/1 | 0% (0/1) | 100% (1/1) | 50% (1/2) | 75.0% | 50% (1/2) |"
	if !strings.Contains(sb.String(), want) {
		t.Errorf("table\n%s\nlacks row\n%s", sb.String(), want)
	}
}

func TestPickInterleaves(t *testing.T) {
	var all []sample
	for _, L := range []int{2048, 4096} {
		for i := 0; i < 3; i++ {
			all = append(all, sample{ID: string(rune('a'+i)) + "-" + string(rune('0'+L/2048)), Length: L})
		}
	}
	got, err := pick(all, "", 2)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range got {
		ids = append(ids, s.ID)
	}
	if strings.Join(ids, ",") != "a-1,a-2,c-1,c-2" {
		t.Errorf("pick = %v, want a-1,a-2,c-1,c-2", ids)
	}
	if got, _ := pick(all, "4096", 0); len(got) != 3 || got[0].Length != 4096 {
		t.Errorf("pick by length: %+v", got)
	}
}

func TestReadResultsDedupes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "r.jsonl")
	lines := `{"id":"a","mode":"dense","correct":true}
{"id":"a","mode":"dense","correct":false}
{"id":"a","mode":"last/128/2-8-18/1"}
`
	if err := os.WriteFile(p, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	rs, err := readResults([]string{p})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || !rs[0].Correct {
		t.Errorf("read %+v: want 2 results, the first dense line kept", rs)
	}
	if err := os.WriteFile(p, []byte("{bad\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readResults([]string{p}); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("bad line: error %v, want one naming line 1", err)
	}
}

func TestHasNumber(t *testing.T) {
	for _, tc := range []struct {
		text, num string
		want      bool
	}{
		{"The secret number is 66823.", "66823", true},
		{"66823", "66823", true},
		{"The number is 668233.", "66823", false},
		{"4448000000", "44480", false},
		{"1 66823x and 166823", "66823", true},
		{"no digits", "66823", false},
	} {
		if got := hasNumber(tc.text, tc.num); got != tc.want {
			t.Errorf("hasNumber(%q, %q) = %v, want %v", tc.text, tc.num, got, tc.want)
		}
	}
}
