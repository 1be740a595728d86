package kvcache

import "fmt"

// BudgetError is a reservation that does not fit in a tier's budget. It matches ErrNoMemory (errors.Is);
// callers word their own messages from its fields (errors.As).
type BudgetError struct {
	Tier      string // "resident" (the device tier: resident layers and staging) or "offload"
	Budget    int64  // the tier's budget, bytes
	InUse     int64  // bytes of the tier handed out to sequences (reserved), 0 for CanEverFit
	Need      int64  // bytes the reservation adds
	PageBytes int64  // one layer's page, the unit the tier is handed out in
}

func (e *BudgetError) Error() string {
	pb := max(e.PageBytes, 1)
	if e.Never() {
		return fmt.Sprintf("kv cache: %s KV budget too small: %s (%d pages of %s), this sequence needs %d more pages (%s)",
			e.Tier, mib(e.Budget), e.Budget/pb, mib(pb), e.Need/pb, mib(e.Need))
	}
	return fmt.Sprintf("kv cache: %s KV budget exhausted: %s of %s (%d of %d pages of %s) in use or reserved, this sequence needs %d more pages (%s)",
		e.Tier, mib(e.InUse), mib(e.Budget), e.InUse/pb, e.Budget/pb, mib(pb), e.Need/pb, mib(e.Need))
}

// Unwrap makes a BudgetError match ErrNoMemory.
func (e *BudgetError) Unwrap() error { return ErrNoMemory }

// Never reports whether the reservation exceeds the whole budget: waiting for other sequences to end
// cannot make it fit.
func (e *BudgetError) Never() bool { return e.Need > e.Budget }

// mib formats bytes as MiB, or KiB below one MiB.
func mib(b int64) string {
	if b < 1<<20 {
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

// Usage is the pool's memory per tier, in bytes. The resident tier holds the resident layers' pages and the
// offloaded layers' staging (device memory; RAM on the CPU device); the offload tier the offloaded layers'
// pages (host RAM, or the memory-mapped file). Every block id ever made is in exactly one of Used, Free and
// Trimmed.
type Usage struct {
	PageBytes int64 // one layer's page (keys and values)

	ResidentUsed    int64 // handed out to sequences (reserved, written or not)
	ResidentFree    int64 // free and still backed by memory (warm: handed out first; pages never written may not be resident yet)
	ResidentTrimmed int64 // free and given back to the system by Trim (handed out after the warm ones)
	ResidentBudget  int64 // 0 = unlimited

	OffloadUsed    int64
	OffloadFree    int64
	OffloadTrimmed int64
	OffloadBudget  int64 // 0 = unlimited
}

// Trimmed is the memory given back to the system, both tiers. (A device that implements DiscardKVPages as
// a no-op keeps it: the pool counts what it asked to give back.)
func (u Usage) Trimmed() int64 { return u.ResidentTrimmed + u.OffloadTrimmed }

// Usage returns the pool's memory per tier. It is cheap: counters read under the pool's lock.
func (p *Pool) Usage() Usage {
	p.mu.Lock()
	defer p.mu.Unlock()
	res, off, stg := p.blockBytes()
	return Usage{
		PageBytes:    int64(p.spec.PageBytes()),
		ResidentUsed: int64(p.blocks)*res + int64(p.stageInUse)*stg, ResidentBudget: p.resBudget,
		ResidentFree:    int64(len(p.blk.warm))*res + int64(len(p.stg.warm))*stg,
		ResidentTrimmed: int64(len(p.blk.trimmed))*res + int64(len(p.stg.trimmed))*stg,
		OffloadUsed:     int64(p.blocks) * off, OffloadBudget: p.offBudget,
		OffloadFree:    int64(len(p.blk.warm)) * off,
		OffloadTrimmed: int64(len(p.blk.trimmed)) * off,
	}
}

// blockBytes returns the memory of one block id of res/off (res: in the resident tier, off: in the offload
// tier) and of one staging block id (in the resident tier): a block id spans every layer of its stores.
func (p *Pool) blockBytes() (res, off, stg int64) {
	pb := int64(p.spec.PageBytes())
	return int64(p.resLayers) * pb, int64(p.offLayers) * pb, int64(p.offLayers) * pb
}

// fits checks that n more block ids (staging ones, or of res/off) fit in every tier's budget.
func (p *Pool) fits(n int, staging bool) error {
	res, off, stg := p.blockBytes()
	resUsed := int64(p.blocks)*res + int64(p.stageInUse)*stg
	resNeed, offNeed := int64(n)*res, int64(n)*off
	if staging {
		resNeed, offNeed = int64(n)*stg, 0
	}
	return p.check(resUsed, resNeed, int64(p.blocks)*off, offNeed)
}

func (p *Pool) check(resUsed, resNeed, offUsed, offNeed int64) error {
	pb := int64(p.spec.PageBytes())
	if p.resBudget > 0 && resNeed > 0 && resUsed+resNeed > p.resBudget {
		return &BudgetError{Tier: "resident", Budget: p.resBudget, InUse: resUsed, Need: resNeed, PageBytes: pb}
	}
	if p.offBudget > 0 && offNeed > 0 && offUsed+offNeed > p.offBudget {
		return &BudgetError{Tier: "offload", Budget: p.offBudget, InUse: offUsed, Need: offNeed, PageBytes: pb}
	}
	return nil
}

// CanEverFit reports whether a sequence of tokens tokens with stagingTokens tokens of staging (ignored
// without offloaded layers) fits in every tier's budget of an empty pool: nil if so, else a *BudgetError
// (Never true, InUse 0) that matches ErrNoMemory. An engine asks it at admission and fails a request that
// can never fit at once, instead of queueing it behind the running sequences forever; a request that can
// fit but not now gets the same kind of error from Reserve with Never false, and waits.
func (p *Pool) CanEverFit(tokens, stagingTokens int) error {
	ps := p.cfg.PageSize
	blocks, stage := (tokens+ps-1)/ps, (stagingTokens+ps-1)/ps
	if p.offLayers == 0 {
		stage = 0
	}
	res, off, stg := p.blockBytes()
	return p.check(0, int64(blocks)*res+int64(stage)*stg, 0, int64(blocks)*off)
}
