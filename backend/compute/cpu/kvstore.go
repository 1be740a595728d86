package cpu

import (
	"fmt"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
)

// kvStore is a KV store's storage on the CPU device: per layer, its pages' keys and values, each page a
// (PageTokens, KVDim) view. Every GrowKVStore call allocates, per layer, one contiguous block for the keys
// of the new pages and one for their values, so that a layer's pages, which a sequence mostly gets in a row,
// lie in a row in memory and attention streams through them. The device and host tiers are RAM; the mapped
// tier maps each call's blocks from a file (kvfile_unix.go).
type kvStore struct {
	spec     compute.KVSpec
	layers   int
	tier     compute.Tier
	half     int           // values in one layer's keys of one page: PageTokens*KVDim
	k16, v16 [][][]uint16  // (layers, pages) (PageTokens, KVDim) when the cache is fp16
	k32, v32 [][][]float32 // (layers, pages) (PageTokens, KVDim) when the cache is fp32
	file     *kvFile       // TierMapped
	unmap    []func()      // anonymous mappings of the device and host tiers
	chunks   []kvChunk     // one per GrowKVStore call, in page order
}

// kvChunk is the memory of one GrowKVStore call: pages [first, first+pages) of every layer, laid out
// (layers, 2, pages, PageTokens, KVDim): layer l's keys of the chunk's pages, then its values.
type kvChunk struct {
	first, pages int
	mem          []byte // the chunk's bytes; nil when they are on the Go heap
	fileOff      int64  // TierMapped: the offset of mem in the store's file
}

// storeOf returns the storage of a store made by a CPU device.
func storeOf(s *compute.KVStore) *kvStore {
	st, ok := s.Handle.(*kvStore)
	if !ok {
		panic(fmt.Sprintf("cpu: KV store (%d layers, %v) is not a CPU store, or was freed", s.Layers, s.Tier))
	}
	return st
}

// NewKVStore implements compute.Device.
func (*Device) NewKVStore(spec compute.KVSpec, layers int, tier compute.Tier, opt compute.StoreOptions) (*compute.KVStore, error) {
	if spec.PageTokens <= 0 || spec.KVDim <= 0 || layers <= 0 {
		return nil, fmt.Errorf("cpu: KV store of %d layers, %d tokens per page, KV dim %d", layers, spec.PageTokens, spec.KVDim)
	}
	st := &kvStore{spec: spec, layers: layers, tier: tier, half: spec.PageTokens * spec.KVDim,
		k16: make([][][]uint16, layers), v16: make([][][]uint16, layers), k32: make([][][]float32, layers), v32: make([][][]float32, layers)}
	switch tier {
	case compute.TierDevice, compute.TierHost:
	case compute.TierMapped:
		f, err := newKVFile(opt.Dir)
		if err != nil {
			return nil, err
		}
		st.file = f
	default:
		return nil, fmt.Errorf("cpu: KV store tier %v", tier)
	}
	return &compute.KVStore{Spec: spec, Layers: layers, Tier: tier, Handle: st}, nil
}

// GrowKVStore implements compute.Device.
func (*Device) GrowKVStore(s *compute.KVStore, pages int) error {
	st := storeOf(s)
	if pages <= 0 {
		return nil
	}
	n := pages * st.half // values in one layer's keys (or values) of the new pages
	var b16 []uint16
	var b32 []float32
	chunk := kvChunk{first: s.Pages, pages: pages}
	if st.file != nil {
		chunk.fileOff = st.file.size
		b, err := st.file.grow(2 * st.layers * n * s.Spec.DType.Bytes())
		if err != nil {
			return err
		}
		chunk.mem = b
		if s.Spec.DType == compute.KVF32 {
			b32 = bytesAs[float32](b)
		} else {
			b16 = bytesAs[uint16](b)
		}
	} else if b, unmap := anonBlock(2 * st.layers * n * s.Spec.DType.Bytes()); b != nil {
		st.unmap = append(st.unmap, unmap)
		chunk.mem = b
		if s.Spec.DType == compute.KVF32 {
			b32 = bytesAs[float32](b)
		} else {
			b16 = bytesAs[uint16](b)
		}
	} else if s.Spec.DType == compute.KVF32 {
		b32 = make([]float32, 2*st.layers*n)
	} else {
		b16 = make([]uint16, 2*st.layers*n)
	}
	for l := 0; l < st.layers; l++ {
		for i := 0; i < pages; i++ {
			k, v := (2*l)*n+i*st.half, (2*l+1)*n+i*st.half
			if b32 != nil {
				st.k32[l] = append(st.k32[l], b32[k:k+st.half:k+st.half])
				st.v32[l] = append(st.v32[l], b32[v:v+st.half:v+st.half])
			} else {
				st.k16[l] = append(st.k16[l], b16[k:k+st.half:k+st.half])
				st.v16[l] = append(st.v16[l], b16[v:v+st.half:v+st.half])
			}
		}
	}
	st.chunks = append(st.chunks, chunk)
	s.Pages += pages
	return nil
}

func (st *kvStore) free() {
	if st.file != nil {
		st.file.close()
		st.file = nil
	}
	for _, f := range st.unmap {
		f()
	}
	st.unmap, st.chunks = nil, nil
	for l := range st.k16 {
		st.k16[l], st.v16[l], st.k32[l], st.v32[l] = nil, nil, nil, nil
	}
}

// kh returns layer l's keys of page p (PageTokens, KVDim) of an fp16 store; vh its values; kf and vf the
// same for fp32.
func (st *kvStore) kh(p, l int) []uint16  { return st.k16[l][p] }
func (st *kvStore) vh(p, l int) []uint16  { return st.v16[l][p] }
func (st *kvStore) kf(p, l int) []float32 { return st.k32[l][p] }
func (st *kvStore) vf(p, l int) []float32 { return st.v32[l][p] }
func (st *kvStore) fp32() bool            { return st.spec.DType == compute.KVF32 }

// WriteKV implements compute.Device.
func (*Device) WriteKV(s *compute.KVStore, layer int, k, v *compute.Tensor, slots []int32) {
	st := storeOf(s)
	kvDim, pt := st.spec.KVDim, st.spec.PageTokens
	if k.Cols != kvDim || v.Cols != kvDim || len(slots) > k.Rows || len(slots) > v.Rows || layer < 0 || layer >= st.layers {
		panic(fmt.Sprintf("cpu write kv: k (%d, %d), v (%d, %d), %d slots, layer %d of a store of %d layers with KV dim %d",
			k.Rows, k.Cols, v.Rows, v.Cols, len(slots), layer, st.layers, kvDim))
	}
	for i, slot := range slots {
		if slot < 0 {
			continue
		}
		p, off := int(slot)/pt, int(slot)%pt*kvDim
		if p >= s.Pages {
			panic(fmt.Sprintf("cpu write kv: slot %d outside the store's %d pages", slot, s.Pages))
		}
		kr, vr := rowOf(k, i), rowOf(v, i)
		if st.fp32() {
			copy(st.kf(p, layer)[off:off+kvDim], kr)
			copy(st.vf(p, layer)[off:off+kvDim], vr)
			continue
		}
		cvtF32ToF16(st.kh(p, layer)[off:off+kvDim], kr)
		cvtF32ToF16(st.vh(p, layer)[off:off+kvDim], vr)
	}
}
