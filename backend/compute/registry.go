package compute

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Opener opens device number ordinal of a kind.
type Opener func(ordinal int) (Device, error)

var registry struct {
	sync.Mutex
	kinds map[string]Opener
	notes map[string]string // kinds known but not built in, with the reason
}

// Register makes a device kind available to Open. Implementations call it from init; only the devices
// package imports them, so that callers name a kind and never import an implementation.
func Register(kind string, open Opener) {
	registry.Lock()
	defer registry.Unlock()
	if registry.kinds == nil {
		registry.kinds = map[string]Opener{}
	}
	if _, dup := registry.kinds[kind]; dup {
		panic("compute: device kind " + kind + " registered twice")
	}
	registry.kinds[kind] = open
}

// Unavailable records a kind that this build knows of but cannot open, and why; Open reports the reason.
func Unavailable(kind, why string) {
	registry.Lock()
	defer registry.Unlock()
	if registry.notes == nil {
		registry.notes = map[string]string{}
	}
	registry.notes[kind] = why
}

// Kinds lists the registered device kinds.
func Kinds() []string {
	registry.Lock()
	defer registry.Unlock()
	var ks []string
	for k := range registry.kinds {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// ParseDeviceName splits "kind" or "kind:ordinal" (ordinal 0 when absent).
func ParseDeviceName(name string) (kind string, ordinal int, err error) {
	kind, ord, has := strings.Cut(strings.TrimSpace(name), ":")
	kind = strings.ToLower(kind)
	if kind == "" {
		return "", 0, fmt.Errorf("device %q: empty kind", name)
	}
	if has {
		ordinal, err = strconv.Atoi(ord)
		if err != nil || ordinal < 0 {
			return "", 0, fmt.Errorf("device %q: ordinal %q is not a non-negative integer", name, ord)
		}
	}
	return kind, ordinal, nil
}

// Open opens a device by name: "cpu", or a kind and an ordinal such as "cuda:0".
func Open(name string) (Device, error) {
	kind, ordinal, err := ParseDeviceName(name)
	if err != nil {
		return nil, err
	}
	registry.Lock()
	open, ok := registry.kinds[kind]
	why, known := registry.notes[kind]
	registry.Unlock()
	if !ok {
		if known {
			return nil, fmt.Errorf("device %q: %s", name, why)
		}
		return nil, fmt.Errorf("device %q: unknown kind %q (this build has %s)", name, kind, strings.Join(Kinds(), ", "))
	}
	d, err := open(ordinal)
	if err != nil {
		return nil, fmt.Errorf("device %q: %w", name, err)
	}
	return d, nil
}
