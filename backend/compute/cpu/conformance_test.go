package cpu_test

import (
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/compute/computetest"
	"github.com/omnikv-triton/omnikv-triton/backend/compute/cpu"
)

func TestConformance(t *testing.T) { computetest.Run(t, cpu.New()) }
