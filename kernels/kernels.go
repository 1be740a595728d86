package kernels

import (
	"embed"
	"io/fs"
	"path"
	"sort"
	"strings"
)

//go:embed *.cu *.cuh
var files embed.FS

// Source is one kernel file.
type Source struct {
	Name string // e.g. "rmsnorm.cu"
	Text string
}

// Sources returns every kernel file (*.cu), by name.
func Sources() []Source { return list(".cu") }

// Headers returns the shared headers (*.cuh) that kernels #include by name.
func Headers() []Source { return list(".cuh") }

func list(ext string) []Source {
	var out []Source
	names, _ := fs.Glob(files, "*"+ext)
	sort.Strings(names)
	for _, n := range names {
		b, _ := files.ReadFile(n)
		out = append(out, Source{Name: path.Base(n), Text: string(b)})
	}
	return out
}

// Kernels returns the extern "C" __global__ function names a source defines.
func Kernels(src string) []string {
	var out []string
	for _, line := range strings.Split(src, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), `extern "C" __global__ void `)
		if !ok {
			continue
		}
		if b, ok := strings.CutPrefix(rest, "__launch_bounds__("); ok { // __launch_bounds__(N) name(
			if i := strings.IndexByte(b, ')'); i >= 0 {
				rest = strings.TrimSpace(b[i+1:])
			}
		}
		if i := strings.IndexByte(rest, '('); i > 0 {
			out = append(out, rest[:i])
		}
	}
	return out
}
