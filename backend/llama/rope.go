package llama

import (
	"math"
)

// invFreq returns the rotary frequencies of the headDim/2 rotation pairs, computed in float32 the way Hugging
// Face transformers computes them (base^(2i/d) in float32, then the rope_scaling rule), divided by the
// per-pair factors of a GGUF rope_freqs tensor when given.
func invFreq(c *Config, ropeFreqs []float32) []float32 {
	half := c.HeadDim / 2
	out := make([]float32, half)
	for i := range out {
		exp := float32(2*i) / float32(c.HeadDim)
		out[i] = float32(1 / math.Pow(c.RopeTheta, float64(exp)))
	}
	r := c.RopeScaling
	switch r.Type {
	case "linear":
		for i := range out {
			out[i] = float32(float64(out[i]) / r.Factor)
		}
	case "llama3":
		lowWavelen := float64(r.OriginalMaxPE) / r.LowFreq
		highWavelen := float64(r.OriginalMaxPE) / r.HighFreq
		for i, f := range out {
			wavelen := 2 * math.Pi / float64(f)
			switch {
			case wavelen < highWavelen: // high frequency: unchanged
			case wavelen > lowWavelen: // low frequency: scaled
				out[i] = float32(float64(f) / r.Factor)
			default: // in between: interpolated
				smooth := (float64(r.OriginalMaxPE)/wavelen - r.LowFreq) / (r.HighFreq - r.LowFreq)
				out[i] = float32((1-smooth)*float64(f)/r.Factor + smooth*float64(f))
			}
		}
	}
	for i := range out {
		if i < len(ropeFreqs) && ropeFreqs[i] != 0 {
			out[i] = float32(float64(out[i]) / float64(ropeFreqs[i]))
		}
	}
	return out
}

// ropeTable fills a (positions, headDim) table: the cos of each pair's angle, then its sin. The angle is the
// float32 product position·freq, as in transformers.
func ropeTable(freq []float32, positions int) []float32 {
	half := len(freq)
	t := make([]float32, positions*2*half)
	for p := 0; p < positions; p++ {
		row := t[p*2*half : (p+1)*2*half]
		for i, f := range freq {
			a := float64(float32(p) * f)
			row[i] = float32(math.Cos(a))
			row[half+i] = float32(math.Sin(a))
		}
	}
	return t
}
