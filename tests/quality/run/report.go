package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// readResults reads result files written by -out. A (sample, mode) pair seen twice (two runs appending to
// one file) counts once: the first line wins.
func readResults(paths []string) ([]result, error) {
	var out []result
	seen := map[[2]string]bool{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if strings.TrimSpace(line) == "" {
				continue
			}
			var r result
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				return nil, fmt.Errorf("%s line %d: %w", p, i+1, err)
			}
			if key := [2]string{r.ID, r.Mode}; !seen[key] {
				seen[key] = true
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// cell accumulates one mode's figures over some samples.
type cell struct {
	n, correct, exact int
	agree             float64 // sum of agree / decode length
}

func (c *cell) add(r result) {
	c.n++
	if r.Correct {
		c.correct++
	}
	if len(r.Tokens) > 0 {
		c.agree += float64(r.Agree) / float64(len(r.Tokens))
		if r.Agree == len(r.Tokens) {
			c.exact++
		}
	}
}

func pct(a, n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%% (%d/%d)", 100*float64(a)/float64(n), a, n)
}

// writeTable prints accuracy per mode and length, then agreement with dense (all lengths together).
func writeTable(w io.Writer, rs []result) error {
	var modes []string
	var lengths []int
	for _, r := range rs {
		if !slices.Contains(modes, r.Mode) {
			modes = append(modes, r.Mode)
		}
		if !slices.Contains(lengths, r.Length) {
			lengths = append(lengths, r.Length)
		}
	}
	slices.Sort(lengths)
	cells := map[string]map[int]*cell{}
	total := map[string]*cell{}
	for _, md := range modes {
		cells[md], total[md] = map[int]*cell{}, &cell{}
		for _, L := range lengths {
			cells[md][L] = &cell{}
		}
	}
	for _, r := range rs {
		cells[r.Mode][r.Length].add(r)
		total[r.Mode].add(r)
	}
	var sb strings.Builder
	sb.WriteString("| mode |")
	for _, L := range lengths {
		fmt.Fprintf(&sb, " acc %d |", L)
	}
	sb.WriteString(" acc all | agree w/ dense (prefix) | exact = dense |\n|---|")
	for range lengths {
		sb.WriteString("---|")
	}
	sb.WriteString("---|---|---|\n")
	for _, md := range modes {
		fmt.Fprintf(&sb, "| %s |", md)
		for _, L := range lengths {
			c := cells[md][L]
			fmt.Fprintf(&sb, " %s |", pct(c.correct, c.n))
		}
		t := total[md]
		agree := "-"
		if t.n > 0 {
			agree = fmt.Sprintf("%.1f%%", 100*t.agree/float64(t.n))
		}
		fmt.Fprintf(&sb, " %s | %s | %s |\n", pct(t.correct, t.n), agree, pct(t.exact, t.n))
	}
	_, err := io.WriteString(w, sb.String())
	return err
}
