//go:build cgo

package cuda

import (
	"fmt"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
)

// fence is a Fence's handle: an event recorded on the copy stream after a Gather.
type fence struct{ ev event }

// gatherBlocks bounds the blocks per state of gather_paged (a grid-stride loop covers the rest).
const gatherBlocks = 64

// Gather implements compute.Device. The copy runs on the copy stream, after everything queued on the
// compute stream so far (the Select that listed the rows, earlier reads of the staging); the returned
// fence is an event the sparse layer's Attend waits on (Wait), so the dense layers queued in between run
// meanwhile. Rows that stay selected are not fetched again (Select lists only new ones).
//
// Zero-copy kernel rather than the copy engine: the rows are scattered (a few hundred bytes each, e.g.
// SmolLM2's 3 KV heads x 64 x fp16 = 384 bytes of keys), and one cuMemcpyAsync per row would cost a driver
// call and a DMA descriptor each, while one kernel reads them all straight from the mapped pinned pages.
// shared/tools/gpu-probe (offload_bw.cu) measures exactly this choice (pinned copy vs zero-copy gather from
// mapped host memory); it has not been run for this project yet, so the choice is not backed by a figure.
func (d *Device) Gather(g *compute.Gather) compute.Fence {
	src, dst := storeOf(g.Src), storeOf(g.Dst)
	sb, db := batchOf(g.SrcBatch), batchOf(g.DstBatch)
	sb.check("gather source", g.Src)
	db.check("gather destination", g.Dst)
	if src.spec != dst.spec || len(g.States) > g.SrcBatch.Seqs || g.SrcBatch.Seqs != g.DstBatch.Seqs ||
		g.SrcLayer < 0 || g.SrcLayer >= src.layers || g.DstLayer < 0 || g.DstLayer >= dst.layers {
		panic(fmt.Sprintf("cuda gather: source pages %+v layer %d of %d, destination %+v layer %d of %d, %d states, %d and %d sequences",
			src.spec, g.SrcLayer, src.layers, dst.spec, g.DstLayer, dst.layers, len(g.States), g.SrcBatch.Seqs, g.DstBatch.Seqs))
	}
	maxK := 0
	for _, s := range g.States {
		if s != nil {
			maxK = max(maxK, selOf(s).k)
		}
	}
	if maxK == 0 || !d.ok() {
		return compute.Fence{}
	}
	op := fmt.Sprintf("Gather layer %d -> %d", g.SrcLayer, g.DstLayer)
	d.fail(d.api.record(d.computeEv, d.compute, op))
	d.fail(d.api.wait(d.copy, d.computeEv, op))
	a := d.upload(&d.copyArgs, op, devs(g.States, nil, nil))
	if a == nil {
		return compute.Fence{}
	}
	rowBytes := src.spec.KVDim * src.spec.DType.Bytes()
	blocks := min(gatherBlocks, (maxK+3)/4)
	if d.ok() {
		d.fail(d.api.run("gather_paged", [3]int{blocks, len(g.States), 1}, [3]int{128, 1, 1}, d.copy, op,
			a[0], sb.buf.p, db.buf.p, int32(g.SrcBatch.Seqs), src.pages(g.SrcLayer), dst.pages(g.DstLayer),
			int32(src.spec.PageTokens), int32(rowBytes), d.moved))
	}
	ev, err := d.event(false, op)
	if err != nil {
		d.fail(err)
		return compute.Fence{}
	}
	d.fail(d.api.record(ev, d.copy, op))
	d.fail(d.api.record(d.copyEv, d.copy, op))
	d.copyPending = true
	d.liveFences = append(d.liveFences, ev)
	d.stats.Gathers++
	return compute.Fence{Handle: &fence{ev: ev}}
}

// event returns a free event (fences: no timing).
func (d *Device) event(timed bool, op string) (event, error) {
	if !timed && len(d.freeEvents) > 0 {
		e := d.freeEvents[len(d.freeEvents)-1]
		d.freeEvents = d.freeEvents[:len(d.freeEvents)-1]
		return e, nil
	}
	return d.api.newEvent(timed, op)
}

// Wait implements compute.Device: the compute stream waits for the fence's Gather. Two timed events around
// the wait measure how long the compute stream stood still there (Stats).
func (d *Device) Wait(f compute.Fence) {
	fc, ok := f.Handle.(*fence)
	if !ok || fc == nil || !d.ok() {
		return
	}
	op := "Wait"
	var before, after event
	var err error
	if before, err = d.timedEvent(op); err == nil {
		if after, err = d.timedEvent(op); err == nil {
			d.fail(d.api.record(before, d.compute, op))
		}
	}
	d.fail(d.api.wait(d.compute, fc.ev, op))
	if err == nil {
		d.fail(d.api.record(after, d.compute, op))
		d.waits = append(d.waits, before, after)
	}
	d.stats.FenceWaits++
}

// timedEvent returns a timed event from the device's free list of them.
func (d *Device) timedEvent(op string) (event, error) {
	if n := len(d.timedFree); n > 0 {
		e := d.timedFree[n-1]
		d.timedFree = d.timedFree[:n-1]
		return e, nil
	}
	return d.api.newEvent(true, op)
}

// Stats are the device's counters since it was opened (or ResetStats): a benchmark takes them per step.
type Stats struct {
	Gathers    int64   // Gather calls
	RowsMoved  int64   // KV rows (keys and values of one token, one layer) copied into staging
	BytesMoved int64   // their bytes, keys and values
	FenceWaits int64   // Wait calls on a Gather's fence
	WaitMs     float64 // time the compute stream stood still on those waits (event timing), milliseconds
}

// Stats waits for every queued op and returns the counters.
func (d *Device) Stats() Stats {
	if d.Sync() != nil {
		return d.stats
	}
	for i := 0; i+1 < len(d.waits); i += 2 {
		ms, err := d.api.elapsed(d.waits[i], d.waits[i+1], "Stats")
		if err == nil {
			d.stats.WaitMs += float64(ms)
		}
	}
	d.timedFree = append(d.timedFree, d.waits...)
	d.waits = d.waits[:0]
	var moved [2]uint64
	if d.read(u64b(moved[:]), d.moved, "Stats") == nil {
		d.stats.RowsMoved, d.stats.BytesMoved = int64(moved[0])-d.movedBase[0], int64(moved[1])-d.movedBase[1]
	}
	return d.stats
}

// ResetStats zeroes the counters.
func (d *Device) ResetStats() {
	d.Stats()
	d.movedBase[0] += d.stats.RowsMoved
	d.movedBase[1] += d.stats.BytesMoved
	d.stats = Stats{}
}
