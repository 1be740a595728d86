package kvcache

import (
	"fmt"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
)

// freeList is the free block ids of one kind (res/off, or staging).
type freeList struct {
	warm    []freePage // backed by memory, coldest first: handed out from the end, trimmed from the start
	trimmed []int32    // given back to the system: handed out when no warm id is left, before growing
}

// freePage is a free block id and when it was freed.
type freePage struct {
	id   int32
	tick uint64 // the pool's release count when it was freed: lower is colder
}

// rewarm moves the last n trimmed ids (recommitted by a reservation that failed after) to the cold end of
// the warm list.
func (fl *freeList) rewarm(n int) {
	k := len(fl.trimmed) - n
	back := make([]freePage, 0, n+len(fl.warm))
	for _, id := range fl.trimmed[k:] {
		back = append(back, freePage{id: id})
	}
	fl.warm, fl.trimmed = append(back, fl.warm...), fl.trimmed[:k]
}

// Trim gives the memory of free pages beyond keepFreeBytes (counted over both tiers, as Usage's
// ResidentFree+OffloadFree) back to the system, the coldest (longest free) first, and returns the bytes it
// released. The pages stay in the pool: they are handed out after the warm ones, recommitted first. The
// error is the first device failure to discard pages since Trim last returned (pages that failed stay warm).
//
// It runs under the pool's lock and costs a few system calls per run of adjacent pages per layer (on the
// CPU device, madvise; fallocate for a memory-mapped store): cheap next to a step, but not free.
func (p *Pool) Trim(keepFreeBytes int64) (released int64, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	released = p.trim(max(keepFreeBytes, 0))
	err, p.trimErr = p.trimErr, nil
	return released, err
}

// MaybeTrim trims the free pages down to the watermark (Config.FreeWatermarkBytes, DefaultFreeWatermark
// when 0) when they exceed it, and does nothing (one comparison under the lock) otherwise. An engine calls
// it after the sequences that ended in an iteration of its loop have been released and the waiting ones
// admitted (so that a new request reuses warm pages rather than fault trimmed ones in), and when it goes
// idle.
func (p *Pool) MaybeTrim() (released int64, err error) {
	w := p.cfg.FreeWatermarkBytes
	if w == 0 {
		w = DefaultFreeWatermark
	}
	if w < 0 {
		return 0, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.freeBytes() > w {
		released = p.trim(w)
	}
	err, p.trimErr = p.trimErr, nil
	return released, err
}

// freeBytes is the memory of the warm free pages, both tiers.
func (p *Pool) freeBytes() int64 {
	res, off, stg := p.blockBytes()
	return int64(len(p.blk.warm))*(res+off) + int64(len(p.stg.warm))*stg
}

// trim discards the coldest warm pages of both lists until at most keep bytes of them are left.
func (p *Pool) trim(keep int64) int64 {
	res, off, stg := p.blockBytes()
	excess := p.freeBytes() - keep
	nb, ns := 0, 0 // coldest entries of blk.warm and stg.warm to discard
	for excess > 0 && (nb < len(p.blk.warm) || ns < len(p.stg.warm)) {
		if ns == len(p.stg.warm) || (nb < len(p.blk.warm) && p.blk.warm[nb].tick <= p.stg.warm[ns].tick) {
			nb++
			excess -= res + off
		} else {
			ns++
			excess -= stg
		}
	}
	var released int64
	if p.discard(&p.blk, nb, p.res, p.off) {
		released += int64(nb) * (res + off)
	}
	if p.discard(&p.stg, ns, p.stage) {
		released += int64(ns) * stg
	}
	return released
}

// discard gives the n coldest warm ids of fl back to the system in every store and moves them to the
// trimmed list; on a device failure it records the error and leaves them warm.
func (p *Pool) discard(fl *freeList, n int, stores ...*compute.KVStore) bool {
	if n == 0 {
		return false
	}
	ids := make([]int32, n)
	for i, f := range fl.warm[:n] {
		ids[i] = f.id
	}
	for _, s := range stores {
		if s == nil {
			continue
		}
		if err := p.dev.DiscardKVPages(s, ids); err != nil {
			if p.trimErr == nil {
				p.trimErr = fmt.Errorf("kv cache: trim %d pages of the %v store: %w", n, s.Tier, err)
			}
			return false
		}
	}
	fl.warm = fl.warm[:copy(fl.warm, fl.warm[n:])]
	fl.trimmed = append(fl.trimmed, ids...)
	return true
}

// makeRoom keeps the resident tier's memory within its budget when n ids of one kind are about to be
// backed again (recommitted or grown): it trims the other kind's coldest warm pages to make room. (Its own
// kind has no warm page left: warm ones are handed out first. The offload tier needs nothing of the kind:
// only res/off ids hold offload pages, and their warm list is empty.)
func (p *Pool) makeRoom(staging bool, n int) {
	if p.resBudget == 0 || n == 0 {
		return
	}
	res, _, stg := p.blockBytes()
	backed := int64(p.blocks+len(p.blk.warm))*res + int64(p.stageInUse+len(p.stg.warm))*stg
	other, per, add, stores := &p.stg, stg, int64(n)*res, []*compute.KVStore{p.stage}
	if staging {
		other, per, add, stores = &p.blk, res, int64(n)*stg, []*compute.KVStore{p.res, p.off}
	}
	over := backed + add - p.resBudget
	if over <= 0 || per == 0 {
		return
	}
	p.discard(other, min(int((over+per-1)/per), len(other.warm)), stores...)
}
