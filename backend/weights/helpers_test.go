package weights

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// writeTemp writes b to a new file named name in a test temp dir and returns its path.
func writeTemp(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// randomTensor builds a tensor of the given type and shape holding quantized random values.
func randomTensor(t testing.TB, name string, typ DType, r *rand.Rand, shape ...int) *Tensor {
	t.Helper()
	tt := &Tensor{Name: name, Type: typ, Shape: shape}
	rb, err := typ.RowBytes(tt.Cols())
	if err != nil {
		t.Fatal(err)
	}
	tt.Data = make([]byte, tt.Rows()*rb)
	row := make([]float32, tt.Cols())
	for i := range tt.Rows() {
		for j := range row {
			row[j] = float32(r.NormFloat64())
		}
		if typ == Q4_K || typ == Q6_K { // no quantizer: random bytes, which any decoder accepts
			for j := range rb {
				tt.Data[i*rb+j] = byte(r.IntN(256))
			}
			continue
		}
		if err := QuantizeRow(typ, row, tt.Data[i*rb:(i+1)*rb]); err != nil {
			t.Fatal(err)
		}
	}
	return tt
}
