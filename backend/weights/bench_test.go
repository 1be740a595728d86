package weights

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkDequantizeRow measures the pure-Go reference decoders on a 4096-element row, reporting the
// rate in GB/s of quantized input.
func BenchmarkDequantizeRow(b *testing.B) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, typ := range []DType{F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K} {
		b.Run(typ.String(), func(b *testing.B) {
			t := randomTensor(b, "x", typ, r, 4096)
			dst := make([]float32, 4096)
			for b.Loop() {
				if err := DequantizeRow(typ, t.Data, dst); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(t.Data))*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
		})
	}
}
