package image

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
)

// multiarch is Debian's library folder name for each ELF machine.
var multiarch = map[elf.Machine]string{
	elf.EM_X86_64:  "x86_64-linux-gnu",
	elf.EM_AARCH64: "aarch64-linux-gnu",
}

// sharedLibraries are the files the dynamic loader needs to start binary:
// its interpreter (PT_INTERP) and, transitively, every DT_NEEDED library,
// each at the path the loader finds it on this host. A library the loader
// already is (the interpreter's own soname) is not copied twice.
func sharedLibraries(binary string) ([]File, error) {
	f, err := elf.Open(binary)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	interp, err := interpreter(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", binary, err)
	}
	if interp == "" {
		return nil, nil // static
	}
	arch, ok := multiarch[f.Machine]
	if !ok {
		return nil, fmt.Errorf("%s: no library folder known for ELF machine %s", binary, f.Machine)
	}
	dirs := []string{"/lib/" + arch, "/usr/lib/" + arch, "/lib64", "/usr/lib64", "/lib", "/usr/lib"}

	interpReal, err := filepath.EvalSymlinks(interp)
	if err != nil {
		return nil, fmt.Errorf("%s: its interpreter: %w", binary, err)
	}
	files := []File{{Path: interp, Source: interpReal, Mode: 0o755}}
	seen := map[string]bool{interpReal: true}
	queue, err := f.ImportedLibraries()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", binary, err)
	}
	for len(queue) > 0 {
		lib := queue[0]
		queue = queue[1:]
		path, real, err := find(lib, dirs)
		if err != nil {
			return nil, fmt.Errorf("%s needs %s: %w", binary, lib, err)
		}
		if seen[real] {
			continue
		}
		seen[real] = true
		files = append(files, File{Path: path, Source: real, Mode: 0o755})
		needed, err := imported(real)
		if err != nil {
			return nil, err
		}
		queue = append(queue, needed...)
	}
	return files, nil
}

// interpreter is f's PT_INTERP path, or "" for a static executable.
func interpreter(f *elf.File) (string, error) {
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			return "", fmt.Errorf("reading its interpreter: %w", err)
		}
		return string(bytes.TrimRight(b, "\x00")), nil
	}
	return "", nil
}

// find looks lib up in dirs, in the loader's order, and returns the path it
// is found at and the file that path resolves to.
func find(lib string, dirs []string) (path, real string, err error) {
	for _, d := range dirs {
		p := filepath.Join(d, lib)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return "", "", err
		}
		return p, real, nil
	}
	return "", "", fmt.Errorf("not in %v", dirs)
}

// imported is the DT_NEEDED list of the shared object at path.
func imported(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	libs, err := f.ImportedLibraries()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return libs, nil
}
