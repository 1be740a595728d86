package cpu

import (
	"fmt"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
)

// kvStore is a KV store's storage on the CPU device: one chunk of memory per page holding, for each of the
// store's layers, the page's keys then its values. The device and host tiers are RAM; the mapped tier maps
// each page's chunk from a file (kvfile_unix.go).
type kvStore struct {
	spec   compute.KVSpec
	layers int
	tier   compute.Tier
	half   int         // values in one layer's keys of one page: PageTokens*KVDim
	p16    [][]uint16  // (pages) (layers, 2, PageTokens, KVDim) when the cache is fp16
	p32    [][]float32 // (pages) (layers, 2, PageTokens, KVDim) when the cache is fp32
	file   *kvFile     // TierMapped
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
	st := &kvStore{spec: spec, layers: layers, tier: tier, half: spec.PageTokens * spec.KVDim}
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
	per := 2 * st.layers * st.half // values per page chunk
	for i := 0; i < pages; i++ {
		if st.file != nil {
			b, err := st.file.grow(per * s.Spec.DType.Bytes())
			if err != nil {
				return err
			}
			if s.Spec.DType == compute.KVF32 {
				st.p32 = append(st.p32, bytesAs[float32](b))
			} else {
				st.p16 = append(st.p16, bytesAs[uint16](b))
			}
		} else if s.Spec.DType == compute.KVF32 {
			st.p32 = append(st.p32, make([]float32, per))
		} else {
			st.p16 = append(st.p16, make([]uint16, per))
		}
		s.Pages++
	}
	return nil
}

func (st *kvStore) free() {
	if st.file != nil {
		st.file.close()
		st.file = nil
	}
	st.p16, st.p32 = nil, nil
}

// MappedBytes returns the size of a mapped store's backing file (0 for other tiers).
func MappedBytes(s *compute.KVStore) int64 {
	if st, ok := s.Handle.(*kvStore); ok && st.file != nil {
		return st.file.size
	}
	return 0
}

// k16 returns layer l's keys of page p (PageTokens, KVDim); v16 its values; k32 and v32 the same for fp32.
func (st *kvStore) k16(p, l int) []uint16  { return st.p16[p][2*l*st.half : (2*l+1)*st.half] }
func (st *kvStore) v16(p, l int) []uint16  { return st.p16[p][(2*l+1)*st.half : (2*l+2)*st.half] }
func (st *kvStore) k32(p, l int) []float32 { return st.p32[p][2*l*st.half : (2*l+1)*st.half] }
func (st *kvStore) v32(p, l int) []float32 { return st.p32[p][(2*l+1)*st.half : (2*l+2)*st.half] }
func (st *kvStore) fp32() bool             { return st.spec.DType == compute.KVF32 }

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
			copy(st.k32(p, layer)[off:off+kvDim], kr)
			copy(st.v32(p, layer)[off:off+kvDim], vr)
			continue
		}
		cvtF32ToF16(st.k16(p, layer)[off:off+kvDim], kr)
		cvtF32ToF16(st.v16(p, layer)[off:off+kvDim], vr)
	}
}

// ReadKV copies layer l's keys and values of the given slots to host memory (tests and tools): row i of k
// and v (len(slots), KVDim) as float32.
func ReadKV(s *compute.KVStore, layer int, slots []int32, k, v []float32) {
	st := storeOf(s)
	kvDim, pt := st.spec.KVDim, st.spec.PageTokens
	for i, slot := range slots {
		p, off := int(slot)/pt, int(slot)%pt*kvDim
		if st.fp32() {
			copy(k[i*kvDim:(i+1)*kvDim], st.k32(p, layer)[off:off+kvDim])
			copy(v[i*kvDim:(i+1)*kvDim], st.v32(p, layer)[off:off+kvDim])
			continue
		}
		cvtF16Rows(k[i*kvDim:], st.k16(p, layer)[off:], kvDim, 1, kvDim)
		cvtF16Rows(v[i*kvDim:], st.v16(p, layer)[off:], kvDim, 1, kvDim)
	}
}
