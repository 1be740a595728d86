package main

import (
	"os"
	"runtime"
	"strings"
)

// cpuInfo returns the CPU model name and the instruction-set flags the kernel reports (Linux
// /proc/cpuinfo). Elsewhere it returns GOARCH and no flags, and only the pure-Go probes run.
func cpuInfo() (model string, flags map[string]bool) {
	model, flags = runtime.GOARCH, map[string]bool{}
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return model, flags
	}
	gotModel, gotFlags := false, false
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "model name":
			if !gotModel {
				model, gotModel = strings.TrimSpace(v), true
			}
		case "flags":
			if !gotFlags {
				for _, f := range strings.Fields(v) {
					flags[f] = true
				}
				gotFlags = true
			}
		}
	}
	return model, flags
}

// memTotal returns the machine's RAM in bytes from /proc/meminfo, or 0 when unknown.
func memTotal() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			var kb uint64
			for _, c := range strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")) {
				if c < '0' || c > '9' {
					return 0
				}
				kb = kb*10 + uint64(c-'0')
			}
			return kb * 1024
		}
	}
	return 0
}
