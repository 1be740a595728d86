//go:build cgo

package cuda

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/omnikv-triton/omnikv-triton/kernels"
)

// kernelSet is every kernel of kernels/*.cu, compiled by NVRTC for the GPU's own architecture and loaded.
type kernelSet struct {
	mods  []module
	funcs map[string]*fn
	cache string // the cache directory used ("" when none could be made)
	hits  int    // files loaded from the cache
}

// cacheDir returns $OMNIKV_KERNEL_CACHE or <user cache dir>/omnikv-triton/kernels ("" when neither is usable).
func cacheDir() string {
	if d := os.Getenv("OMNIKV_KERNEL_CACHE"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "omnikv-triton", "kernels")
	}
	return ""
}

// includeDirs returns where NVRTC finds cuda_fp16.h and cuda_bf16.h: $OMNIKV_CUDA_INCLUDE, else the usual
// toolkit locations that exist.
func includeDirs() []string {
	if d := os.Getenv("OMNIKV_CUDA_INCLUDE"); d != "" {
		return []string{d}
	}
	var out []string
	for _, d := range []string{"/usr/local/cuda/include", "/usr/include"} {
		if _, err := os.Stat(filepath.Join(d, "cuda_fp16.h")); err == nil {
			out = append(out, d)
			break
		}
	}
	return out
}

// loadKernels compiles (or takes from the on-disk cache) and loads every kernel file for arch. The cache key
// is a hash of the file, the shared headers, the architecture, the options and NVRTC's version, so that a
// changed kernel, GPU or compiler never loads a stale image.
func loadKernels(d *drv, arch string) (*kernelSet, error) {
	n, err := OpenNVRTC()
	if err != nil {
		return nil, err
	}
	ks := &kernelSet{funcs: map[string]*fn{}, cache: cacheDir()}
	if ks.cache != "" && os.MkdirAll(ks.cache, 0o755) != nil {
		ks.cache = ""
	}
	var hdrs []Header
	h := sha256.New()
	for _, x := range kernels.Headers() {
		hdrs = append(hdrs, Header{Name: x.Name, Source: x.Text})
		fmt.Fprintf(h, "%s\x00%s\x00", x.Name, x.Text)
	}
	hdrSum := h.Sum(nil)
	opt := CompileOptions{Arch: arch, Includes: includeDirs(), Headers: hdrs}
	for _, src := range kernels.Sources() {
		k := sha256.New()
		fmt.Fprintf(k, "%s\x00%s\x00%x\x00%s\x00%s\x00nvrtc %d.%d", src.Name, src.Text, hdrSum, arch, strings.Join(opt.Extra, " "), n.Major, n.Minor)
		key := hex.EncodeToString(k.Sum(nil))[:32]
		path := ""
		if ks.cache != "" {
			path = filepath.Join(ks.cache, strings.TrimSuffix(src.Name, ".cu")+"-"+arch+"-"+key+".cubin")
		}
		var img []byte
		if path != "" {
			if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
				img = b
				ks.hits++
			}
		}
		if img == nil {
			img, err = n.Compile(src.Name, src.Text, opt)
			if err != nil {
				ks.unload(d)
				return nil, fmt.Errorf("%w (kernel headers: set OMNIKV_CUDA_INCLUDE to a directory with cuda_fp16.h if NVRTC cannot find it)", err)
			}
			if path != "" {
				tmp := path + ".tmp"
				if os.WriteFile(tmp, img, 0o644) == nil {
					os.Rename(tmp, path)
				}
			}
		}
		m, err := d.loadModule(img, "load "+src.Name+" for "+arch)
		if err != nil {
			ks.unload(d)
			return nil, fmt.Errorf("%w (compiled by NVRTC %d.%d; a CUBIN needs a driver at least as new as that NVRTC)", err, n.Major, n.Minor)
		}
		ks.mods = append(ks.mods, m)
		for _, name := range kernels.Kernels(src.Text) {
			f, err := d.function(m, name)
			if err != nil {
				ks.unload(d)
				return nil, err
			}
			ks.funcs[name] = f
		}
	}
	return ks, nil
}

func (ks *kernelSet) unload(d *drv) {
	for _, m := range ks.mods {
		d.unloadModule(m)
	}
	ks.mods = nil
}

// get returns a kernel by name; a missing one is a programming error.
func (ks *kernelSet) get(name string) *fn {
	f, ok := ks.funcs[name]
	if !ok {
		panic(fmt.Sprintf("cuda: kernel %s is not in kernels/*.cu", name))
	}
	return f
}
