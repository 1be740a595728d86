package kvcache

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/compute/cpu"
)

// The pools of these tests: 4 layers (0 and 3 resident, 1 and 2 offloaded unless dense), KV dim 8, 4 tokens
// per page, fp16: a layer's page is 2*4*8*2 = 128 bytes; a block id is 256 resident bytes (dense: 512) and
// 256 offload bytes, a staging block id 256 resident bytes.
const pageB = 128

func budgetPool(t *testing.T, dense bool, cfg Config) *Pool {
	t.Helper()
	cfg.Layers, cfg.KVDim, cfg.PageSize, cfg.DType = 4, 8, 4, compute.KVF16
	if !dense {
		cfg.Offload = []bool{false, true, true, false}
	}
	p, err := NewPool(cpu.New(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// Each tier refuses exactly the first page beyond its budget, with an error that names the tier and the
// budget, matches ErrNoMemory and carries the numbers.
func TestBudgetPerTier(t *testing.T) {
	tests := []struct {
		name          string
		dense         bool
		cfg           Config
		tokens, stage int // reserved first: must fit exactly
		moreTokens    int // then: must fail
		moreStage     int
		tier          string
		budget, inUse int64
		need          int64
		never         bool
		text          string
	}{
		{name: "resident-blocks", dense: true, cfg: Config{ResidentBytes: 10 * 512}, tokens: 40, moreTokens: 1,
			tier: "resident", budget: 5120, inUse: 5120, need: 512, text: "resident KV budget exhausted: 5.0 KiB of 5.0 KiB (40 of 40 pages of 0.1 KiB) in use or reserved, this sequence needs 4 more pages (0.5 KiB)"},
		{name: "resident-staging", cfg: Config{ResidentBytes: 6 * 256}, tokens: 16, stage: 8, moreStage: 12,
			tier: "resident", budget: 1536, inUse: 1536, need: 256},
		{name: "max-pages", dense: true, cfg: Config{MaxPages: 12}, tokens: 12, moreTokens: 1,
			tier: "resident", budget: 12 * pageB, inUse: 12 * pageB, need: 512},
		{name: "max-pages-smaller-than-bytes", dense: true, cfg: Config{MaxPages: 12, ResidentBytes: 1 << 20}, tokens: 12, moreTokens: 1,
			tier: "resident", budget: 12 * pageB, inUse: 12 * pageB, need: 512},
		{name: "bytes-smaller-than-max-pages", dense: true, cfg: Config{MaxPages: 1000, ResidentBytes: 8 * pageB}, tokens: 8, moreTokens: 1,
			tier: "resident", budget: 8 * pageB, inUse: 8 * pageB, need: 512},
		{name: "offload", cfg: Config{OffloadBytes: 3 * 256, ResidentBytes: 1 << 20}, tokens: 12, stage: 4, moreTokens: 1,
			tier: "offload", budget: 768, inUse: 768, need: 256, text: "offload KV budget exhausted"},
		{name: "offload-not-staging", cfg: Config{OffloadBytes: 256}, tokens: 4, stage: 400, moreStage: 401,
			tier: "", budget: 0},
		{name: "never", dense: true, cfg: Config{ResidentBytes: 1024}, tokens: 0, moreTokens: 9,
			tier: "resident", budget: 1024, inUse: 0, need: 1536, never: true, text: "resident KV budget too small: 1.0 KiB (8 pages of 0.1 KiB), this sequence needs 12 more pages (1.5 KiB)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := budgetPool(t, tc.dense, tc.cfg)
			s := p.NewSequence(1000)
			if err := s.Reserve(tc.tokens); err != nil {
				t.Fatalf("Reserve(%d) within the budget: %v", tc.tokens, err)
			}
			s.Commit(tc.tokens)
			if tc.stage > 0 {
				if err := s.ReserveStaging(tc.stage); err != nil {
					t.Fatalf("ReserveStaging(%d) within the budget: %v", tc.stage, err)
				}
			}
			var err error
			if tc.moreTokens > 0 {
				err = s.Reserve(tc.moreTokens)
			} else {
				err = s.ReserveStaging(tc.moreStage)
			}
			if tc.tier == "" {
				if err != nil {
					t.Fatalf("a budget of another tier refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrNoMemory) {
				t.Fatalf("over the budget: err %v, want ErrNoMemory", err)
			}
			var be *BudgetError
			if !errors.As(err, &be) {
				t.Fatalf("over the budget: err %T, want *BudgetError", err)
			}
			want := BudgetError{Tier: tc.tier, Budget: tc.budget, InUse: tc.inUse, Need: tc.need, PageBytes: pageB}
			if *be != want || be.Never() != tc.never {
				t.Fatalf("error %+v (never %v), want %+v (never %v)", *be, be.Never(), want, tc.never)
			}
			if !strings.Contains(err.Error(), tc.tier) || !strings.Contains(err.Error(), mib(tc.budget)) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("error text %q: want the tier %q, the budget %s and %q", err, tc.tier, mib(tc.budget), tc.text)
			}
			if u := p.Usage(); u.ResidentUsed+u.OffloadUsed != int64(s.PagesHeld())*pageB {
				t.Fatalf("a refused reservation changed the pool: %+v, the sequence holds %d pages", u, s.PagesHeld())
			}
		})
	}
}

func TestCanEverFit(t *testing.T) {
	tests := []struct {
		name          string
		dense         bool
		cfg           Config
		tokens, stage int
		tier          string // "" = fits
	}{
		{name: "unlimited", cfg: Config{}, tokens: 1 << 20, stage: 1 << 16},
		{name: "exact", cfg: Config{ResidentBytes: 10 * 256, OffloadBytes: 8 * 256}, tokens: 32, stage: 8},
		{name: "resident-tokens", cfg: Config{ResidentBytes: 10 * 256, OffloadBytes: 8 * 256}, tokens: 33, stage: 8, tier: "resident"},
		{name: "resident-staging", cfg: Config{ResidentBytes: 10 * 256}, tokens: 32, stage: 9, tier: "resident"},
		{name: "offload", cfg: Config{ResidentBytes: 100 * 256, OffloadBytes: 8 * 256}, tokens: 33, tier: "offload"},
		{name: "dense-ignores-staging", dense: true, cfg: Config{MaxPages: 16}, tokens: 16, stage: 1000},
		{name: "dense-max-pages", dense: true, cfg: Config{MaxPages: 16}, tokens: 17, tier: "resident"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := budgetPool(t, tc.dense, tc.cfg)
			err := p.CanEverFit(tc.tokens, tc.stage)
			var be *BudgetError
			switch {
			case tc.tier == "" && err != nil:
				t.Fatalf("CanEverFit(%d, %d): %v, want nil", tc.tokens, tc.stage, err)
			case tc.tier == "":
			case !errors.As(err, &be) || !errors.Is(err, ErrNoMemory) || be.Tier != tc.tier || !be.Never() || be.InUse != 0:
				t.Fatalf("CanEverFit(%d, %d): %v, want a %s *BudgetError that can never fit", tc.tokens, tc.stage, err, tc.tier)
			}
			// What CanEverFit accepts, an empty pool takes.
			if err == nil && tc.name != "unlimited" {
				s := p.NewSequence(tc.tokens)
				if err := s.Reserve(tc.tokens); err != nil {
					t.Fatal(err)
				}
				if !tc.dense {
					if err := s.ReserveStaging(tc.stage); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
}

func TestNewPoolRejectsNegativeBudgets(t *testing.T) {
	for _, cfg := range []Config{{ResidentBytes: -1}, {OffloadBytes: -1}, {MaxPages: -1}} {
		cfg.Layers, cfg.KVDim, cfg.PageSize = 1, 8, 4
		if _, err := NewPool(cpu.New(), cfg); err == nil {
			t.Errorf("NewPool(%+v) accepted a negative budget", cfg)
		}
	}
}

// Usage follows reservations, releases and trims exactly; every block id ever made is used, free or
// trimmed.
func TestUsageArithmetic(t *testing.T) {
	p := budgetPool(t, false, Config{ResidentBytes: 1 << 20, OffloadBytes: 1 << 19, FreeWatermarkBytes: -1})
	a, b := p.NewSequence(100), p.NewSequence(100)
	type want struct{ resUsed, resFree, resTrim, offUsed, offFree, offTrim int64 }
	steps := []struct {
		name string
		do   func() error
		want want
	}{
		{"reserve a", func() error { return reserve(a, 10) }, want{768, 0, 0, 768, 0, 0}},     // 3 blocks
		{"stage a", func() error { return a.ReserveStaging(5) }, want{1280, 0, 0, 768, 0, 0}}, // +2 staging
		{"reserve b", func() error { return reserve(b, 4) }, want{1536, 0, 0, 1024, 0, 0}},    // +1 block
		{"release a", func() error { a.Release(); return nil }, want{256, 1280, 0, 256, 768, 0}},
		{"trim to 600", func() error { return trimmed(p, 600, 3*512) }, want{256, 512, 768, 256, 0, 768}}, // a's blocks: freed first
		{"reserve b more", func() error { return reserve(b, 8) }, want{768, 512, 256, 768, 0, 256}},       // 2 trimmed blocks back
		{"trim nothing", func() error { return trimmed(p, 512, 0) }, want{768, 512, 256, 768, 0, 256}},
		{"trim all", func() error { b.Release(); return trimmed(p, 0, 4*512) }, want{0, 0, 1536, 0, 0, 1024}},
		{"MaybeTrim disabled", func() error {
			if err := reserve(a, 4); err != nil {
				return err
			}
			a.Release()
			if n, err := p.MaybeTrim(); n != 0 || err != nil {
				return fmt.Errorf("MaybeTrim with a negative watermark released %d bytes (err %v)", n, err)
			}
			return nil
		}, want{0, 256, 1280, 0, 256, 768}},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		u := p.Usage()
		got := want{u.ResidentUsed, u.ResidentFree, u.ResidentTrimmed, u.OffloadUsed, u.OffloadFree, u.OffloadTrimmed}
		if got != st.want {
			t.Fatalf("%s: usage %+v, want %+v", st.name, got, st.want)
		}
		res, off, stg := p.blockBytes()
		if made := int64(p.grown)*(res+off) + int64(p.stageGrown)*stg; u.ResidentUsed+u.ResidentFree+u.ResidentTrimmed+u.OffloadUsed+u.OffloadFree+u.OffloadTrimmed != made {
			t.Fatalf("%s: usage %+v does not add up to the %d bytes made", st.name, u, made)
		}
		if u.ResidentBudget != 1<<20 || u.OffloadBudget != 1<<19 || u.PageBytes != pageB || u.Trimmed() != u.ResidentTrimmed+u.OffloadTrimmed {
			t.Fatalf("%s: budgets %+v", st.name, u)
		}
	}
}

// trimmed runs Trim(keep) and checks what it says it released.
func trimmed(p *Pool, keep, want int64) error {
	got, err := p.Trim(keep)
	if err == nil && got != want {
		err = fmt.Errorf("Trim(%d) released %d bytes, want %d", keep, got, want)
	}
	return err
}

// reserve reserves and commits n more tokens.
func reserve(s *Sequence, n int) error {
	err := s.Reserve(n)
	if err == nil {
		s.Commit(n)
	}
	return err
}
