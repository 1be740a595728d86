package cpu

import (
	"bytes"
	"hash/crc32"
	"runtime"
	"sync"
	"weak"

	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

// Packed weights are shared between the devices of one process: Triton loads one model per instance, each
// with its own Device, and the file's memory-mapped pages used to be shared between them by the page
// cache. The cache holds weak pointers, so a packed weight is freed once no bound weight uses it, and an
// entry is reused only after its bytes were compared with the new tensor's.

type packKey struct {
	typ        weights.DType
	rows, cols int
	sum        uint32 // CRC-32C of the row-major bytes
}

var packCache = struct {
	sync.Mutex
	m map[packKey]weak.Pointer[packedWeight]
}{m: map[packKey]weak.Pointer[packedWeight]{}}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// packShared returns the packed form of w (rows, cols) of type t: one already made in this process for
// the same bytes, or a new one.
func packShared(w []byte, t weights.DType, rows, cols int) (*packedWeight, error) {
	rb, err := t.RowBytes(cols)
	if err != nil || len(w) < rows*rb {
		return packWeight(w, t, rows, cols) // reports the error
	}
	key := packKeyOf(w[:rows*rb], t, rows, cols)
	packCache.Lock()
	defer packCache.Unlock()
	if p := packCache.m[key].Value(); p != nil && p.matches(w) {
		return p, nil
	}
	p, err := packWeight(w, t, rows, cols)
	if err != nil {
		return nil, err
	}
	packCache.m[key] = weak.Make(p)
	runtime.AddCleanup(p, func(k packKey) {
		packCache.Lock()
		if packCache.m[k].Value() == nil {
			delete(packCache.m, k)
		}
		packCache.Unlock()
	}, key)
	return p, nil
}

func packKeyOf(w []byte, t weights.DType, rows, cols int) packKey {
	return packKey{t, rows, cols, crc32.Checksum(w, castagnoli)}
}

// matches reports whether p is the packed form of w (row-major GGML blocks of p's type and shape).
func (p *packedWeight) matches(w []byte) bool {
	rb, _ := p.typ.RowBytes(p.cols)
	if len(w) < p.rows*rb {
		return false
	}
	tile, nb := packedTileBytes(p.typ), p.cols/32
	var buf [packRows * q8_0Bytes]byte // the largest tile
	for g := 0; g < p.rows/packRows; g++ {
		for b := 0; b < nb; b++ {
			packTile(buf[:tile], w, p.typ, rb, g, b)
			if !bytes.Equal(buf[:tile], p.data[(g*nb+b)*tile:(g*nb+b+1)*tile]) {
				return false
			}
		}
	}
	return true
}
