package testkit

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Projection is a Secret or ConfigMap volume written the way the kubelet writes it: the files
// live in a timestamped folder, `..data` is a symlink to it, and each key is a symlink to
// `..data/KEY`. An update writes a new folder and swaps `..data` with one rename, so a reader
// never sees half of an update.
type Projection struct {
	Dir string
	cur string
}

// NewProjection writes data into dir (created if missing).
func NewProjection(dir string, data map[string][]byte) (*Projection, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := &Projection{Dir: dir}
	return p, p.Update(data)
}

// Path is where the file of key stands.
func (p *Projection) Path(key string) string { return filepath.Join(p.Dir, key) }

// Update writes data as the volume's new content with an atomic ..data swap, then removes the
// previous folder, as the kubelet does.
func (p *Projection) Update(data map[string][]byte) error {
	ts, err := os.MkdirTemp(p.Dir, time.Now().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return fmt.Errorf("projecting into %s: %w", p.Dir, err)
	}
	for _, k := range slices.Sorted(maps.Keys(data)) {
		if err := os.WriteFile(filepath.Join(ts, k), data[k], 0o600); err != nil {
			return fmt.Errorf("projecting %s: %w", k, err)
		}
	}
	tmp := filepath.Join(p.Dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(p.Dir, "..data")); err != nil {
		return fmt.Errorf("swapping ..data in %s: %w", p.Dir, err)
	}
	for k := range data {
		link := p.Path(k)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", k), link); err != nil {
			return err
		}
	}
	if p.cur != "" {
		_ = os.RemoveAll(p.cur)
	}
	p.cur = ts
	return nil
}
