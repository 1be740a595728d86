package weights

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Tensor is one weight tensor, its bytes left where they are stored (usually an mmap'd file).
type Tensor struct {
	Name  string
	Type  DType
	Shape []int  // row-major, outermost first; a (out, in) matrix is {out, in}
	Data  []byte // the tensor's bytes in place (mmap'd); len == Rows()*RowBytes(Cols())

	mapped bool // Data lies in a read-only file mapping
}

// DropPages tells the operating system that the tensor's bytes need not stay in memory for now (a device
// keeps its own copy of them): the pages of a memory-mapped tensor leave the process's resident set and are
// read back from the file if Data is used again. Data stays valid. A no-op for a tensor that is not
// file-mapped.
func (t *Tensor) DropPages() {
	if t.mapped && len(t.Data) > 0 {
		dropPages(t.Data)
	}
}

// Rows is the product of all dims but the last (1 for a vector or a scalar).
func (t *Tensor) Rows() int {
	r := 1
	for _, d := range t.Shape[:max(len(t.Shape)-1, 0)] {
		r *= d
	}
	return r
}

// Cols is the last dim (1 for a scalar).
func (t *Tensor) Cols() int {
	if len(t.Shape) == 0 {
		return 1
	}
	return t.Shape[len(t.Shape)-1]
}

// NumElements is the product of all dims.
func (t *Tensor) NumElements() int { return t.Rows() * t.Cols() }

// RowBytes is the size in bytes of one row (0 when the tensor is malformed).
func (t *Tensor) RowBytes() int {
	n, err := t.Type.RowBytes(t.Cols())
	if err != nil {
		return 0
	}
	return n
}

// CheckData validates a tensor for binding to a device: a known type whose rows have a size, and Data holding
// exactly Rows rows. It returns the row size.
func (t *Tensor) CheckData() (rowBytes int, err error) {
	if !t.Type.Known() {
		return 0, fmt.Errorf("tensor %s: unsupported type %v", t.Name, t.Type)
	}
	rb, err := t.Type.RowBytes(t.Cols())
	if err != nil {
		return 0, fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	if want := t.Rows() * rb; len(t.Data) != want {
		return 0, fmt.Errorf("tensor %s: %d bytes of data, want %d for shape %v of %v", t.Name, len(t.Data), want, t.Shape, t.Type)
	}
	return rb, nil
}

// Row returns the bytes of row i, or nil when i is out of range.
func (t *Tensor) Row(i int) []byte {
	rb := t.RowBytes()
	if i < 0 || i >= t.Rows() || (i+1)*rb > len(t.Data) {
		return nil
	}
	return t.Data[i*rb : (i+1)*rb : (i+1)*rb]
}

// Set is an opened model: its tensors by name plus format-specific metadata. Tensor data stays valid
// until Close.
type Set struct {
	Path    string             // the file or directory opened
	Format  string             // "gguf" or "safetensors"
	Tensors map[string]*Tensor // by name
	GGUF    *Metadata          // nil for safetensors
	Config  []byte             // config.json contents for a HF directory, nil otherwise
	// SafetensorsMeta is the union of the files' "__metadata__" maps (safetensors only).
	SafetensorsMeta     map[string]string
	TokenizerJSON       []byte // tokenizer.json from a HF directory, if present
	TokenizerConfigJSON []byte // tokenizer_config.json from a HF directory, if present

	unmap []func() error
}

// Open opens a .gguf file, a .safetensors file, or a Hugging Face model directory (model.safetensors or
// model.safetensors.index.json with shards, plus config.json). Tensor data is mapped, not read.
func Open(path string) (*Set, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("weights: open %s: %w", path, err)
	}
	if fi.IsDir() {
		return openDir(path)
	}
	data, release, err := mapFile(path)
	if err != nil {
		return nil, fmt.Errorf("weights: open %s: %w", path, err)
	}
	s := &Set{Path: path, unmap: []func() error{release}}
	switch {
	case len(data) >= 4 && string(data[:4]) == ggufMagic, strings.HasSuffix(strings.ToLower(path), ".gguf"):
		s.Format = "gguf"
		s.Tensors, s.GGUF, err = parseGGUF(data)
	default:
		s.Format = "safetensors"
		s.Tensors = map[string]*Tensor{}
		s.SafetensorsMeta, err = parseSafetensors(data, s.Tensors)
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("weights: %s %s: %w", s.Format, path, err)
	}
	for _, t := range s.Tensors {
		t.mapped = fileMapped
	}
	return s, nil
}

// Tensor returns the named tensor; when shape is given the tensor's shape must equal it. Errors name
// the file and the tensor.
func (s *Set) Tensor(name string, shape ...int) (*Tensor, error) {
	t, ok := s.Tensors[name]
	if !ok {
		return nil, fmt.Errorf("weights: %s: tensor %q not found", s.Path, name)
	}
	if len(shape) > 0 && !slices.Equal(t.Shape, shape) {
		return nil, fmt.Errorf("weights: %s: tensor %q has shape %v, want %v", s.Path, name, t.Shape, shape)
	}
	return t, nil
}

// Names lists the tensor names in sorted order.
func (s *Set) Names() []string {
	names := make([]string, 0, len(s.Tensors))
	for n := range s.Tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Close unmaps every file and sets each Tensor's Data to nil; slices of it taken earlier must not be used
// afterwards. Calling Close twice is harmless.
func (s *Set) Close() error {
	if s == nil {
		return nil
	}
	if len(s.unmap) > 0 {
		// Drop the slices into the mappings, so that a use after Close reads an empty slice rather
		// than faulting on unmapped memory.
		for _, t := range s.Tensors {
			t.Data = nil
		}
	}
	var errs []error
	for _, f := range s.unmap {
		if err := f(); err != nil {
			errs = append(errs, err)
		}
	}
	s.unmap = nil
	if len(errs) > 0 {
		return fmt.Errorf("weights: close %s: %w", s.Path, errors.Join(errs...))
	}
	return nil
}

// readOptional returns the contents of dir/name, or nil if it does not exist.
func readOptional(dir, name string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// maxElements bounds a tensor's element count so that its byte size (at most 4 bytes an element) fits an int.
const maxElements = 1 << 60

// mulDims multiplies dims, failing on negative dims or a product above maxElements.
func mulDims(dims []int) (int, error) {
	n := 1
	for _, d := range dims {
		if d < 0 {
			return 0, fmt.Errorf("negative dim %d in shape %v", d, dims)
		}
		if d != 0 && n > maxElements/d {
			return 0, fmt.Errorf("shape %v overflows", dims)
		}
		n *= d
	}
	return n, nil
}

// tensorBytes validates t's type and shape and returns the byte size its data must have.
func tensorBytes(typ DType, shape []int) (int, error) {
	if !typ.Known() {
		return 0, fmt.Errorf("unknown tensor type %d", uint32(typ))
	}
	n, err := mulDims(shape)
	if err != nil {
		return 0, err
	}
	cols := 1
	if len(shape) > 0 {
		cols = shape[len(shape)-1]
	}
	rb, err := typ.RowBytes(cols)
	if err != nil {
		return 0, err
	}
	if cols == 0 {
		return 0, nil
	}
	return n / cols * rb, nil // rb <= 4*cols and n <= 2^60: no overflow
}
