package golden

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// Compare checks a full logits vector (vocab) against the golden position with relative tolerance tol.
//
// The scale is the largest |logit| the reference stored (its top-K and max), so errors are relative to the
// size of the logits, not to each logit. The returned value is the worst relative error over the stored top-K:
// max_i |logits[TopIDs[i]] - TopLogits[i]| / scale. Compare also fails when, with e = tol*scale and n = vocab:
//   - |sum - Sum| > n*e (every logit off by at most e);
//   - |sumsq - SumSq| > 2*sqrt(n*SumSq)*e + n*e*e (Cauchy-Schwarz bound for per-logit errors up to e);
//   - |max - Max| > e;
//   - our argmax differs from Argmax by more than a near-tie (logits[ours] - logits[Argmax] > 2e);
//   - any id outside the stored top-K has a logit above the K-th reference logit + e;
//   - logits has a NaN or Inf, or is too short for the stored ids.
func (p *Position) Compare(logits []float32, tol float64) (float64, error) {
	n := len(logits)
	if len(p.TopIDs) == 0 || len(p.TopIDs) != len(p.TopLogits) {
		return math.Inf(1), fmt.Errorf("golden position has %d top ids and %d logits", len(p.TopIDs), len(p.TopLogits))
	}
	if !(tol >= 0) {
		return math.Inf(1), fmt.Errorf("tolerance %v must be >= 0", tol)
	}
	for _, id := range append([]int32{p.Argmax}, p.TopIDs...) {
		if id < 0 || int(id) >= n {
			return math.Inf(1), fmt.Errorf("logits has %d entries but the golden refers to id %d", n, id)
		}
	}
	var sum, sumSq float64
	argmax := 0
	for i, v := range logits {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return math.Inf(1), fmt.Errorf("logit %d is %v", i, v)
		}
		sum += float64(v)
		sumSq += float64(v) * float64(v)
		if v > logits[argmax] {
			argmax = i
		}
	}

	scale := math.Abs(float64(p.Max))
	for _, v := range p.TopLogits {
		scale = math.Max(scale, math.Abs(float64(v)))
	}
	if scale == 0 {
		scale = 1
	}
	e := tol * scale

	worst, worstAt := 0.0, 0
	for i, id := range p.TopIDs {
		if d := math.Abs(float64(logits[id])-float64(p.TopLogits[i])) / scale; d > worst || i == 0 {
			worst, worstAt = d, i
		}
	}
	var errs []string
	if worst > tol {
		id := p.TopIDs[worstAt]
		errs = append(errs, fmt.Sprintf("top-%d rank %d id %d: logit %g, golden %g (rel err %.3g > tol %.3g)",
			len(p.TopIDs), worstAt, id, logits[id], p.TopLogits[worstAt], worst, tol))
	}
	fn := float64(n)
	if d := math.Abs(sum - p.Sum); d > fn*e {
		errs = append(errs, fmt.Sprintf("sum %g, golden %g (|diff| %.3g > %.3g)", sum, p.Sum, d, fn*e))
	}
	if d, lim := math.Abs(sumSq-p.SumSq), 2*math.Sqrt(fn*p.SumSq)*e+fn*e*e; d > lim {
		errs = append(errs, fmt.Sprintf("sum of squares %g, golden %g (|diff| %.3g > %.3g)", sumSq, p.SumSq, d, lim))
	}
	if d := math.Abs(float64(logits[argmax]) - float64(p.Max)); d > e {
		errs = append(errs, fmt.Sprintf("max %g, golden %g (|diff| %.3g > %.3g)", logits[argmax], p.Max, d, e))
	}
	if int32(argmax) != p.Argmax {
		if d := float64(logits[argmax]) - float64(logits[p.Argmax]); d > 2*e {
			errs = append(errs, fmt.Sprintf("argmax %d, golden %d (ours leads by %.3g > near-tie %.3g)",
				argmax, p.Argmax, d, 2*e))
		}
	}
	inTop := make(map[int32]bool, len(p.TopIDs))
	for _, id := range p.TopIDs {
		inTop[id] = true
	}
	floor := float64(p.TopLogits[len(p.TopLogits)-1]) + e
	for i, v := range logits {
		if float64(v) > floor && !inTop[int32(i)] {
			errs = append(errs, fmt.Sprintf("id %d outside the golden top-%d has logit %g > K-th golden %g + %.3g",
				i, len(p.TopIDs), v, p.TopLogits[len(p.TopLogits)-1], e))
			break
		}
	}
	if len(errs) > 0 {
		return worst, errors.New(strings.Join(errs, "; "))
	}
	return worst, nil
}

// TestdataPath returns the path of a committed golden file (e.g. "smollm2.okvg") by walking up from the
// working directory to the module root, so that a test in any package can find it.
func TestdataPath(name string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("golden: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, "tests", "reference", "golden", "testdata", name)
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("golden: %w", err)
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("golden: no go.mod above the working directory, cannot locate %s", name)
		}
		dir = parent
	}
}
