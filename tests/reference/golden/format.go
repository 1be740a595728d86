package golden

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
)

// Magic and Version open every golden file.
const (
	Magic   = "OMNIKVGD"
	Version = 1
)

// Limits that keep a corrupt or hostile file from making Read allocate without bound.
const (
	maxHeader = 16 << 20
	maxCount  = 1 << 24
)

// Position is the reference for one prompt position: the logits that predict the token after it.
type Position struct {
	TopIDs    []int32   // (k) token ids, by logit descending
	TopLogits []float32 // (k) their logits
	Sum       float64   // sum of all vocab logits
	SumSq     float64   // sum of squares of all vocab logits
	Max       float32   // largest logit
	Argmax    int32     // its id (lowest id on ties)
}

// Case is one prompt.
type Case struct {
	Name       string
	PromptIDs  []int32    // (prompt)
	Positions  []Position // (prompt): Positions[i] follows PromptIDs[:i+1]
	Greedy     []int32    // (generated) greedy continuation ids, EOS included if generation stopped there
	GreedyGaps []float32  // (generated) best minus second-best logit at each greedy step (near-tie detector)
}

// File is a whole golden file.
type File struct {
	Model       string            // model name
	Source      string            // what produced the numbers (library, dtype, attention implementation)
	ModelSHA256 string            // hex sha256 of the main weights file the reference loaded
	Vocab       int               // logits vector length
	TopK        int               // largest top-K of any case (a case may store fewer, see its positions)
	Notes       map[string]string // versions, tolerances, per-file sha256 ("sha256/<file>"), prompt texts
	Cases       []Case
}

// header is the JSON header; fields in key order so that Go and Python (sort_keys) write the same bytes.
type header struct {
	Model       string            `json:"model"`
	ModelSHA256 string            `json:"model_sha256"`
	Notes       map[string]string `json:"notes"`
	Source      string            `json:"source"`
	TopK        int               `json:"topk"`
	Vocab       int               `json:"vocab"`
}

// Case returns the case with the given name, or nil.
func (f *File) Case(name string) *Case {
	for i := range f.Cases {
		if f.Cases[i].Name == name {
			return &f.Cases[i]
		}
	}
	return nil
}

// Validate checks the internal consistency of f: lengths, id ranges, ordering of the top-K.
func (f *File) Validate() error {
	if f.Vocab <= 0 || f.TopK <= 0 || f.TopK > f.Vocab {
		return fmt.Errorf("golden: vocab %d / topk %d invalid", f.Vocab, f.TopK)
	}
	inVocab := func(id int32) bool { return id >= 0 && int(id) < f.Vocab }
	for ci := range f.Cases {
		c := &f.Cases[ci]
		if len(c.Positions) != len(c.PromptIDs) {
			return fmt.Errorf("golden: case %q: %d positions for %d prompt ids", c.Name, len(c.Positions), len(c.PromptIDs))
		}
		if len(c.GreedyGaps) != len(c.Greedy) {
			return fmt.Errorf("golden: case %q: %d greedy gaps for %d greedy ids", c.Name, len(c.GreedyGaps), len(c.Greedy))
		}
		for i, id := range c.PromptIDs {
			if !inVocab(id) {
				return fmt.Errorf("golden: case %q: prompt id %d at %d outside vocab %d", c.Name, id, i, f.Vocab)
			}
		}
		for i, id := range c.Greedy {
			if !inVocab(id) {
				return fmt.Errorf("golden: case %q: greedy id %d at %d outside vocab %d", c.Name, id, i, f.Vocab)
			}
		}
		for pi := range c.Positions {
			p := &c.Positions[pi]
			k := len(p.TopIDs)
			if k == 0 || k != len(p.TopLogits) || k > f.TopK || k != len(c.Positions[0].TopIDs) {
				return fmt.Errorf("golden: case %q position %d: top-K lengths %d/%d (file topk %d)", c.Name, pi, k,
					len(p.TopLogits), f.TopK)
			}
			for i, id := range p.TopIDs {
				if !inVocab(id) {
					return fmt.Errorf("golden: case %q position %d: top id %d outside vocab %d", c.Name, pi, id, f.Vocab)
				}
				if i > 0 && !(p.TopLogits[i] <= p.TopLogits[i-1]) {
					return fmt.Errorf("golden: case %q position %d: top logits not descending at %d", c.Name, pi, i)
				}
			}
			if !inVocab(p.Argmax) {
				return fmt.Errorf("golden: case %q position %d: argmax %d outside vocab %d", c.Name, pi, p.Argmax, f.Vocab)
			}
		}
	}
	return nil
}

// Write validates f and writes it to path.
func Write(path string, f *File) error {
	b, err := Marshal(f)
	if err != nil {
		return fmt.Errorf("golden: write %s: %w", path, err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("golden: write %s: %w", path, err)
	}
	return nil
}

// Marshal encodes f in the golden format.
func Marshal(f *File) ([]byte, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	notes := f.Notes
	if notes == nil {
		notes = map[string]string{}
	}
	var hj bytes.Buffer
	enc := json.NewEncoder(&hj)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(header{f.Model, f.ModelSHA256, notes, f.Source, f.TopK, f.Vocab}); err != nil {
		return nil, fmt.Errorf("golden: header: %w", err)
	}
	hb := bytes.TrimSuffix(hj.Bytes(), []byte("\n"))

	var p bytes.Buffer
	w := func(v any) { _ = binary.Write(&p, binary.LittleEndian, v) } // bytes.Buffer writes cannot fail
	w(uint32(len(hb)))
	p.Write(hb)
	w(uint32(len(f.Cases)))
	for _, c := range f.Cases {
		w(uint32(len(c.Name)))
		p.WriteString(c.Name)
		w(uint32(len(c.PromptIDs)))
		w(c.PromptIDs)
		k := 0
		if len(c.Positions) > 0 {
			k = len(c.Positions[0].TopIDs)
		}
		w(uint32(len(c.Positions)))
		w(uint32(k))
		for _, pos := range c.Positions {
			w(pos.TopIDs)
			w(pos.TopLogits)
			w(pos.Sum)
			w(pos.SumSq)
			w(pos.Max)
			w(pos.Argmax)
		}
		w(uint32(len(c.Greedy)))
		w(c.Greedy)
		w(c.GreedyGaps)
	}
	out := make([]byte, 0, 12+p.Len()+4)
	out = append(out, Magic...)
	out = binary.LittleEndian.AppendUint32(out, Version)
	out = append(out, p.Bytes()...)
	out = binary.LittleEndian.AppendUint32(out, crc32.ChecksumIEEE(p.Bytes()))
	return out, nil
}

// Read reads and validates a golden file.
func Read(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("golden: %w", err)
	}
	f, err := Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("golden: %s: %w", path, err)
	}
	return f, nil
}

// errShort reports a payload that ends early.
var errShort = errors.New("truncated")

// reader walks the payload; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = fmt.Errorf("%s: %w (need %d bytes, %d left)", what, errShort, n, len(r.b))
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u32(what string) uint32 {
	if b := r.take(4, what); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *reader) count(what string) int {
	n := r.u32(what)
	if r.err == nil && n > maxCount {
		r.err = fmt.Errorf("%s: count %d over limit %d", what, n, maxCount)
	}
	return int(n)
}

func (r *reader) i32s(n int, what string) []int32 {
	b := r.take(4*n, what)
	if b == nil {
		return nil
	}
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func (r *reader) f32s(n int, what string) []float32 {
	b := r.take(4*n, what)
	if b == nil {
		return nil
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func (r *reader) f64(what string) float64 {
	if b := r.take(8, what); b != nil {
		return math.Float64frombits(binary.LittleEndian.Uint64(b))
	}
	return 0
}

// Unmarshal decodes and validates golden-format bytes.
func Unmarshal(b []byte) (*File, error) {
	if len(b) < len(Magic)+8 || string(b[:len(Magic)]) != Magic {
		return nil, fmt.Errorf("not a golden file (magic %q missing)", Magic)
	}
	if v := binary.LittleEndian.Uint32(b[len(Magic):]); v != Version {
		return nil, fmt.Errorf("golden version %d, this reader knows %d", v, Version)
	}
	payload := b[len(Magic)+4 : len(b)-4]
	if got, want := crc32.ChecksumIEEE(payload), binary.LittleEndian.Uint32(b[len(b)-4:]); got != want {
		return nil, fmt.Errorf("CRC-32 mismatch: payload %08x, stored %08x (file corrupt)", got, want)
	}
	r := &reader{b: payload}
	hn := r.u32("header length")
	if hn > maxHeader {
		return nil, fmt.Errorf("header length %d over limit %d", hn, maxHeader)
	}
	var h header
	if hb := r.take(int(hn), "header"); r.err == nil {
		if err := json.Unmarshal(hb, &h); err != nil {
			return nil, fmt.Errorf("header JSON: %w", err)
		}
	}
	f := &File{Model: h.Model, Source: h.Source, ModelSHA256: h.ModelSHA256, Vocab: h.Vocab, TopK: h.TopK,
		Notes: h.Notes}
	nc := r.count("case count")
	for ci := 0; ci < nc && r.err == nil; ci++ {
		var c Case
		c.Name = string(r.take(r.count("case name length"), "case name"))
		at := fmt.Sprintf("case %d (%q)", ci, c.Name)
		c.PromptIDs = r.i32s(r.count(at+" prompt length"), at+" prompt ids")
		np := r.count(at + " positions")
		k := r.count(at + " top-K")
		if r.err == nil && np > 0 && (k == 0 || k > f.Vocab) {
			return nil, fmt.Errorf("%s: top-K %d invalid for vocab %d", at, k, f.Vocab)
		}
		if r.err == nil && np*(8*k+24) > len(r.b) {
			return nil, fmt.Errorf("%s: %d positions of top-%d: %w", at, np, k, errShort)
		}
		c.Positions = make([]Position, np)
		for pi := range c.Positions {
			p := &c.Positions[pi]
			pat := fmt.Sprintf("%s position %d", at, pi)
			p.TopIDs = r.i32s(k, pat+" top ids")
			p.TopLogits = r.f32s(k, pat+" top logits")
			p.Sum = r.f64(pat + " sum")
			p.SumSq = r.f64(pat + " sumsq")
			p.Max = math.Float32frombits(r.u32(pat + " max"))
			p.Argmax = int32(r.u32(pat + " argmax"))
		}
		ng := r.count(at + " greedy length")
		c.Greedy = r.i32s(ng, at+" greedy ids")
		c.GreedyGaps = r.f32s(ng, at+" greedy gaps")
		f.Cases = append(f.Cases, c)
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%d unexpected bytes after the last case", len(r.b))
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return f, nil
}
