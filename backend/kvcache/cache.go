package kvcache

import (
	"errors"
	"fmt"
	"sync"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
)

// ErrNoMemory is returned when a reservation does not fit in a tier's budget (the error is a *BudgetError
// that says which tier, its budget and what is in use).
var ErrNoMemory = errors.New("kv cache: out of pages")

// DefaultFreeWatermark is the memory of free pages that MaybeTrim keeps when Config.FreeWatermarkBytes is 0:
// enough for the next few requests to start on warm pages (in fp16, about 2,900 tokens of SmolLM2-135M's
// cache, 512 of Llama-3-8B's), little enough that a server's memory returns to within it of its working set
// when sequences end.
const DefaultFreeWatermark = 64 << 20

// Config sizes a pool.
type Config struct {
	Layers   int
	KVDim    int // kvHeads * headDim
	PageSize int // tokens per page
	DType    compute.KVDType
	// ResidentBytes limits the memory of the resident tier's pages handed out to sequences (the resident
	// layers' pages and the offloaded layers' staging), in bytes; 0 = unlimited. Under a limit the pool
	// also keeps the tier's memory (pages handed out and free pages not trimmed) within it: pages of one
	// kind (block or staging) about to be backed again make it trim the other kind's free pages first.
	ResidentBytes int64
	// OffloadBytes limits the memory of the offload tier's pages handed out (the offloaded layers' pages, in
	// host RAM or in the memory-mapped file), in bytes; 0 = unlimited.
	OffloadBytes int64
	// MaxPages is the resident limit counted in layer pages (each one layer's page: PageBytes); 0 =
	// unlimited. When both it and ResidentBytes are set, the smaller limit holds.
	MaxPages int
	// FreeWatermarkBytes is the memory of free pages (both tiers) that MaybeTrim keeps; 0 =
	// DefaultFreeWatermark; negative = MaybeTrim keeps every free page.
	FreeWatermarkBytes int64
	// Offload marks the layers whose KV lives in the offload tier (OmniKV's sparse layers); nil = none.
	Offload []bool // (layers)
	// OffloadDir, when set, puts the offload tier in a memory-mapped file in this directory instead of host
	// RAM, so that a host can hold contexts beyond its memory.
	OffloadDir string
	// SparseResident keeps the offloaded layers' KV in device memory (OmniKV without offload): selection and
	// staging work as with offload, and the gather copies within the device. OffloadDir is then ignored.
	SparseResident bool
}

// Pool hands out KV pages of a device's stores. It is safe for concurrent use.
//
// Layers live in up to three stores made by the device: the resident layers in a device-tier store, the
// offloaded layers in a host- or file-tier store, and the offloaded layers' staging (the rows a sparse
// layer attends to, gathered from the offload tier) in a device-tier store. A sequence's block ids index
// the resident and the offloaded store alike (they grow in lockstep), so that one block table serves every
// layer; its staging has block ids of its own.
//
// Memory: a reservation must fit in its tiers' budgets, counted over the pages handed out (Config). Pages
// that sequences release go to free lists and are handed out again warm-first; Trim and MaybeTrim give the
// coldest free pages' memory back to the system (compute.Device.DiscardKVPages), and such pages are handed
// out only when no warm one is left (recommitted first), before the stores grow.
type Pool struct {
	dev  compute.Device
	cfg  Config
	spec compute.KVSpec

	res, off, stage *compute.KVStore   // off and stage are nil without offloaded layers
	store           []*compute.KVStore // (layers) the store of each layer
	index           []int              // (layers) the layer's index within its store
	resLayers       int
	offLayers       int

	resBudget int64 // bytes; 0 = unlimited (ResidentBytes and MaxPages combined)
	offBudget int64 // bytes; 0 = unlimited

	mu         sync.Mutex
	blk        freeList        // free block ids of res/off
	stg        freeList        // free block ids of stage
	grown      int             // block ids of res/off ever made (both stores have at least this many pages)
	stageGrown int             // block ids of stage ever made
	blocks     int             // block ids handed out
	stageInUse int             // staging block ids handed out
	shared     map[int32]int32 // res/off block id -> holders beyond the first (Fork); absent = one holder
	tick       uint64          // releases so far: orders the free pages from cold to warm
	trimErr    error           // the first discard failure since Trim last returned
}

// NewPool creates the pool's stores through dev; pages are added on first use and recycled after.
func NewPool(dev compute.Device, cfg Config) (*Pool, error) {
	if cfg.Layers <= 0 || cfg.KVDim <= 0 || cfg.PageSize <= 0 {
		return nil, fmt.Errorf("kv cache: invalid config %+v", cfg)
	}
	if cfg.Offload != nil && len(cfg.Offload) != cfg.Layers {
		return nil, fmt.Errorf("kv cache: offload plan has %d layers, the cache %d", len(cfg.Offload), cfg.Layers)
	}
	if cfg.ResidentBytes < 0 || cfg.OffloadBytes < 0 || cfg.MaxPages < 0 {
		return nil, fmt.Errorf("kv cache: negative budget: resident %d bytes, offload %d bytes, %d pages",
			cfg.ResidentBytes, cfg.OffloadBytes, cfg.MaxPages)
	}
	p := &Pool{dev: dev, cfg: cfg, spec: compute.KVSpec{PageTokens: cfg.PageSize, KVDim: cfg.KVDim, DType: cfg.DType},
		store: make([]*compute.KVStore, cfg.Layers), index: make([]int, cfg.Layers),
		resBudget: cfg.ResidentBytes, offBudget: cfg.OffloadBytes}
	if b := int64(cfg.MaxPages) * int64(p.spec.PageBytes()); b > 0 && (p.resBudget == 0 || b < p.resBudget) {
		p.resBudget = b
	}
	for l := 0; l < cfg.Layers; l++ {
		if p.offloaded(l) {
			p.index[l] = p.offLayers
			p.offLayers++
		} else {
			p.index[l] = p.resLayers
			p.resLayers++
		}
	}
	var err error
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	if p.resLayers > 0 {
		if p.res, err = dev.NewKVStore(p.spec, p.resLayers, compute.TierDevice, compute.StoreOptions{}); err != nil {
			return nil, fmt.Errorf("kv cache: %w", err)
		}
	}
	if p.offLayers > 0 {
		tier := compute.TierHost
		switch {
		case cfg.SparseResident:
			tier = compute.TierDevice
		case cfg.OffloadDir != "":
			tier = compute.TierMapped
		}
		if p.off, err = dev.NewKVStore(p.spec, p.offLayers, tier, compute.StoreOptions{Dir: cfg.OffloadDir}); err != nil {
			return nil, fmt.Errorf("kv cache: offload tier: %w", err)
		}
		if p.stage, err = dev.NewKVStore(p.spec, p.offLayers, compute.TierDevice, compute.StoreOptions{}); err != nil {
			return nil, fmt.Errorf("kv cache: staging: %w", err)
		}
	}
	for l := range p.store {
		p.store[l] = p.res
		if p.offloaded(l) {
			p.store[l] = p.off
		}
	}
	return p, nil
}

// Close frees the pool's stores; no sequence may use it afterwards.
func (p *Pool) Close() {
	for _, s := range []*compute.KVStore{p.res, p.off, p.stage} {
		if s != nil {
			p.dev.Free(s)
		}
	}
	p.res, p.off, p.stage = nil, nil, nil
}

// Config returns the pool's configuration.
func (p *Pool) Config() Config { return p.cfg }

// Spec returns the shape of the pool's pages.
func (p *Pool) Spec() compute.KVSpec { return p.spec }

// Layer returns the store that holds layer l and the layer's index in it.
func (p *Pool) Layer(l int) (*compute.KVStore, int) { return p.store[l], p.index[l] }

// Staging returns the store of offloaded layer l's staging and the layer's index in it (nil when l is not
// offloaded).
func (p *Pool) Staging(l int) (*compute.KVStore, int) {
	if !p.offloaded(l) {
		return nil, 0
	}
	return p.stage, p.index[l]
}

// PageBytes is the memory of one layer's page (keys and values).
func (p *Pool) PageBytes() int { return p.spec.PageBytes() }

// InUse returns the number of layer pages handed out, both tiers and staging.
func (p *Pool) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.blocks*p.cfg.Layers + p.stageInUse*p.offLayers
}

// Resident returns the number of resident layer pages handed out (resident layers and staging).
func (p *Pool) Resident() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.resident()
}

func (p *Pool) resident() int { return p.blocks*p.resLayers + p.stageInUse*p.offLayers }

// Offloaded returns the number of offload-tier layer pages handed out.
func (p *Pool) Offloaded() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.blocks * p.offLayers
}

// MappedBytes is the size of the offload tier's pages when it is a memory-mapped file (else 0).
func (p *Pool) MappedBytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.off == nil || p.off.Tier != compute.TierMapped {
		return 0
	}
	return int64(p.off.Pages) * int64(p.offLayers*p.spec.PageBytes())
}

func (p *Pool) offloaded(layer int) bool { return p.cfg.Offload != nil && p.cfg.Offload[layer] }

// get hands out n block ids, of res/off or of stage: warm free ones first (the most recently freed), then
// trimmed ones (recommitted), then new ones (the stores grow); all or nothing.
func (p *Pool) get(n int, staging bool) ([]int32, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.fits(n, staging); err != nil {
		return nil, err
	}
	fl, stores, grown := &p.blk, []*compute.KVStore{p.res, p.off}, &p.grown
	if staging {
		fl, stores, grown = &p.stg, []*compute.KVStore{p.stage}, &p.stageGrown
	}
	warm := min(n, len(fl.warm))
	cold := min(n-warm, len(fl.trimmed))
	short := n - warm - cold
	p.makeRoom(staging, cold+short)
	revived := fl.trimmed[len(fl.trimmed)-cold:]
	if cold > 0 {
		for _, s := range stores {
			if s == nil {
				continue
			}
			if err := p.dev.RecommitKVPages(s, revived); err != nil {
				return nil, fmt.Errorf("kv cache: recommit %d pages of the %v store: %w", cold, s.Tier, err)
			}
		}
	}
	if short > 0 {
		// Every store grows to the same page count (a store that grew further in a call that failed
		// half-way keeps its extra pages); ids are handed out once all have them.
		target := *grown + short
		for _, s := range stores {
			if s == nil || s.Pages >= target {
				continue
			}
			if err := p.dev.GrowKVStore(s, target-s.Pages); err != nil {
				fl.rewarm(cold) // recommitted: backed again
				return nil, fmt.Errorf("kv cache: grow %v store by %d pages: %w", s.Tier, target-s.Pages, err)
			}
		}
	}
	out := make([]int32, 0, n)
	for i := len(fl.warm) - 1; i >= len(fl.warm)-warm; i-- {
		out = append(out, fl.warm[i].id)
	}
	fl.warm = fl.warm[:len(fl.warm)-warm]
	out = append(out, revived...)
	fl.trimmed = fl.trimmed[:len(fl.trimmed)-cold]
	for id := *grown; id < *grown+short; id++ { // lowest ids first
		out = append(out, int32(id))
	}
	*grown += short
	if staging {
		p.stageInUse += n
	} else {
		p.blocks += n
	}
	return out, nil
}

func (p *Pool) put(ids []int32, staging bool) {
	if len(ids) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tick++
	fl := &p.blk
	if staging {
		fl = &p.stg
		p.stageInUse -= len(ids)
	}
	for _, id := range ids {
		if !staging {
			if n := p.shared[id]; n > 0 { // another sequence still holds it
				if n == 1 {
					delete(p.shared, id)
				} else {
					p.shared[id] = n - 1
				}
				continue
			}
			p.blocks--
		}
		fl.warm = append(fl.warm, freePage{id: id, tick: p.tick})
	}
}

// Sequence is one sequence's cache: its block table (pages in token order, the same ids in every layer's
// store) and its staging blocks.
type Sequence struct {
	pool    *Pool
	blocks  []int32 // (pages) in token order
	staging []int32 // (pages) of the staging area, lent by ReserveStaging
	len     int     // tokens stored
	max     int     // capacity limit in tokens
	shared  int     // leading tokens whose pages another sequence shares (Fork)
}

// NewSequence returns an empty sequence that may grow to maxTokens; its block table is sized for
// maxTokens up front so that growing never copies it.
func (p *Pool) NewSequence(maxTokens int) *Sequence {
	return &Sequence{pool: p, max: maxTokens, blocks: make([]int32, 0, (maxTokens+p.cfg.PageSize-1)/p.cfg.PageSize)}
}

// Pool returns the sequence's pool.
func (s *Sequence) Pool() *Pool { return s.pool }

// Len returns the number of tokens stored.
func (s *Sequence) Len() int { return s.len }

// Max returns the capacity limit in tokens.
func (s *Sequence) Max() int { return s.max }

// PageSize returns tokens per page.
func (s *Sequence) PageSize() int { return s.pool.cfg.PageSize }

// Blocks returns the sequence's page ids in token order (valid until the next Reserve or Release).
func (s *Sequence) Blocks() []int32 { return s.blocks }

// StagingBlocks returns the page ids of the sequence's staging area.
func (s *Sequence) StagingBlocks() []int32 { return s.staging }

// Slot returns the store slot of token position pos (reserved).
func (s *Sequence) Slot(pos int) int32 {
	ps := s.pool.cfg.PageSize
	return s.blocks[pos/ps]*int32(ps) + int32(pos%ps)
}

// StagingSlot returns the store slot of staging position i.
func (s *Sequence) StagingSlot(i int) int32 {
	ps := s.pool.cfg.PageSize
	return s.staging[i/ps]*int32(ps) + int32(i%ps)
}

// Reserve makes room for n more tokens, adding pages to every layer as needed; all or nothing. Beyond a
// tier's budget it fails with a *BudgetError (errors.Is ErrNoMemory).
func (s *Sequence) Reserve(n int) error {
	need := s.len + n
	if need > s.max {
		return fmt.Errorf("kv cache: %d tokens exceed the sequence's limit of %d", need, s.max)
	}
	ps := s.pool.cfg.PageSize
	if add := (need+ps-1)/ps - len(s.blocks); add > 0 {
		ids, err := s.pool.get(add, false)
		if err != nil {
			return err
		}
		s.blocks = append(s.blocks, ids...)
	}
	return nil
}

// ReserveStaging makes the staging area hold at least n tokens of every offloaded layer; it stays with the
// sequence until Release. Beyond the resident budget it fails with a *BudgetError.
func (s *Sequence) ReserveStaging(n int) error {
	if s.pool.stage == nil {
		return fmt.Errorf("kv cache: no offloaded layers, no staging")
	}
	ps := s.pool.cfg.PageSize
	if add := (n+ps-1)/ps - len(s.staging); add > 0 {
		ids, err := s.pool.get(add, true)
		if err != nil {
			return err
		}
		s.staging = append(s.staging, ids...)
	}
	return nil
}

// Commit records that n reserved tokens were written.
func (s *Sequence) Commit(n int) { s.len += n }

// Truncate forgets tokens beyond n (pages are kept for reuse by this sequence). Tokens shared with
// another sequence (Fork) cannot be forgotten: they would be overwritten under it.
func (s *Sequence) Truncate(n int) {
	if n < s.shared {
		panic(fmt.Sprintf("kv cache: truncate to %d tokens below the %d shared with another sequence", n, s.shared))
	}
	if n < s.len {
		s.len = n
	}
}

// Shrink gives back the pages beyond what the stored tokens use (reserved for a turn that ended early) and
// the staging area: what an idle sequence needs is its tokens.
func (s *Sequence) Shrink() {
	ps := s.pool.cfg.PageSize
	if keep := (s.len + ps - 1) / ps; keep < len(s.blocks) {
		s.pool.put(s.blocks[keep:], false)
		s.blocks = s.blocks[:keep]
	}
	s.pool.put(s.staging, true)
	s.staging = nil
}

// Fork returns a new sequence, of capacity maxTokens, whose first tokens positions are this sequence's:
// it shares their pages (no copy; tokens must be a whole number of pages, at most Len()). Shared pages are
// read-only for both (neither may Truncate below them) and go back to the pool when the last holder
// releases them. The fork reserves its own pages for what it adds, and its own staging.
func (s *Sequence) Fork(tokens, maxTokens int) (*Sequence, error) {
	ps := s.pool.cfg.PageSize
	if tokens%ps != 0 || tokens > s.len || tokens > maxTokens {
		return nil, fmt.Errorf("kv cache: fork of %d tokens: not a whole number of %d-token pages within the %d stored (capacity %d)", tokens, ps, s.len, maxTokens)
	}
	f := s.pool.NewSequence(maxTokens)
	f.blocks = append(f.blocks, s.blocks[:tokens/ps]...)
	f.len, f.shared = tokens, tokens
	p := s.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shared == nil {
		p.shared = map[int32]int32{}
	}
	for _, id := range f.blocks {
		p.shared[id]++
	}
	s.shared = max(s.shared, tokens)
	return f, nil
}

// Release returns every page to the pool; the sequence is empty afterwards.
func (s *Sequence) Release() {
	s.pool.put(s.blocks, false)
	s.pool.put(s.staging, true)
	s.blocks, s.staging, s.len, s.shared = s.blocks[:0], nil, 0, 0
}

// PagesHeld returns the number of layer pages the sequence holds (every layer, staging included).
func (s *Sequence) PagesHeld() int {
	return len(s.blocks)*s.pool.cfg.Layers + len(s.staging)*s.pool.offLayers
}
