package compute

import (
	"fmt"

	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

// Tensor is a float32 activation matrix resident on a device.
type Tensor struct {
	Rows, Cols int
	F32        []float32 // (Rows, Cols) row-major; the storage on the CPU device
	Handle     any       // the storage on other devices
}

// Row returns row i of a CPU tensor.
func (t *Tensor) Row(i int) []float32 { return t.F32[i*t.Cols : (i+1)*t.Cols] }

// Weight is a weight matrix or vector bound to a device, kept in its stored type.
type Weight struct {
	Name       string
	Type       weights.DType
	Rows, Cols int    // (out, in) for a matrix; a vector has Rows == 1
	Data       []byte // (Rows, RowBytes(Cols)) in place on the CPU device (memory-mapped from the file)
	Handle     any    // the storage on other devices
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

// KVPage holds the keys and values of PageSize consecutive tokens of one layer of one sequence. A token's row
// holds all KV heads: element (token, kvHead, d) is at token*kvHeads*headDim + kvHead*headDim + d.
type KVPage struct {
	K32, V32 []float32 // (pageSize, kvHeads*headDim) when the cache is fp32
	K16, V16 []uint16  // (pageSize, kvHeads*headDim) IEEE half bits when the cache is fp16
	Handle   any       // the storage on other devices
}

// Attention describes causal grouped-query attention of some query rows of one sequence over that sequence's
// cached keys and values. Query row i (absolute position Pos0+i) sees every cached token whose position is
// <= Pos0+i; when Sel is set it sees only those of the listed token indices.
type Attention struct {
	Q       *Tensor // (tokens, heads*headDim) queries after RoPE
	Out     *Tensor // (tokens, heads*headDim) result
	Row0    int     // first row of Q and Out that belongs to this sequence
	Rows    int     // number of query rows of this sequence
	Pos0    int     // position of query row Row0
	Heads   int
	KVHeads int
	HeadDim int
	Scale   float32   // usually 1/sqrt(headDim)
	Pages   []*KVPage // the sequence's pages for this layer, in token order
	Page    int       // tokens per page
	Len     int       // tokens cached and visible in total (Pos0 + Rows for a causal step)
	Sel     []int32   // optional ascending token indices that may be attended (sparse layers); nil = all
	// HeadMax, optional, for one query row without Sel: receives for every visible token t and KV head h the
	// max over h's query heads of the scaled logit q·k_t·Scale — OmniKV's "last" scores, computed by the
	// filter layer's own attention instead of a second pass over the keys.
	HeadMax []float32 // (KVHeads, Len)
}

// SelectScores describes OmniKV's scoring of the context tokens [0, N) of one sequence at a filter layer:
//
//	Out[j] = Σ_i Alpha[i] · max_h f(Q[i,h] · K[j, h/group] · Scale)
//
// where f is the identity (raw logits) or, with Softmax, the softmax over the N candidates of that query and
// head.
type SelectScores struct {
	Q       *Tensor   // (w, heads*headDim) window queries after RoPE (w = 1: the current query)
	Rows    int       // w: rows of Q used
	Alpha   []float32 // (w) weight of each query
	Softmax bool
	Heads   int
	KVHeads int
	HeadDim int
	Scale   float32
	Pages   []*KVPage // the sequence's pages for this layer, in token order
	Page    int       // tokens per page
	N       int       // candidates
	Out     []float32 // (N) host memory
}

// RoPE describes rotary position embedding applied in place to rows of a (tokens, heads*headDim) tensor.
type RoPE struct {
	Heads       int
	HeadDim     int
	Table       *Tensor // (maxPositions, headDim): cos of the headDim/2 frequencies, then their sin
	Interleaved bool    // rotate pairs (2i, 2i+1) (GGUF llama layout) instead of (i, i+headDim/2) (Hugging Face)
}

// Device is the set of operations a forward pass needs. Methods panic only on programming errors (mismatched
// shapes between the model's own buffers); inputs from users are validated before they reach a device.
type Device interface {
	Name() string
	// NewTensor allocates a zeroed (rows, cols) activation tensor.
	NewTensor(rows, cols int) *Tensor
	// Upload copies host float32 data (rows, cols) into a new tensor.
	Upload(rows, cols int, data []float32) *Tensor
	// Bind makes a weight usable by the device, in its stored type; a vector becomes (1, n).
	Bind(t *weights.Tensor) (*Weight, error)
	// NewKVPage allocates a zeroed page of (page, kvDim) keys and values.
	NewKVPage(page, kvDim int, dt KVDType) *KVPage

	// Embed sets out row i to row ids[i] of table: out (len(ids), table.Cols).
	Embed(out *Tensor, table *Weight, ids []int32)
	// MatMul sets out (n, w.Rows) = x (n, w.Cols) · wᵀ for the first n rows of x.
	MatMul(out, x *Tensor, w *Weight, n int)
	// MatMuls is MatMul for weights that share their input x (q, k and v; gate and up): it sets outs[i]
	// (n, ws[i].Rows) = x (n, ws[i].Cols) · ws[i]ᵀ for each i, and may run them as one operation. No
	// output may share memory with x or with another output.
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
	// WriteKV stores rows [row0, row0+n) of k and v (tokens, kvDim) as tokens [start, start+n) of the pages.
	WriteKV(pages []*KVPage, page int, start int, k, v *Tensor, row0, n int)
	// Attend runs one sequence's attention (see Attention).
	Attend(a *Attention)
	// CopyRow copies row si of src to row di of dst (same number of columns).
	CopyRow(dst *Tensor, di int, src *Tensor, si int)
	// SelectScores computes OmniKV selection scores (see SelectScores).
	SelectScores(s *SelectScores)
	// GatherKV copies token rows src[i] of the src pages to token slots dst[i] of the dst pages (staging).
	GatherKV(dst []*KVPage, dstPage int, dstSlots []int32, src []*KVPage, srcPage int, srcRows []int32)
	// Read copies row i of t into dst (host memory).
	Read(dst []float32, t *Tensor, i int)
}
