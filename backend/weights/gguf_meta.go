package weights

import (
	"fmt"
	"math"
	"sort"
)

// GGUF metadata value types, as stored in the file.
const (
	ggufUint8   uint32 = 0
	ggufInt8    uint32 = 1
	ggufUint16  uint32 = 2
	ggufInt16   uint32 = 3
	ggufUint32  uint32 = 4
	ggufInt32   uint32 = 5
	ggufFloat32 uint32 = 6
	ggufBool    uint32 = 7
	ggufString  uint32 = 8
	ggufArray   uint32 = 9
	ggufUint64  uint32 = 10
	ggufInt64   uint32 = 11
	ggufFloat64 uint32 = 12
)

// Metadata holds a GGUF file's key/values. Values keep their GGUF type as a Go type: uint8, int8, uint16,
// int16, uint32, int32, float32, bool, string, uint64, int64, float64; arrays as the matching slice
// ([]uint32, []string, ...) and arrays of arrays as []any whose elements are such slices.
type Metadata struct {
	Version uint32 // GGUF version (2 or 3)
	keys    []string
	vals    map[string]any
}

// KV is one GGUF metadata key/value, for WriteGGUF. Value takes the Go types Metadata documents.
type KV struct {
	Key   string
	Value any
}

// Has reports whether key is present.
func (m *Metadata) Has(key string) bool { _, ok := m.vals[key]; return ok }

// Get returns the raw value of key.
func (m *Metadata) Get(key string) (any, bool) { v, ok := m.vals[key]; return v, ok }

// Keys lists the keys in file order.
func (m *Metadata) Keys() []string { return append([]string(nil), m.keys...) }

func (m *Metadata) get(key string) (any, error) {
	v, ok := m.vals[key]
	if !ok {
		return nil, fmt.Errorf("gguf metadata: key %q not found", key)
	}
	return v, nil
}

func typeErr(key string, v any, want string) error {
	return fmt.Errorf("gguf metadata: key %q is %T, want %s", key, v, want)
}

// String returns a string value.
func (m *Metadata) String(key string) (string, error) {
	v, err := m.get(key)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", typeErr(key, v, "string")
	}
	return s, nil
}

// asInt64 converts any integer value to int64 (ok false for other types or a uint64 above MaxInt64).
func asInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case uint8:
		return int64(x), true
	case int8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case int16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint64:
		if x > math.MaxInt64 {
			return 0, false
		}
		return int64(x), true
	}
	return 0, false
}

// Uint returns an integer value of any integer type, which must not be negative.
func (m *Metadata) Uint(key string) (uint64, error) {
	v, err := m.get(key)
	if err != nil {
		return 0, err
	}
	if u, ok := v.(uint64); ok {
		return u, nil
	}
	i, ok := asInt64(v)
	if !ok {
		return 0, typeErr(key, v, "an integer")
	}
	if i < 0 {
		return 0, fmt.Errorf("gguf metadata: key %q is negative (%d)", key, i)
	}
	return uint64(i), nil
}

// Float returns a float32 or float64 value.
func (m *Metadata) Float(key string) (float64, error) {
	v, err := m.get(key)
	if err != nil {
		return 0, err
	}
	switch x := v.(type) {
	case float32:
		return float64(x), nil
	case float64:
		return x, nil
	}
	return 0, typeErr(key, v, "a float")
}

// Bool returns a bool value.
func (m *Metadata) Bool(key string) (bool, error) {
	v, err := m.get(key)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, typeErr(key, v, "bool")
	}
	return b, nil
}

// Strings returns an array of strings.
func (m *Metadata) Strings(key string) ([]string, error) {
	v, err := m.get(key)
	if err != nil {
		return nil, err
	}
	s, ok := v.([]string)
	if !ok {
		return nil, typeErr(key, v, "[]string")
	}
	return s, nil
}

// Int32s returns an array of integers of any type whose values all fit in int32.
func (m *Metadata) Int32s(key string) ([]int32, error) {
	v, err := m.get(key)
	if err != nil {
		return nil, err
	}
	if s, ok := v.([]int32); ok {
		return s, nil
	}
	conv := func(n int, at func(i int) (int64, bool)) ([]int32, error) {
		out := make([]int32, n)
		for i := range out {
			x, ok := at(i)
			if !ok || x < math.MinInt32 || x > math.MaxInt32 {
				return nil, fmt.Errorf("gguf metadata: key %q element %d does not fit int32", key, i)
			}
			out[i] = int32(x)
		}
		return out, nil
	}
	switch s := v.(type) {
	case []uint8:
		return conv(len(s), func(i int) (int64, bool) { return asInt64(s[i]) })
	case []int8:
		return conv(len(s), func(i int) (int64, bool) { return asInt64(s[i]) })
	case []uint16:
		return conv(len(s), func(i int) (int64, bool) { return asInt64(s[i]) })
	case []int16:
		return conv(len(s), func(i int) (int64, bool) { return asInt64(s[i]) })
	case []uint32:
		return conv(len(s), func(i int) (int64, bool) { return asInt64(s[i]) })
	case []int64:
		return conv(len(s), func(i int) (int64, bool) { return asInt64(s[i]) })
	case []uint64:
		return conv(len(s), func(i int) (int64, bool) { return asInt64(s[i]) })
	}
	return nil, typeErr(key, v, "an integer array")
}

// Float32s returns an array of float32 (a float64 array is converted).
func (m *Metadata) Float32s(key string) ([]float32, error) {
	v, err := m.get(key)
	if err != nil {
		return nil, err
	}
	switch s := v.(type) {
	case []float32:
		return s, nil
	case []float64:
		out := make([]float32, len(s))
		for i, x := range s {
			out[i] = float32(x)
		}
		return out, nil
	}
	return nil, typeErr(key, v, "a float array")
}

// SortedKeys lists the keys in sorted order.
func (m *Metadata) SortedKeys() []string {
	k := m.Keys()
	sort.Strings(k)
	return k
}
