package compute

import (
	"fmt"

	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

// DType is the element type of an activation tensor.
type DType uint8

const (
	F32 DType = iota // float32: activations, logits, scores
	I32              // int32: ids and indices
)

func (t DType) String() string {
	switch t {
	case F32:
		return "f32"
	case I32:
		return "i32"
	}
	return fmt.Sprintf("DType(%d)", uint8(t))
}

// Tensor is a (Rows, Cols) row-major matrix resident on a device. It carries no host memory: the device keeps
// its storage behind Handle, and data moves only through Device.Write and Device.Read.
type Tensor struct {
	Rows, Cols int
	DType      DType
	Handle     any // the device's storage; only the device that made the tensor reads it
}

// Weight is a weight matrix or vector bound to a device, kept in its stored type.
type Weight struct {
	Name       string
	Type       weights.DType
	Rows, Cols int // (out, in) for a matrix; a vector has Rows == 1
	Handle     any // the device's storage (the CPU device: the memory-mapped bytes, or a repacked copy)
}

// KVDType is the element type of the KV cache.
type KVDType uint8

const (
	KVF16 KVDType = iota // IEEE half precision (default)
	KVF32                // float32 (exact; used by golden tests)
)

func (t KVDType) String() string {
	switch t {
	case KVF16:
		return "fp16"
	case KVF32:
		return "fp32"
	}
	return fmt.Sprintf("KVDType(%d)", uint8(t))
}

// ParseKVDType reads "fp16" / "float16" / "f16" or "fp32" / "float32" / "f32".
func ParseKVDType(s string) (KVDType, error) {
	switch s {
	case "fp16", "float16", "f16", "half":
		return KVF16, nil
	case "fp32", "float32", "f32", "float":
		return KVF32, nil
	}
	return 0, fmt.Errorf("unknown KV dtype %q (want fp16 or fp32)", s)
}

// Bytes is the size of one element.
func (t KVDType) Bytes() int {
	if t == KVF32 {
		return 4
	}
	return 2
}

// Tier is where a KV store's pages live.
type Tier uint8

const (
	// TierDevice is the device's own memory: GPU memory, or RAM for the CPU device. Dense layers and the
	// sparse layers' staging live here.
	TierDevice Tier = iota
	// TierHost is host RAM the device can copy from (pinned on a GPU): OmniKV's offloaded sparse layers.
	TierHost
	// TierMapped is a memory-mapped file (registered with the GPU where one is used): contexts beyond RAM.
	TierMapped
)

func (t Tier) String() string {
	switch t {
	case TierDevice:
		return "device"
	case TierHost:
		return "host"
	case TierMapped:
		return "mapped"
	}
	return fmt.Sprintf("Tier(%d)", uint8(t))
}

// KVSpec is the shape of a KV page.
type KVSpec struct {
	PageTokens int // tokens per page
	KVDim      int // kvHeads*headDim: one token's row of keys (and one of values)
	DType      KVDType
}

// PageBytes is the memory of one layer's page: its keys and values.
func (s KVSpec) PageBytes() int { return 2 * s.PageTokens * s.KVDim * s.DType.Bytes() }

// KVStore holds KV pages of Layers layers in one tier. Page p of a store is a page of each of its layers, so
// that one block table serves them all; slot s = p*PageTokens + i is token row i of page p. The element
// (slot, kvHead, d) of a layer's keys is at kvHead*headDim + d of the slot's row. Stores are created and grown
// through the device and live until Free.
type KVStore struct {
	Spec   KVSpec
	Layers int
	Tier   Tier
	Pages  int // pages allocated so far; page ids are [0, Pages)
	Handle any
}

// StoreOptions configure NewKVStore.
type StoreOptions struct {
	Dir string // TierMapped: the directory of the backing file (it is unlinked at once and removed on Free)
}

// Batch is the layout of the sequences of one attention (or gather, or scoring) call: which query rows
// belong to which sequence, which pages hold each sequence's cache and how many tokens it has. It lives on
// the device: SetBatch copies a BatchDesc once per step, and every layer's ops of that step share it.
type Batch struct {
	Seqs   int
	Handle any
}

// BatchDesc describes a Batch in host memory. Sequence s owns query rows [QStart[s], QStart[s]+QRows[s]) of
// the tensors it is used with; query row QStart[s]+i is at position Pos0[s]+i and sees the tokens at
// positions <= Pos0[s]+i among the first Len[s] of its pages (causal). Its pages are
// Blocks[BlockOff[s]:BlockOff[s+1]], in token order.
type BatchDesc struct {
	QStart   []int32 // (seqs) first query row
	QRows    []int32 // (seqs) query rows; 0 for a sequence that only takes part in gathers or scoring
	Pos0     []int32 // (seqs) position of the first query row
	Len      []int32 // (seqs) tokens in the sequence's pages (cached plus this step's)
	BlockOff []int32 // (seqs+1) CSR offsets into Blocks
	Blocks   []int32 // page ids of every sequence, concatenated
}

// Seqs returns the number of sequences described.
func (d *BatchDesc) Seqs() int { return len(d.Pos0) }

// Check validates the description against a store's page count: a programming error if it fails.
func (d *BatchDesc) Check(pages int) error {
	n := len(d.Pos0)
	if len(d.QStart) != n || len(d.QRows) != n || len(d.Len) != n || len(d.BlockOff) != n+1 {
		return fmt.Errorf("batch: %d sequences with %d query starts, %d row counts, %d lengths, %d block offsets",
			n, len(d.QStart), len(d.QRows), len(d.Len), len(d.BlockOff))
	}
	if d.BlockOff[0] != 0 || int(d.BlockOff[n]) != len(d.Blocks) {
		return fmt.Errorf("batch: block offsets span [%d, %d), %d blocks", d.BlockOff[0], d.BlockOff[n], len(d.Blocks))
	}
	for _, b := range d.Blocks {
		if b < 0 || int(b) >= pages {
			return fmt.Errorf("batch: page %d outside the store's %d", b, pages)
		}
	}
	return nil
}

// SelState is one sequence's OmniKV selection at one filter layer, kept on the device: the filter layer's
// recent queries (the observation window), the candidates' scores, the selected tokens, the staging slots
// they occupy, the rows fetched at the last step and the staging slots the sparse layers attend to (the
// slots in use, then the generated tokens' slots). Nothing of it crosses to the host during a step.
type SelState struct {
	Spec   SelSpec
	Handle any
}

// SelSpec sizes a SelState.
type SelSpec struct {
	Window  int // queries kept in the observation window (1 unless the selector is windowed)
	QDim    int // heads*headDim
	KVHeads int
}

// SelMode is how Select scores the candidates.
type SelMode uint8

const (
	// SelScores takes the scores that SelectScores left in each state.
	SelScores SelMode = iota
	// SelHeadMax takes max over KV heads of the filter layer's fused head max (Attention.HeadMax).
	SelHeadMax
	// SelSinkRecent scores nothing: the first SinkTokens candidates and the newest ones.
	SelSinkRecent
)

// SelInfo is a SelState read back to the host (statistics and tests; not on a step's path).
type SelInfo struct {
	Candidates  int     // context tokens that could be selected this turn
	Selected    []int32 // the current selection, ascending token indices
	Attend      []int32 // the staging slots the sparse layers attend to, ascending
	Scores      []float32
	RowsFetched int64 // rows copied into staging by Gather since the turn began, all target layers
	LastFetched int   // rows copied by the Gathers of the last step
}

// Attention is causal grouped-query attention for every sequence of a Batch at once, over their pages of
// one layer of a store. Query row r of sequence s (at position p) sees the tokens at positions <= p of its
// pages, or, when Sel[s] is set, only the staging slots of its attention list (a sparse layer; dense is the
// same op with every token selected).
type Attention struct {
	Q, Out  *Tensor // (tokens, heads*headDim): queries after RoPE, and the result
	Store   *KVStore
	Layer   int // the layer within Store
	Batch   *Batch
	Heads   int
	KVHeads int
	HeadDim int
	Scale   float32 // usually 1/sqrt(headDim)
	// Sel, optional (seqs): a non-nil entry restricts sequence s to the state's attention list.
	Sel []*SelState
	// HeadMax, optional (seqs): a non-nil entry (a sequence with one query row and no Sel) receives in its
	// state, for every visible token t and KV head h, the max over h's query heads of the scaled logit
	// q·k_t·Scale: OmniKV's "last" scores, computed by the filter layer's own attention.
	HeadMax []*SelState
}

// Observe appends each sequence's newest query rows (up to the window) to its state's observation window.
type Observe struct {
	Q      *Tensor // (tokens, heads*headDim) queries after RoPE
	Batch  *Batch
	States []*SelState // (seqs); nil entries are skipped
}

// SelectScores computes each state's candidate scores from its window queries over its sequence's first
// Candidates tokens (set by BeginTurn) at one layer of a store:
//
//	score[j] = Σ_i Alpha[i] · max_h f(Q[i,h] · K[j, h/group] · Scale)
//
// with i over the window's rows (the newest weighing Alpha[len-1]) and f the identity (raw logits) or, with
// Softmax, the softmax over the candidates of that query and head.
type SelectScores struct {
	Store   *KVStore
	Layer   int
	Batch   *Batch // the sequences' pages (query rows unused)
	States  []*SelState
	Alpha   []float32 // (window) weights, oldest first
	Softmax bool
	Heads   int
	KVHeads int
	HeadDim int
	Scale   float32
}

// Select picks each state's tokens and assigns their staging slots: the K best-scoring candidates (ties to
// the lower index) with the newest Forced[s] always included, kept rows staying in their slots; it leaves the
// rows to fetch for Gather and sets the attention list to the slots in use followed by the generated tokens'
// slots K .. K+Step[s].
type Select struct {
	Mode   SelMode
	States []*SelState
	Forced []int32 // (states) newest candidates always selected
	Step   []int32 // (states) decode steps of this turn before this one
}

// Gather copies, for every state, the rows its last Select newly selected from layer SrcLayer of the
// sequences' pages (SrcBatch) into their staging slots of layer DstLayer (DstBatch's pages). It runs
// asynchronously; the sparse layer that reads the staging waits on the returned fence.
type Gather struct {
	Src      *KVStore
	SrcLayer int
	SrcBatch *Batch
	Dst      *KVStore
	DstLayer int
	DstBatch *Batch
	States   []*SelState
}

// Fence marks the completion of an asynchronous op.
type Fence struct {
	Handle any // nil: already complete
}

// RoPE describes rotary position embedding applied in place to rows of a (tokens, heads*headDim) tensor.
type RoPE struct {
	Heads       int
	HeadDim     int
	Table       *Tensor // (maxPositions, headDim): cos of the headDim/2 frequencies, then their sin
	Interleaved bool    // rotate pairs (2i, 2i+1) (GGUF llama layout) instead of (i, i+headDim/2) (Hugging Face)
}

// Device is what a forward pass asks of a device, batch-first: every op covers all sequences of a step.
//
// Ops are queued in order on the device (the CPU device runs them at once) and report device failures
// through a sticky error, checked once per step with Err or Sync; after a failure the remaining ops of the
// step do nothing and the caller fails the step. Methods panic only on programming errors (shapes that
// disagree with the model's own buffers); user input is validated before it reaches a device.
//
// Host metadata passed to an op (token ids, positions, slot maps) is copied or consumed by the op: the
// caller may reuse it after the call returns.
type Device interface {
	Name() string
	// Err returns the first device failure since the device was opened, or nil.
	Err() error
	// Sync waits for every queued op and returns Err.
	Sync() error

	// NewTensor allocates a zeroed (rows, cols) tensor.
	NewTensor(dt DType, rows, cols int) (*Tensor, error)
	// Write copies host float32 values (whole rows) into t starting at row row0.
	Write(t *Tensor, row0 int, src []float32)
	// Read copies the first len(dst)/t.Cols rows of t to host memory (one batched read, e.g. the step's
	// logits); it waits for the ops that produce them.
	Read(dst []float32, t *Tensor)
	// Bind makes a weight usable by the device, in its stored type; a vector becomes (1, n).
	Bind(t *weights.Tensor) (*Weight, error)
	// NewKVStore creates an empty store for layers layers in a tier.
	NewKVStore(spec KVSpec, layers int, tier Tier, opt StoreOptions) (*KVStore, error)
	// GrowKVStore adds pages (zeroed) to a store; ids of existing pages stay valid.
	GrowKVStore(s *KVStore, pages int) error
	// DiscardKVPages gives the memory behind pages of a store (every layer of each page) back to the system
	// where it can: the pages stay valid ids, but their contents are lost and unspecified until written
	// again, and RecommitKVPages must precede their next use. It is for free pages only (no op in flight may
	// touch them); memory shared with pages outside the list is kept.
	//
	// The CPU device, on linux, releases the whole OS pages that the pages cover with madvise(MADV_DONTNEED)
	// (a memory-mapped store also gives the file's blocks back with fallocate(PUNCH_HOLE) where the file
	// system can), and the pages read back as zeros; elsewhere it does nothing. A CUDA device may implement it as a no-op (an arena
	// from one cudaMalloc cannot shrink in part; the memory stays with the process), or by unmapping the
	// physical chunks the pages cover entirely (cuMemUnmap and cuMemRelease under the virtual memory
	// management API; for pinned host memory, the same madvise as the CPU device's on registered mappings).
	DiscardKVPages(s *KVStore, pages []int32) error
	// RecommitKVPages makes discarded pages usable again, before they are handed out: a device whose
	// discard gave back backing that a later write needs (a file's blocks; physical chunks that were
	// unmapped) reserves it again here, so that running out is an error now and not a fault (SIGBUS) on a
	// later write. Pages that were not discarded are left as they are. The CPU device re-allocates the file
	// blocks of a memory-mapped store and does nothing for RAM (it is faulted in, zeroed, on first write).
	RecommitKVPages(s *KVStore, pages []int32) error
	// NewBatch returns an empty batch; SetBatch describes it (once per step).
	NewBatch() *Batch
	SetBatch(b *Batch, d *BatchDesc)
	// NewSelState allocates one sequence's selection state; BeginTurn starts a turn with n candidates, k
	// selection slots and room for maxLen cached tokens (the fused head max covers them).
	NewSelState(spec SelSpec) (*SelState, error)
	BeginTurn(s *SelState, n, k, maxLen int)
	// ReadSel reads a state back to host memory (statistics and tests).
	ReadSel(s *SelState) SelInfo
	// SetAttend installs an attention list (ascending staging slots) in a state directly: for tests, and for
	// callers that select on the host.
	SetAttend(s *SelState, slots []int32)
	// Free releases the device memory of a *Tensor, *Weight, *KVStore, *Batch or *SelState.
	Free(obj any)

	// Embed sets out row i to row ids[i] of table: out (len(ids), table.Cols).
	Embed(out *Tensor, table *Weight, ids []int32)
	// MatMul sets out (n, w.Rows) = x (n, w.Cols) · wᵀ for the first n rows of x.
	MatMul(out, x *Tensor, w *Weight, n int)
	// MatMuls is MatMul for weights that share their input x (q, k and v; gate and up): outs[i]
	// (n, ws[i].Rows) = x (n, ws[i].Cols) · ws[i]ᵀ, possibly as one operation. No output may share memory
	// with x or with another output.
	MatMuls(outs []*Tensor, x *Tensor, ws []*Weight, n int)
	// AddBias adds the vector b (1, cols) to each of the first n rows of x.
	AddBias(x *Tensor, b *Weight, n int)
	// RMSNorm sets out row i = x row i / sqrt(mean(x row i²) + eps) * w, for the first n rows.
	RMSNorm(out, x *Tensor, w *Weight, eps float32, n int)
	// ApplyRoPE rotates the first n rows of x in place; row i is at position pos[i].
	ApplyRoPE(x *Tensor, r *RoPE, pos []int32, n int)
	// SwiGLU sets gate = silu(gate) * up for the first n rows.
	SwiGLU(gate, up *Tensor, n int)
	// Add sets dst += src for the first n rows.
	Add(dst, src *Tensor, n int)
	// CopyRows sets dst row i = src row rows[i] (the rows whose logits a step wants).
	CopyRows(dst, src *Tensor, rows []int32)
	// WriteKV stores row i of k and v (tokens, kvDim) in slot slots[i] of layer `layer` of the store, for
	// i < len(slots); a negative slot skips the row.
	WriteKV(s *KVStore, layer int, k, v *Tensor, slots []int32)
	// Attend runs attention for every sequence of a batch (see Attention).
	Attend(a *Attention)
	// Observe records window queries (see Observe).
	Observe(o *Observe)
	// SelectScores scores the candidates of each state (see SelectScores).
	SelectScores(s *SelectScores)
	// Select runs top-k and slot assignment (see Select).
	Select(s *Select)
	// Gather moves newly selected rows into staging, asynchronously (see Gather).
	Gather(g *Gather) Fence
	// Wait makes the ops queued after it wait for f.
	Wait(f Fence)
}
