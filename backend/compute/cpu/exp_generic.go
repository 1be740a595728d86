//go:build !amd64 || purego

package cpu

// expF32 replaces each x[i] by e^x[i] (see exp.go).
func expF32(x []float32) { expF32Go(x) }

// attnExpSum does row[i] = e^(row[i]-mx[i]); l[i] += float64(row[i]) for i < len(row).
func attnExpSum(row, mx []float32, l []float64) { attnExpSumGo(row, mx, l) }

// attnScaleMax does row[i] *= scale; mx[i] = max(mx[i], row[i]) for i < len(row).
func attnScaleMax(row, mx []float32, scale float32) { attnScaleMaxGo(row, mx, scale) }

// rowScaleMax does row[i] *= scale and returns the largest row[i] (-Inf for an empty row).
func rowScaleMax(row []float32, scale float32) float32 { return rowScaleMaxGo(row, scale) }

// rowExpSum does row[i] = e^(row[i]-sub) and returns the sum of the results in float64.
func rowExpSum(row []float32, sub float32) float64 { return rowExpSumGo(row, sub) }
