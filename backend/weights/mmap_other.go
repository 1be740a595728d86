//go:build !unix

package weights

import "os"

// mapFile reads the whole file into memory on systems without mmap.
func mapFile(path string) ([]byte, func() error, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	return data, func() error { return nil }, nil
}

// fileMapped: tensors are read into memory on these systems.
const fileMapped = false

func dropPages([]byte) {}
