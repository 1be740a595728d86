package kvcache

import (
	"errors"
	"fmt"
	"sync"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
)

// ErrNoMemory is returned when the pool has no free page left under its limit.
var ErrNoMemory = errors.New("kv cache: out of pages")

// Config sizes a pool.
type Config struct {
	Layers   int
	KVDim    int // kvHeads * headDim
	PageSize int // tokens per page
	DType    compute.KVDType
	MaxPages int // resident pages (each one layer's worth); 0 = unlimited
	// Offload marks the layers whose KV lives in the offload tier (OmniKV's sparse layers); nil = none.
	Offload []bool // (layers)
	// Store allocates offload-tier pages; nil = host memory from the device.
	Store Store
}

// Store makes pages for the offload tier.
type Store interface {
	NewPage(page, kvDim int, dt compute.KVDType) (*compute.KVPage, error)
}

// Pool hands out pages. It is safe for concurrent use.
type Pool struct {
	dev compute.Device
	cfg Config

	mu    sync.Mutex
	tiers [2]tier // resident, offloaded
}

// tier is one memory tier's pages.
type tier struct {
	free  []*compute.KVPage
	inUse int // pages handed out
	made  int // pages ever allocated
}

// NewPool returns an empty pool; pages are allocated on first use and recycled after.
func NewPool(dev compute.Device, cfg Config) (*Pool, error) {
	if cfg.Layers <= 0 || cfg.KVDim <= 0 || cfg.PageSize <= 0 {
		return nil, fmt.Errorf("kv cache: invalid config %+v", cfg)
	}
	if cfg.Offload != nil && len(cfg.Offload) != cfg.Layers {
		return nil, fmt.Errorf("kv cache: offload plan has %d layers, the cache %d", len(cfg.Offload), cfg.Layers)
	}
	return &Pool{dev: dev, cfg: cfg}, nil
}

// Config returns the pool's configuration.
func (p *Pool) Config() Config { return p.cfg }

// PageBytes is the memory of one page (keys and values).
func (p *Pool) PageBytes() int { return 2 * p.cfg.PageSize * p.cfg.KVDim * p.cfg.DType.Bytes() }

// InUse returns the number of pages handed out, both tiers.
func (p *Pool) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tiers[0].inUse + p.tiers[1].inUse
}

// Resident returns the number of resident pages handed out (dense layers and staging).
func (p *Pool) Resident() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tiers[0].inUse
}

// Offloaded returns the number of offload-tier pages handed out.
func (p *Pool) Offloaded() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tiers[1].inUse
}

func (p *Pool) offloaded(layer int) bool { return p.cfg.Offload != nil && p.cfg.Offload[layer] }

// get hands out n pages of a tier.
func (p *Pool) get(n int, off bool) ([]*compute.KVPage, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := &p.tiers[0]
	if off {
		t = &p.tiers[1]
	} else if p.cfg.MaxPages > 0 && t.inUse+n > p.cfg.MaxPages {
		return nil, fmt.Errorf("%w: need %d, %d of %d in use", ErrNoMemory, n, t.inUse, p.cfg.MaxPages)
	}
	out := make([]*compute.KVPage, n)
	for i := range out {
		if k := len(t.free); k > 0 {
			out[i] = t.free[k-1]
			t.free = t.free[:k-1]
			continue
		}
		if off && p.cfg.Store != nil {
			pg, err := p.cfg.Store.NewPage(p.cfg.PageSize, p.cfg.KVDim, p.cfg.DType)
			if err != nil {
				t.free = append(t.free, out[:i]...)
				return nil, fmt.Errorf("kv cache: offload store: %w", err)
			}
			out[i] = pg
		} else {
			out[i] = p.dev.NewKVPage(p.cfg.PageSize, p.cfg.KVDim, p.cfg.DType)
		}
		t.made++
	}
	t.inUse += n
	return out, nil
}

func (p *Pool) put(pages []*compute.KVPage, off bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := &p.tiers[0]
	if off {
		t = &p.tiers[1]
	}
	t.free = append(t.free, pages...)
	t.inUse -= len(pages)
}

// Sequence is one sequence's cache: for each layer, its pages in token order.
type Sequence struct {
	pool    *Pool
	pages   [][]*compute.KVPage // (layer, page)
	staging []*compute.KVPage   // resident pages lent by NewStaging
	len     int                 // tokens stored
	max     int                 // capacity limit in tokens

	// Aux is state the forward pass keeps per sequence (OmniKV's selections and staging); Release clears it.
	Aux any
}

// NewSequence returns an empty sequence that may grow to maxTokens; page tables are sized for maxTokens up
// front so that growing never copies them.
func (p *Pool) NewSequence(maxTokens int) *Sequence {
	s := &Sequence{pool: p, pages: make([][]*compute.KVPage, p.cfg.Layers), max: maxTokens}
	per := (maxTokens + p.cfg.PageSize - 1) / p.cfg.PageSize
	for l := range s.pages {
		s.pages[l] = make([]*compute.KVPage, 0, per)
	}
	return s
}

// Len returns the number of tokens stored.
func (s *Sequence) Len() int { return s.len }

// Max returns the capacity limit in tokens.
func (s *Sequence) Max() int { return s.max }

// Pages returns layer l's pages (valid until the next Reserve or Release).
func (s *Sequence) Pages(l int) []*compute.KVPage { return s.pages[l] }

// PageSize returns tokens per page.
func (s *Sequence) PageSize() int { return s.pool.cfg.PageSize }

// Reserve makes room for n more tokens, adding pages to every layer as needed.
func (s *Sequence) Reserve(n int) error {
	need := s.len + n
	if need > s.max {
		return fmt.Errorf("kv cache: %d tokens exceed the sequence's limit of %d", need, s.max)
	}
	ps := s.pool.cfg.PageSize
	have := len(s.pages[0])
	want := (need + ps - 1) / ps
	if want <= have {
		return nil
	}
	add := want - have
	for _, off := range []bool{false, true} {
		layers := 0
		for l := range s.pages {
			if s.pool.offloaded(l) == off {
				layers++
			}
		}
		if layers == 0 {
			continue
		}
		pages, err := s.pool.get(add*layers, off)
		if err != nil {
			if off { // give back the resident pages taken above: Reserve is all or nothing
				for l := range s.pages {
					if !s.pool.offloaded(l) {
						s.pool.put(s.pages[l][have:], false)
						s.pages[l] = s.pages[l][:have]
					}
				}
			}
			return err
		}
		i := 0
		for l := range s.pages {
			if s.pool.offloaded(l) == off {
				s.pages[l] = append(s.pages[l], pages[i*add:(i+1)*add]...)
				i++
			}
		}
	}
	return nil
}

// NewStaging lends resident pages for n tokens that stay with the sequence until Release.
func (s *Sequence) NewStaging(n int) ([]*compute.KVPage, error) {
	ps := s.pool.cfg.PageSize
	pages, err := s.pool.get((n+ps-1)/ps, false)
	if err != nil {
		return nil, err
	}
	s.staging = append(s.staging, pages...)
	return pages, nil
}

// Commit records that n reserved tokens were written.
func (s *Sequence) Commit(n int) { s.len += n }

// Truncate forgets tokens beyond n (pages are kept for reuse by this sequence).
func (s *Sequence) Truncate(n int) {
	if n < s.len {
		s.len = n
	}
}

// Release returns every page to the pool; the sequence is empty afterwards.
func (s *Sequence) Release() {
	for l, ps := range s.pages {
		s.pool.put(ps, s.pool.offloaded(l))
		s.pages[l] = ps[:0]
	}
	s.pool.put(s.staging, false)
	s.staging, s.len, s.Aux = nil, 0, nil
}

// PagesHeld returns the number of pages the sequence holds (every layer, staging included).
func (s *Sequence) PagesHeld() int {
	n := len(s.staging)
	for _, ps := range s.pages {
		n += len(ps)
	}
	return n
}
