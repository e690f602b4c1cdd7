package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// The walk's trees under the directory given to -make-tree and -tree.
const (
	timedTree  = "timed"
	warmupTree = "warmup"
)

// buildTrees makes the walk's trees in dir: timedTree with n files and warmupTree with warmup
// files (none when warmup is 0).
func buildTrees(dir string, n, warmup, perDir int) error {
	if n < 1 || warmup < 0 || perDir < 1 {
		return fmt.Errorf("need -n >= 1, -warmup >= 0 and -per-dir >= 1, got %d, %d and %d", n, warmup, perDir)
	}
	if err := buildTree(filepath.Join(dir, timedTree), n, perDir); err != nil {
		return err
	}
	if warmup == 0 {
		return nil
	}
	return buildTree(filepath.Join(dir, warmupTree), warmup, perDir)
}

// buildTree makes root/dNNNNN/fNNNNN: files distinct small files (about 80 bytes, each
// naming itself, like a short source file), perDir to a directory. root must not exist:
// a tree left by an earlier, larger run would change the count.
func buildTree(root string, files, perDir int) error {
	if err := os.MkdirAll(filepath.Dir(root), 0o755); err != nil {
		return fmt.Errorf("make tree: %w", err)
	}
	if err := os.Mkdir(root, 0o755); err != nil {
		return fmt.Errorf("make tree: %w", err)
	}
	var d string
	for i := 0; i < files; i++ {
		if i%perDir == 0 {
			d = filepath.Join(root, fmt.Sprintf("d%05d", i/perDir))
			if err := os.Mkdir(d, 0o755); err != nil {
				return fmt.Errorf("make tree: %w", err)
			}
		}
		body := fmt.Sprintf("// file %d of the walk's tree\npackage tree\n\nconst n%d = %d\n", i, i, i)
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%05d", i%perDir)), []byte(body), 0o644); err != nil {
			return fmt.Errorf("make tree: %w", err)
		}
	}
	return nil
}
