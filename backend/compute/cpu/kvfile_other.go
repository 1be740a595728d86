//go:build !unix

package cpu

import (
	"errors"
	"unsafe"
)

// kvFile: memory-mapped KV stores need a unix host.
type kvFile struct{ size int64 }

func newKVFile(string) (*kvFile, error) {
	return nil, errors.New("kv file store: memory-mapped offload needs a unix host")
}

func (*kvFile) grow(int) ([]byte, error) { return nil, errors.New("kv file store: unavailable") }
func (*kvFile) close()                   {}

func anonBlock(int) ([]byte, func()) { return nil, nil }

func bytesAs[T uint16 | float32](b []byte) []T {
	var z T
	return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), len(b)/int(unsafe.Sizeof(z)))
}
