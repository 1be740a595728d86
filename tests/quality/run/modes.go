package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/omnikv-triton/omnikv-triton/backend/omnikv"
)

// defaultModes are the modes of docs/quality.md: dense, OmniKV (selector last, filter layers 2,8,18 of 30,
// wait 1) at three budgets, and the sink_recent baseline at the largest budget.
const defaultModes = "dense,last/128/2-8-18/1,last/512/2-8-18/1,last/2048/2-8-18/1,sink_recent/2048/2-8-18/1"

// mode is one decoding configuration.
type mode struct {
	Name string        // as written on the command line
	Cfg  omnikv.Config // Enabled false: dense
}

// parseMode reads "dense" or SELECTOR/BUDGET/LAYERS/WAIT, e.g. "last/512/2-8-18/1" (layers joined by '-').
func parseMode(s string, layers int) (mode, error) {
	s = strings.TrimSpace(s)
	if s == "dense" {
		return mode{Name: s}, nil
	}
	f := strings.Split(s, "/")
	if len(f) != 4 {
		return mode{}, fmt.Errorf("mode %q: want dense or SELECTOR/BUDGET/LAYERS/WAIT (e.g. last/512/2-8-18/1)", s)
	}
	sel, err := omnikv.ParseSelector(f[0])
	if err != nil {
		return mode{}, fmt.Errorf("mode %q: %w", s, err)
	}
	b, err := omnikv.ParseBudget(f[1])
	if err != nil {
		return mode{}, fmt.Errorf("mode %q: %w", s, err)
	}
	fl, err := omnikv.ParseLayers(strings.ReplaceAll(f[2], "-", ","))
	if err != nil {
		return mode{}, fmt.Errorf("mode %q: %w", s, err)
	}
	wait, err := strconv.Atoi(f[3])
	if err != nil {
		return mode{}, fmt.Errorf("mode %q: wait layers %q: %w", s, f[3], err)
	}
	c := omnikv.Config{Enabled: true, FilterLayers: fl, WaitLayers: wait, Selector: sel, Budget: b, Window: 16}
	if err := c.Validate(layers); err != nil {
		return mode{}, fmt.Errorf("mode %q: %w", s, err)
	}
	return mode{Name: s, Cfg: c}, nil
}

func parseModes(list string, layers int) ([]mode, error) {
	var out []mode
	seen := map[string]bool{}
	for _, s := range strings.Split(list, ",") {
		m, err := parseMode(s, layers)
		if err != nil {
			return nil, err
		}
		if seen[m.Name] {
			return nil, fmt.Errorf("mode %q given twice", m.Name)
		}
		seen[m.Name] = true
		out = append(out, m)
	}
	if len(out) == 0 || out[0].Name != "dense" {
		return nil, fmt.Errorf("modes %q: the first mode must be dense (agreement is measured against it)", list)
	}
	return out, nil
}

// commonPrefix returns how many leading tokens a and b share.
func commonPrefix(a, b []int32) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}
