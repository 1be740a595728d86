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
	MaxPages int // pages of one layer's worth each; 0 = unlimited
}

// Pool hands out pages. It is safe for concurrent use.
type Pool struct {
	dev compute.Device
	cfg Config

	mu    sync.Mutex
	free  []*compute.KVPage
	inUse int // pages handed out
	made  int // pages ever allocated
}

// NewPool returns an empty pool; pages are allocated on first use and recycled after.
func NewPool(dev compute.Device, cfg Config) (*Pool, error) {
	if cfg.Layers <= 0 || cfg.KVDim <= 0 || cfg.PageSize <= 0 {
		return nil, fmt.Errorf("kv cache: invalid config %+v", cfg)
	}
	return &Pool{dev: dev, cfg: cfg}, nil
}

// Config returns the pool's configuration.
func (p *Pool) Config() Config { return p.cfg }

// PageBytes is the memory of one page (keys and values).
func (p *Pool) PageBytes() int { return 2 * p.cfg.PageSize * p.cfg.KVDim * p.cfg.DType.Bytes() }

// InUse returns the number of pages handed out.
func (p *Pool) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inUse
}

func (p *Pool) get(n int) ([]*compute.KVPage, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cfg.MaxPages > 0 && p.inUse+n > p.cfg.MaxPages {
		return nil, fmt.Errorf("%w: need %d, %d of %d in use", ErrNoMemory, n, p.inUse, p.cfg.MaxPages)
	}
	out := make([]*compute.KVPage, n)
	for i := range out {
		if k := len(p.free); k > 0 {
			out[i] = p.free[k-1]
			p.free = p.free[:k-1]
			continue
		}
		out[i] = p.dev.NewKVPage(p.cfg.PageSize, p.cfg.KVDim, p.cfg.DType)
		p.made++
	}
	p.inUse += n
	return out, nil
}

func (p *Pool) put(pages []*compute.KVPage) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.free = append(p.free, pages...)
	p.inUse -= len(pages)
}

// Sequence is one sequence's cache: for each layer, its pages in token order.
type Sequence struct {
	pool  *Pool
	pages [][]*compute.KVPage // (layer, page)
	len   int                 // tokens stored
	max   int                 // capacity limit in tokens
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
	pages, err := s.pool.get(add * len(s.pages))
	if err != nil {
		return err
	}
	for l := range s.pages {
		s.pages[l] = append(s.pages[l], pages[l*add:(l+1)*add]...)
	}
	return nil
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
		s.pool.put(ps)
		s.pages[l] = ps[:0]
	}
	s.len = 0
}
