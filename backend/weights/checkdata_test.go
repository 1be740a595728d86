package weights

import (
	"strings"
	"testing"
)

// CheckData accepts a tensor whose Data holds exactly its rows and names what is wrong otherwise (the devices'
// Bind returns its error as is).
func TestCheckData(t *testing.T) {
	for _, c := range []struct {
		name   string
		tensor Tensor
		rb     int
		errHas string // "" = valid
	}{
		{"f32 matrix", Tensor{Name: "w", Type: F32, Shape: []int{2, 3}, Data: make([]byte, 24)}, 12, ""},
		{"q8_0 rows", Tensor{Name: "q", Type: Q8_0, Shape: []int{2, 64}, Data: make([]byte, 2*68)}, 68, ""},
		{"short data", Tensor{Name: "w", Type: F32, Shape: []int{2, 3}, Data: make([]byte, 20)}, 0, "tensor w: 20 bytes of data, want 24"},
		{"long data", Tensor{Name: "w", Type: F16, Shape: []int{4}, Data: make([]byte, 10)}, 0, "10 bytes of data, want 8"},
		{"row not whole blocks", Tensor{Name: "q", Type: Q8_0, Shape: []int{1, 33}, Data: make([]byte, 34)}, 0, "tensor q:"},
		{"unknown type", Tensor{Name: "u", Type: DType(250), Shape: []int{1}, Data: make([]byte, 4)}, 0, "tensor u: unsupported type"},
	} {
		rb, err := c.tensor.CheckData()
		switch {
		case c.errHas == "" && (err != nil || rb != c.rb):
			t.Errorf("%s: row bytes %d, %v; want %d, nil", c.name, rb, err, c.rb)
		case c.errHas != "" && (err == nil || !strings.Contains(err.Error(), c.errHas)):
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.errHas)
		}
	}
}
