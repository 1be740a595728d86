package cpu

import (
	"fmt"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
)

// batch is a Batch on the CPU device: its own copy of the description (the caller reuses its slices).
type batch struct {
	d        compute.BatchDesc
	validFor int // pages of a store the blocks were checked against (0: not yet)
}

// NewBatch implements compute.Device.
func (*Device) NewBatch() *compute.Batch { return &compute.Batch{Handle: &batch{}} }

// SetBatch implements compute.Device.
func (*Device) SetBatch(b *compute.Batch, d *compute.BatchDesc) {
	bt := batchOf(b)
	bt.d.QStart = append(bt.d.QStart[:0], d.QStart...)
	bt.d.QRows = append(bt.d.QRows[:0], d.QRows...)
	bt.d.Pos0 = append(bt.d.Pos0[:0], d.Pos0...)
	bt.d.Len = append(bt.d.Len[:0], d.Len...)
	bt.d.BlockOff = append(bt.d.BlockOff[:0], d.BlockOff...)
	bt.d.Blocks = append(bt.d.Blocks[:0], d.Blocks...)
	bt.validFor = 0
	b.Seqs = d.Seqs()
}

func batchOf(b *compute.Batch) *batch {
	bt, ok := b.Handle.(*batch)
	if !ok {
		panic(fmt.Sprintf("cpu: batch of %d sequences is not a CPU batch, or was freed", b.Seqs))
	}
	return bt
}

// blocks returns sequence s's page ids.
func (b *batch) blocks(s int) []int32 { return b.d.Blocks[b.d.BlockOff[s]:b.d.BlockOff[s+1]] }

// check panics when the batch does not fit a store.
func (b *batch) check(what string, st *compute.KVStore) {
	if b.validFor > 0 && st.Pages >= b.validFor {
		return // stores only grow
	}
	if err := b.d.Check(st.Pages); err != nil {
		panic(fmt.Sprintf("cpu %s: %v", what, err))
	}
	b.validFor = max(1, st.Pages)
}
