// Package golden owns the golden-reference file format (.okvg) that tests/reference/make_goldens.py writes
// from Hugging Face transformers and that the engine's parity tests read: per prompt position the top-K logits
// and checksums of the full logits vector, and the greedy continuation. It also owns the comparison rule
// (Position.Compare). tests/reference/golden_format.py is the Python twin of Read/Write; both produce the same
// bytes for the same content.
//
// Layout (little-endian):
//
//	"OMNIKVGD"  magic, 8 bytes
//	uint32      version (1)
//	payload:
//	  uint32 n, n bytes   header JSON: {"model","model_sha256","notes","source","topk","vocab"}
//	  uint32              number of cases
//	  per case:
//	    uint32 n, n bytes     name (UTF-8)
//	    uint32 n, int32[n]    prompt ids
//	    uint32 p, uint32 k    positions (one per prompt id), top-K of this case
//	    per position:         int32[k] ids, float32[k] logits (logit descending, ties by id ascending),
//	                          float64 sum, float64 sum of squares, float32 max, int32 argmax
//	    uint32 g, int32[g]    greedy continuation ids
//	    float32[g]            greedy gaps: best minus second-best logit at each greedy step
//	uint32      CRC-32 (IEEE) of the payload
package golden
